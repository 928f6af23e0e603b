"""The whole journey under load, beside what this machine's broker and database can do at best.

    .venv/bin/python -m bench.journey                    # 3 rounds, about 6 minutes
    .venv/bin/python -m bench.journey --rounds 1 --rates 50,150 --seconds 8 --json out.json
    .venv/bin/python -m bench.journey --profile /tmp/profile   # py-spy per service, if installed

One run: a fresh database and vhost, then

1. **raw** aio-pika publish→consume and request/reply (`bench.bench`'s sections 1 and 2);
2. the **floor**: the messages and transactions a deposit costs in this design, issued with bare
   aio-pika and asyncpg and nothing else (`floor_deposit` below says which): what the machine
   allows at best for this design;
3. the six services as processes, `ROUND` deposits each round:
   - **closed loop**, 64 in flight: deposits replied per second, their latency, and the journey
     (deposit → decided and traced → stored → the holder's alert mail accepted by the SMTP
     server) per second;
   - **open loop** at fixed offered rates (`--rates`), each for `--seconds`: each deposit is sent
     at its time whatever the others are doing, and its latency counts from then (no coordinated
     omission); the achieved rate, the latency and how long the alerts took to catch up;
   - **`access.decide` open loop** (`--decide-rates`), asked as the dossier asks it on a read
     (its broker user, through `dmp.internal`): each decision traced, its events published, its
     alert mailed.

Every figure is printed per round with the median and the spread (min–max) of the rounds, and
written as JSON (`--json`, default `.run/bench-journey.json`) so runs can be compared. The
services run with the notifier's burst folding off (each alert mailed on its own: a national
load spreads over millions of holders, and a holder sees three alerts at most before a digest).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiosmtplib
import asyncpg
import uvloop
from aio_pika.abc import AbstractIncomingMessage

from bench import bench
from libs.bus.rpc import REPLY_TO, RpcClient
from libs.tokens import key_set, new_keypair, new_signing_key
from scripts import processes
from tests.support import infra

IN_FLIGHT = 64
HOLDERS = 64
PROS = 8
SERVICES = processes.SERVICES


@dataclass
class Figures:
    """One round's figures by name, and the rounds gathered."""

    rounds: list[dict[str, float]] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str = "") -> None:
        self.rounds[-1][name] = value
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
        print(f"    {name:<58} {shown} {unit}", flush=True)

    def summary(self) -> dict[str, dict[str, float]]:
        names = {n for r in self.rounds for n in r}
        return {
            n: {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "rounds": len(values),
            }
            for n in sorted(names)
            if (values := [r[n] for r in self.rounds if n in r])
        }


def latency_figures(figures: Figures, prefix: str, latencies: list[float]) -> None:
    figures.add(f"{prefix} p50 ms", statistics.median(latencies), "ms")
    figures.add(f"{prefix} p99 ms", bench.percentile(latencies, 99), "ms")


# --- raw ------------------------------------------------------------------------------------


async def raw(figures: Figures, amqp_url: str) -> None:
    report = bench.Report()
    await bench.raw_publish_consume(report, amqp_url, 4_000)
    await bench.raw_rpc(report, amqp_url, 2_000)
    figures.add(
        "raw publish->consume msgs/s",
        report.get("raw aio-pika publish->consume/end to end msgs/s") or 0,
    )
    figures.add("raw RPC calls/s (64)", report.get("raw aio-pika RPC (64 in flight)/calls/s") or 0)


# --- the floor ------------------------------------------------------------------------------

# What one deposit costs in this design, counted in the services' statements (PostgreSQL's
# `log_statement = all`, 200 deposits) and messages: per party, its transactions (statements
# between BEGIN and COMMIT, both counted) and its single statements, and what it publishes.
FLOOR_QUEUES = ("dossier", "access", "identity", "notifier", "messaging", "retention", "unrouted")


@dataclass(frozen=True)
class FloorStep:
    transaction: int  # statements in its one transaction, BEGIN and COMMIT included
    alone: int  # statements outside it (lookups before, the outbox marked sent after)


# The figures of the last count (see docs/benchmarks.md: "statements per deposit").
FLOOR = {
    # lookup of the request id and of the space, then BEGIN, claim, space locked, document,
    # outbox and reply, COMMIT; the outbox marked sent.
    "dossier": FloorStep(transaction=6, alone=3),
    # BEGIN, claim, holder settings, trace chained, outbox and reply, COMMIT; marked sent.
    "access": FloorStep(transaction=6, alone=1),
    # AccessLogged: BEGIN, inbox, holder locked, alert, mail queued, outbox, COMMIT; marked
    # sent; after the mail, one update (its channel and its end).
    "notifier": FloorStep(transaction=7, alone=2),
    # DocumentDeposited: BEGIN, inbox, treating physician, thread, message, thread touched,
    # outbox, COMMIT; marked sent.
    "messaging": FloorStep(transaction=8, alone=1),
    # DocumentDeposited outside the occupational part: acknowledged, no transaction.
    "retention": FloorStep(transaction=0, alone=0),
    # GetAlertContacts: one lookup per holder of the batch of mails.
    "identity": FloorStep(transaction=0, alone=1),
}


# The notifier's mail worker claims this many mails at once and asks identity once for them.
MAIL_BATCH = 16


class FloorServer:
    """Bare aio-pika and asyncpg doing, per deposit, what the services do, with no framework:
    persistent messages on quorum queues with publisher confirms, a transaction per handler,
    request/reply with direct reply-to, a mail through a kept SMTP connection. Runs in
    processes of its own (`FLOOR_PROCESSES`, competing consumers), as the services do."""

    def __init__(self, amqp_url: str, database_url: str, smtp_port: int) -> None:
        self.amqp_url, self.database_url, self.smtp_port = amqp_url, database_url, smtp_port
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.background: set[asyncio.Future[None]] = set()
        self.mails = 0

    async def serve_forever(self) -> None:
        self.pool = await asyncpg.create_pool(self.database_url, min_size=4, max_size=10)
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await self.channel.get_exchange(FLOOR_EXCHANGE)
        await (await self.channel.get_queue(REPLY_TO, ensure=False)).consume(
            self._on_reply, no_ack=True
        )
        self.smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port)
        await self.smtp.connect()
        self.smtp_lock = asyncio.Lock()
        for name in FLOOR_QUEUES:
            # A channel (and prefetch) per queue: a handler waiting for another's reply must
            # not hold the deliveries that reply needs.
            consuming = await self.connection.channel()
            await consuming.set_qos(prefetch_count=IN_FLIGHT)
            await (await consuming.get_queue(f"floor.{name}")).consume(self._serve(name))
        print("ready", flush=True)
        await asyncio.Event().wait()

    async def _lookups(self, k: int) -> None:
        """Reads outside a transaction (a request id, a space's status)."""
        for _ in range(k):
            await self.pool.fetchval("SELECT v FROM floor_rows WHERE id = $1", uuid.uuid4())

    async def _marks(self, k: int) -> None:
        """Single committed updates (the outbox marked sent, a mail's outcome)."""
        for _ in range(k):
            await self.pool.execute(
                "UPDATE floor_marks SET n = n + 1 WHERE id = $1", random.randrange(10_000)
            )

    async def _transaction(self, k: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for _ in range(k - 2):
                await conn.execute(
                    "INSERT INTO floor_rows VALUES ($1, $2, $3)", uuid.uuid4(), k, "x" * 200
                )

    async def _publish(self, key: str, body: bytes, **properties: Any) -> None:
        await self.exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties),
            routing_key=key,
        )

    async def call(self, key: str, body: bytes) -> bytes:
        return await floor_call(self, key, body)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def _reply(self, message: AbstractIncomingMessage) -> None:
        await self.channel.default_exchange.publish(
            aio_pika.Message(message.body, correlation_id=message.correlation_id),
            routing_key=message.reply_to or "",
        )

    def _afterwards(self, work: Awaitable[None]) -> None:
        """What the design does after the commit, not in the caller's way: the outbox relayed
        (published with confirms, then marked sent), a mail sent."""
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _relay(self, body: bytes, *keys: str) -> None:
        await asyncio.gather(*(self._publish(key, body) for key in keys))
        await self._marks(1)  # the outbox rows marked sent

    async def _mail(self, body: bytes) -> None:
        self.mails += 1
        if self.mails % MAIL_BATCH == 1:
            await self.call("identity", body)  # GetAlertContacts, once per batch of mails
        else:
            await self._lookups(1)  # identity's lookup of this holder, in the batch's request
        async with self.smtp_lock:
            await self.smtp.sendmail("bench@example.org", ["holder@example.org"], _MAIL)
        await self._marks(1)  # the channel's outcome with the mail's and the alert's end

    def _serve(self, name: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def serve(message: AbstractIncomingMessage) -> None:
            body = message.body
            if name == "dossier":
                await self._lookups(2)  # the request id and the space
                await self.call("access", body)
                await self._transaction(FLOOR["dossier"].transaction)
                await self._reply(message)
                self._afterwards(self._relay(body, "deposited"))  # to messaging and retention
            elif name == "access":
                await self._transaction(FLOOR["access"].transaction)
                await self._reply(message)
                # AccessLogged to the notifier; AccessGranted, subscribed by none, parked.
                self._afterwards(self._relay(body, "notifier", "unrouted"))
            elif name == "identity":
                await self._lookups(1)
                await self._reply(message)
            elif name == "notifier":
                await self._transaction(FLOOR["notifier"].transaction)
                self._afterwards(self._relay(body, "unrouted"))  # HolderAlerted, parked
                self._afterwards(self._mail(body))
            elif name == "messaging":
                await self._transaction(FLOOR["messaging"].transaction)
                self._afterwards(self._relay(body, "notifier"))  # MessageSent
            elif name == "retention" and FLOOR["retention"].transaction:
                await self._transaction(FLOOR["retention"].transaction)
            await message.ack()

        return serve


FLOOR_EXCHANGE = "floor.events"
# Competing consumers of every floor queue (the services run one process each: six).
FLOOR_PROCESSES = 3
_MAIL = (
    "From: bench@example.org\r\nTo: holder@example.org\r\nSubject: Un acces a votre dossier\r\n"
    "\r\n" + "Un professionnel a consulte votre dossier.\r\n" * 8
)


class FloorClient:
    """The floor's callers, in the bench's process."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.pending: dict[str, asyncio.Future[bytes]] = {}

    async def __aenter__(self) -> FloorClient:
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await self.channel.get_exchange(FLOOR_EXCHANGE)
        await (await self.channel.get_queue(REPLY_TO, ensure=False)).consume(
            self._on_reply, no_ack=True
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self.pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)


async def floor_call(party: FloorServer | FloorClient, key: str, body: bytes) -> bytes:
    correlation_id = uuid.uuid4().hex
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    party.pending[correlation_id] = future
    await party.exchange.publish(
        aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=correlation_id,
            reply_to=REPLY_TO,
        ),
        routing_key=key,
    )
    async with asyncio.timeout(60):
        return await future


async def declare_floor(amqp_url: str, database_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            FLOOR_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for name in FLOOR_QUEUES:
            queue = await channel.declare_queue(
                f"floor.{name}", durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(exchange, routing_key=name)
            await queue.purge()  # what a last round left unfinished is not this round's
            if name in ("messaging", "retention"):  # both take DocumentDeposited
                await queue.bind(exchange, routing_key="deposited")
    finally:
        await connection.close()
    db = await asyncpg.connect(database_url)
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS floor_rows (id uuid PRIMARY KEY, k int, v text);"
            "CREATE TABLE IF NOT EXISTS floor_marks (id int PRIMARY KEY, n int);"
            "INSERT INTO floor_marks SELECT g, 0 FROM generate_series(0, 9999) g"
            " ON CONFLICT DO NOTHING"
        )
    finally:
        await db.close()


async def floor(figures: Figures, system: System, amqp_url: str, database_url: str, n: int) -> None:
    await declare_floor(amqp_url, database_url)
    servers = [
        subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is timed)
            [sys.executable, "-m", "bench.journey", "--floor-server", amqp_url, database_url,
             str(system.smtp.port)],
            stdout=subprocess.PIPE,
        )
        for _ in range(FLOOR_PROCESSES)
    ]  # fmt: skip
    try:
        for server in servers:
            assert server.stdout is not None
            await asyncio.to_thread(server.stdout.readline)  # "ready"
        async with FloorClient(amqp_url) as client:
            body = b"x" * 2_900  # a 2 kB document's deposit request, base64
            await bench.run_in_flight(100, IN_FLIGHT, lambda i: floor_call(client, "dossier", body))
            mails = await system.mails()
            started = time.perf_counter()
            elapsed, latencies = await bench.run_in_flight(
                n, IN_FLIGHT, lambda i: floor_call(client, "dossier", body)
            )
            # Two mails a deposit (the access, the secure message), as the services send.
            await mails_reach(system, mails + 2 * n)
            journey = time.perf_counter() - started
        figures.add("floor deposits replied/s (64)", n / elapsed)
        latency_figures(figures, "floor deposit", latencies)
        figures.add("floor journey deposits/s (both mails sent)", n / journey)
    finally:
        for server in servers:
            server.terminate()
            server.wait()


# --- the six services -----------------------------------------------------------------------


@dataclass
class System:
    client: Any
    smtp: Any
    holders: list[str]
    pro_tokens: list[str]
    pids: dict[str, int]
    db: asyncpg.Connection
    as_dossier: Any  # an RpcClient with the dossier's broker user, on dmp.internal

    async def mails(self) -> int:
        return len(self.smtp.mailbox.messages)


@contextlib.asynccontextmanager
async def running_system(database_url: str, amqp_url: str) -> AsyncIterator[System]:
    """The six services as processes, HOLDERS open spaces, PROS professionals each authorized
    by every holder, and their tokens."""
    from libs.client import Client
    from libs.clock import advance
    from libs.contracts import commands as cmd
    from tests.support.actors import sign_in_professional
    from tests.support.people import new_nir, new_professional
    from tests.support.smtp import SmtpServer

    identity_signing_keys = key_set(new_signing_key())
    operator_private, operator_public = new_keypair()
    smtp = SmtpServer()
    smtp.__enter__()
    values = bench.system_values(
        database_url,
        amqp_url,
        identity_signing_keys,
        {"bench-operator": operator_public},
        smtp.port,
        bench.DB_POOL_SIZE,
    )
    values["alerts_before_digest"] = 1_000_000_000  # each alert mailed on its own (module doc)
    running = processes.start(
        lambda name: infra.service_values(values, name), Path(tempfile.mkdtemp()) / "logs"
    )
    rpc = RpcClient(infra.client_url(amqp_url), name="bench-journey", timeout=60)
    as_dossier = RpcClient(
        infra.party_url(amqp_url, "dossier"),
        name="bench-journey-as-dossier",
        timeout=60,
        exchange="dmp.internal",
    )
    db = await asyncpg.connect(database_url)
    try:
        await rpc.connect()
        await as_dossier.connect()
        client = Client(rpc)
        await processes.wait_ready(client)
        operator = (
            await client.sign_in_with_card("operator", "bench-operator", operator_private)
        ).token
        holders = []
        for _ in range(HOLDERS):
            ins = new_nir(sex=2, year=80)
            await client.send(
                cmd.RegisterHolder(
                    nir=ins,
                    first_name="Bench",
                    last_name="Journey",
                    birth_date=date(1980, 5, 1),
                    email=f"{ins}@example.org",
                ),
                token=operator,
            )
            holders.append(ins)
        pros = [new_professional("physician", f"Journey{i}") for i in range(PROS)]
        for pro in pros:
            await client.send(pro.registration(), token=operator)
        await advance(database_url, timedelta(weeks=6, minutes=1))
        for ins in holders:
            token = await bench._holder_sign_in(client, smtp, ins, f"{ins}@example.org")
            await asyncio.gather(
                *(
                    bench._retry(
                        lambda ins=ins, token=token, pro=pro: client.send(
                            cmd.AuthorizeProfessional(ins=ins, rpps=pro.rpps), token=token
                        )
                    )
                    for pro in pros
                )
            )
        pro_tokens = [await sign_in_professional(client, p) for p in pros]
        pids = {n: p.pid for n, p in running.items()}
        yield System(client, smtp, holders, pro_tokens, pids, db, as_dossier)
    finally:
        await db.close()
        await as_dossier.close()
        await rpc.close()
        processes.stop(running)
        smtp.__exit__()


def deposit_call(system: System) -> Callable[[int], Awaitable[Any]]:
    from libs.contracts import commands as cmd
    from tests.support.actors import b64

    content = b64(os.urandom(2048))

    async def deposit(i: int) -> None:
        await system.client.send(
            cmd.DepositDocument(
                ins=system.holders[i % len(system.holders)],
                document_type="lab_report",
                title=f"Bilan {i}",
                content_b64=content,
            ),
            token=system.pro_tokens[i % len(system.pro_tokens)],
        )

    return deposit


async def mails_reach(system: System, count: int, timeout: float = 300) -> float:
    """Seconds until the SMTP server has `count` mails."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        while await system.mails() < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return time.perf_counter() - started


async def closed_loop(figures: Figures, system: System, n: int) -> None:
    deposit = deposit_call(system)
    mails = await system.mails()
    started = time.perf_counter()
    elapsed, latencies = await bench.run_in_flight(n, IN_FLIGHT, deposit)
    # Two mails a deposit: its access's alert and the secure message's (MSG_02, NTF_03).
    await mails_reach(system, mails + 2 * n)
    journey = time.perf_counter() - started
    figures.add("ours deposits replied/s (64)", n / elapsed)
    latency_figures(figures, "ours deposit (64)", latencies)
    figures.add("ours journey deposits/s (both mails sent)", n / journey)


async def offered(
    rate: float, seconds: float, call: Callable[[int], Awaitable[Any]]
) -> tuple[list[float], int, float]:
    """`call(i)` at `rate` a second for `seconds`, each at its time whatever the others are
    doing: latencies (ms, from each one's scheduled time: no coordinated omission), failures,
    and the seconds until the last reply."""
    latencies: list[float] = []
    failures = 0

    async def one(i: int, at: float) -> None:
        nonlocal failures
        try:
            await call(i)
        except Exception:
            failures += 1
            return
        latencies.append((time.perf_counter() - at) * 1000)

    started = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        at = started + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)
    return latencies, failures, time.perf_counter() - started


def offered_figures(
    figures: Figures, label: str, n: int, outcome: tuple[list[float], int, float], what: str
) -> None:
    latencies, failures, replied = outcome
    figures.add(f"{label}: replied/s", (n - failures) / replied)
    latency_figures(figures, f"{label}: {what}", latencies or [0.0])
    figures.add(f"{label}: max ms", max(latencies or [0.0]), "ms")
    figures.add(f"{label}: failed", failures)


async def open_loop(figures: Figures, system: System, rate: float, seconds: float) -> None:
    """Deposits sent at `rate` a second for `seconds`; then how long their mails took to
    catch up."""
    n = int(rate * seconds)
    mails = await system.mails()
    outcome = await offered(rate, seconds, deposit_call(system))
    caught_up = await mails_reach(system, mails + 2 * n)
    label = f"open {rate:g}/s"
    offered_figures(figures, label, n, outcome, "deposit")
    figures.add(f"{label}: alerts caught up, s after the last reply", caught_up, "s")


async def decide_loop(figures: Figures, system: System, rate: float, seconds: float) -> None:
    """`access.decide` asked as the dossier asks it on a read (its broker user, through
    dmp.internal), at `rate` a second: each granted decision writes its trace and its
    events, and its holder's alert is mailed."""
    n = int(rate * seconds)
    mails = await system.mails()

    async def decide(i: int) -> None:
        result = await system.as_dossier.call(
            "access.decide",
            "Decide",
            {"ins": system.holders[i % len(system.holders)], "action": "read"},
            token=system.pro_tokens[i % len(system.pro_tokens)],
        )
        assert result["granted"], result

    outcome = await offered(rate, seconds, decide)
    caught_up = await mails_reach(system, mails + n)
    label = f"decide open {rate:g}/s"
    offered_figures(figures, label, n, outcome, "decision")
    figures.add(f"{label}: alerts caught up, s after the last reply", caught_up, "s")


# --- profiles -------------------------------------------------------------------------------


def py_spy() -> str | None:
    return os.environ.get("PY_SPY") or shutil.which("py-spy")


def start_profiles(system: System, folder: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
    spy = py_spy()
    if spy is None:
        print("  (no py-spy: pip install py-spy, or PY_SPY=<path>)")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50", "--nonblocking",
             "-f", "raw", "-o", str(folder / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in system.pids.items()
    ]  # fmt: skip


# --- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict[str, Any]:
    figures = Figures()
    rates = [float(r) for r in args.rates.split(",") if r]
    decide_rates = [float(r) for r in args.decide_rates.split(",") if r]
    async with bench.fresh_infra() as (database_url, amqp_url):
        async with running_system(database_url, amqp_url) as system:
            await bench.run_in_flight(200, IN_FLIGHT, deposit_call(system))  # warm-up
            for round_ in range(args.rounds):
                figures.rounds.append({})
                print(f"\n  round {round_ + 1} of {args.rounds}", flush=True)
                await raw(figures, amqp_url)
                await floor(figures, system, amqp_url, database_url, args.deposits)
                spies = (
                    start_profiles(system, Path(args.profile), 30)
                    if args.profile and round_ == 0
                    else []
                )
                await closed_loop(figures, system, args.deposits)
                for spy in spies:
                    spy.wait()
                for rate in rates:
                    await open_loop(figures, system, rate, args.seconds)
                for rate in decide_rates:
                    await decide_loop(figures, system, rate, args.seconds)
                current = figures.rounds[-1]
                journey = "journey deposits/s (both mails sent)"
                for ours, against in (
                    (f"ours {journey}", f"floor {journey}"),
                    ("ours deposits replied/s (64)", "floor deposits replied/s (64)"),
                    ("ours deposits replied/s (64)", "raw publish->consume msgs/s"),
                ):
                    if current.get(against):
                        figures.add(f"ratio {ours} / {against}", current[ours] / current[against])
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "args": vars(args),
        "rounds": figures.rounds,
        "summary": figures.summary(),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journey", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deposits", type=int, default=1_000, help="closed loop, per round")
    parser.add_argument("--rates", default="50,150,300", help="open loop offered rates, per s")
    parser.add_argument(
        "--decide-rates", default="150,300", help="access.decide open loop offered rates, per s"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per offered rate")
    parser.add_argument("--json", default=".run/bench-journey.json")
    parser.add_argument("--profile", help="a folder for py-spy's per-service samples")
    parser.add_argument("--floor-server", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        amqp_url, database_url, smtp_port = args.floor_server
        # On the services' event loop (libs.runtime.serve).
        uvloop.run(FloorServer(amqp_url, database_url, int(smtp_port)).serve_forever())
        return
    print(f"bench.journey: {os.cpu_count()} cpus, {vars(args)}", flush=True)
    result = asyncio.run(main(args))
    print("\nmedian (min–max) over the rounds:")
    for name, s in result["summary"].items():
        print(f"  {name:<62} {s['median']:>10,.2f}  ({s['min']:,.2f}–{s['max']:,.2f})")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    sys.exit(cli())
