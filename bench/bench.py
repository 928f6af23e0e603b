"""How fast the bus is, raw and through our libraries, measured in one run on this machine.

    .venv/bin/python -m bench.bench            # default sizes, about 2-3 minutes
    .venv/bin/python -m bench.bench --quick    # smaller sizes, well under a minute

Against the servers in DATABASE_URL / AMQP_URL (else the local ones), in a fresh database and a
fresh vhost (removed afterwards). Everything runs in this one process and one event loop, as the
tests do (clients, servers and the six services share it): on a 2-core machine the figures are
what one Python process achieves, and the ratios are what matters.

Sections:

1. raw aio-pika publish -> consume on a quorum queue: persistent, publisher confirms, `mandatory`,
   many publishes in flight, through a topic exchange; consumer with prefetch 64, one ack each.
2. raw aio-pika request/reply: direct reply-to, correlation ids, 64 callers in flight; the server
   consumes a quorum queue and replies without confirms (as `ConfirmingPublisher.reply` does).
3. ours: `libs.bus.rpc.RpcClient` -> `Runtime` command that echoes (no token check), 64 in flight.
4. ours: outbox -> relay -> broker -> `Runtime` event consumer with inbox (one transaction per
   event: inbox row + effect row), a backlog of N events drained; vs section 1.
5. the six services (`services/*`, in-process like tests/support/system.py's build_service):
   `access.decide` with 64 in flight (each decision writes a trace and two events, and the holder
   gets an alert), then N deposits with 64 in flight, timed until the notifier's `alerts` table
   holds the N alerts (deposit -> decide -> stored -> traced -> alert stored).
6. sign-ins, against the same services: professionals' card sign-ins (challenge, signature,
   token) with 64 in flight; holders' code sign-ins (code asked, mailed, read from the SMTP sink,
   spent) with one caller per holder. Token verifications per second are `python -m
   bench.tokens`, which `make bench` runs next.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from libs.bus import topology
from libs.bus.rpc import REPLY_TO, RpcClient
from libs.contracts.envelope import Contract, Event, envelope_for, register
from libs.contracts.rpc import Command, Request
from libs.runtime import CommandContext, EventContext, Runtime
from libs.settings import ServiceSettings
from libs.tokens import key_set, new_keypair, new_signing_key, public_jwks
from scripts import processes
from tests.support import infra

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MIGRATIONS = Path(__file__).parent / "migrations"
IN_FLIGHT = 64
HOLDERS_PER_ROLE = 8
# Connections per service (libs.settings' default); --db-pool-size lowers it on a server
# whose 100 connections are shared with other work.
DB_POOL_SIZE = 10
SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")


@register
class Tick(Event):
    """The bench's own event (routing key `bench.tick.v1`): no service listens to it."""

    OWNER = "bench"
    TYPE = "Tick"
    i: int
    text: str


class Echoed(Contract):
    text: str
    i: int = 0


class Echo(Command[Echoed]):
    QUEUE = "bench_echo.commands"
    AUTHENTICATED = False

    text: str
    i: int = 0


# --- reporting ------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)

    def add(self, section: str, metric: str, value: float | str, unit: str = "") -> None:
        if isinstance(value, float | int):
            self.values[f"{section}/{metric}"] = float(value)
            shown = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
        else:
            shown = value
        self.rows.append((section, metric, f"{shown} {unit}".strip()))
        print(f"  {section:<34} {metric:<28} {shown} {unit}", flush=True)

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def print_table(self) -> None:
        width = [max(len(r[i]) for r in self.rows) for i in range(3)]
        line = "+".join("-" * (w + 2) for w in width)
        print(f"\n+{line}+")
        for section, metric, value in self.rows:
            print(f"| {section:<{width[0]}} | {metric:<{width[1]}} | {value:>{width[2]}} |")
        print(f"+{line}+")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_in_flight(
    n: int, in_flight: int, call: Callable[[int], Awaitable[Any]]
) -> tuple[float, list[float]]:
    """`n` calls by `in_flight` concurrent callers; (elapsed seconds, latencies in ms)."""
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0

    async def caller() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                await call(i)
            except Exception as exc:  # counted and shown: a failed call is not a fast one
                errors.append(repr(exc))
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  !! {len(errors)} of {n} calls failed, e.g. {errors[0]}", flush=True)
    if len(errors) > n // 10:
        raise RuntimeError(f"{len(errors)} of {n} calls failed, e.g. {errors[0]}")
    return elapsed, latencies


def report_calls(report: Report, section: str, n: int, elapsed: float, lat: list[float]) -> None:
    report.add(section, "calls/s", n / elapsed)
    report.add(section, "p50 latency", statistics.median(lat), "ms")
    report.add(section, "p99 latency", percentile(lat, 99), "ms")


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.02
) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 (polling a database)
            await asyncio.sleep(interval)


def envelope_body(i: int) -> bytes:
    """A body the size of a typical event envelope."""
    return (
        envelope_for(
            Tick(i=i, text="x" * 120),
            holder_key="bench",
            occurred_at=datetime.now(UTC),
            correlation_id=uuid.uuid4().hex,
        )
        .model_dump_json()
        .encode()
    )


# --- infrastructure -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_infra() -> AsyncIterator[tuple[str, str]]:
    """A database and a vhost of the bench's own on the servers the tests would use."""
    with infra.servers() as servers:
        async with infra.fresh_database(servers.database_url, "dmp_bench") as database_url:
            async with infra.fresh_vhost(servers) as amqp_url:
                yield database_url, amqp_url


def service_settings(
    database_url: str, amqp_url: str, identity_jwks: str, pool_size: int
) -> ServiceSettings:
    # The bench's own runtimes connect as the test-only service "bench", like any service.
    own = infra.service_values({"database_url": database_url, "amqp_url": amqp_url}, "bench")
    return ServiceSettings(
        **own,
        identity_jwks=identity_jwks,
        log_level="WARNING",
        rpc_timeout_seconds=30.0,
        db_pool_size=pool_size,
    )


# --- 1. raw publish -> consume --------------------------------------------------------------


async def raw_publish_consume(report: Report, amqp_url: str, n: int) -> None:
    section = "raw aio-pika publish->consume"
    queue_name = "bench.raw-throughput"
    key = "bench.raw.v1"
    publisher = await aio_pika.connect(amqp_url)
    consumer = await aio_pika.connect(amqp_url)
    try:
        channel = await publisher.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare_exchanges(channel)
        await topology.declare_queue(channel, queue_name, [key])
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        consume_channel = await consumer.channel()
        await consume_channel.set_qos(prefetch_count=IN_FLIGHT)
        queue = await consume_channel.get_queue(queue_name)
        done = asyncio.Event()
        received = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == n:
                done.set()

        await queue.consume(on_message)
        bodies = [envelope_body(i) for i in range(n)]
        gate = asyncio.Semaphore(512)

        async def publish(i: int) -> None:
            async with gate:
                await exchange.publish(
                    aio_pika.Message(
                        bodies[i],
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=str(i),
                    ),
                    routing_key=key,
                    mandatory=True,
                )

        started = time.perf_counter()
        await asyncio.gather(*(publish(i) for i in range(n)))
        confirmed = time.perf_counter() - started
        async with asyncio.timeout(120):
            await done.wait()
        elapsed = time.perf_counter() - started
        report.add(section, "messages", n)
        report.add(section, "published+confirmed/s", n / confirmed)
        report.add(section, "end to end msgs/s", n / elapsed)
    finally:
        await publisher.close()
        await consumer.close()


# --- 2. raw request/reply -------------------------------------------------------------------


async def raw_rpc(report: Report, amqp_url: str, n: int) -> None:
    section = "raw aio-pika RPC (64 in flight)"
    queue_name = "bench.raw-rpc"
    server = await aio_pika.connect(amqp_url)
    client = await aio_pika.connect(amqp_url)
    try:
        setup = await server.channel()
        await topology.declare_exchanges(setup)
        await topology.declare_queue(setup, queue_name)
        serve_channel = await server.channel()
        await serve_channel.set_qos(prefetch_count=IN_FLIGHT)
        reply_channel = await server.channel(publisher_confirms=False)

        async def serve(message: AbstractIncomingMessage) -> None:
            await reply_channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    content_type="application/json",
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to or "",
                mandatory=False,
            )
            await message.ack()

        await (await serve_channel.get_queue(queue_name)).consume(serve)

        channel = await client.channel(publisher_confirms=True, on_return_raises=True)
        pending: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(message.body)

        await (await channel.get_queue(REPLY_TO, ensure=False)).consume(on_reply, no_ack=True)
        loop = asyncio.get_running_loop()

        async def call(i: int) -> None:
            body = Request(
                command="Echo", correlation_id=uuid.uuid4().hex, payload={"text": "ping", "i": i}
            ).model_dump_json()
            correlation_id = uuid.uuid4().hex
            future: asyncio.Future[bytes] = loop.create_future()
            pending[correlation_id] = future
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body.encode(),
                    content_type="application/json",
                    correlation_id=correlation_id,
                    reply_to=REPLY_TO,
                ),
                routing_key=queue_name,
                mandatory=True,
            )
            async with asyncio.timeout(30):
                await future

        await run_in_flight(min(n, 500), IN_FLIGHT, call)  # warm-up
        elapsed, latencies = await run_in_flight(n, IN_FLIGHT, call)
        report_calls(report, section, n, elapsed, latencies)
    finally:
        await client.close()
        await server.close()


# --- 3. our RPC against a Runtime -----------------------------------------------------------


async def our_rpc(report: Report, settings: ServiceSettings, n: int) -> None:
    section = "ours RpcClient->Runtime (64)"

    async def echo(_ctx: CommandContext, c: Echo) -> Echoed:
        return Echoed(text=c.text, i=c.i)

    runtime = Runtime("bench_echo", settings, MIGRATIONS)
    runtime.handle(Echo, echo)
    await runtime.start()
    rpc = RpcClient(settings.amqp_url, name="bench-rpc", timeout=30, exchange="dmp.internal")
    await rpc.connect()
    try:

        async def call(i: int) -> None:
            await rpc.call("bench_echo.commands", "Echo", {"text": "ping", "i": i})

        await run_in_flight(min(n, 500), IN_FLIGHT, call)  # warm-up
        elapsed, latencies = await run_in_flight(n, IN_FLIGHT, call)
        report_calls(report, section, n, elapsed, latencies)
    finally:
        await rpc.close()
        await runtime.stop()


# --- 4. outbox -> relay -> broker -> consumer with inbox ------------------------------------


async def our_pipeline(report: Report, settings: ServiceSettings, n: int) -> None:
    section = "ours outbox->relay->inbox"

    async def apply(ctx: EventContext, event: Tick) -> None:
        await ctx.conn.execute(
            "INSERT INTO ticks (event_id, i) VALUES ($1, $2)", ctx.envelope.event_id, event.i
        )

    sink = Runtime("bench_sink", settings, MIGRATIONS)
    sink.on_events("bench_sink.ticks", {Tick: apply})
    source = Runtime("bench_source", settings, MIGRATIONS)
    await sink.start()
    await source.prepare()
    try:
        # The backlog: N events written to the outbox as use cases would (same rows as
        # libs.outbox.add), before the relay starts.
        now = datetime.now(UTC)
        rows = []
        for i in range(n):
            envelope = envelope_for(
                Tick(i=i, text="x" * 120),
                holder_key="bench",
                occurred_at=now,
                correlation_id=uuid.uuid4().hex,
            )
            rows.append(
                (
                    envelope.event_id,
                    Tick.routing_key(),
                    envelope.model_dump_json().encode(),
                    envelope.correlation_id,
                )
            )
        written = time.perf_counter()
        async with source.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO outbox (event_id, routing_key, body, correlation_id)"
                " VALUES ($1, $2, $3, $4)",
                rows,
            )
        write_seconds = time.perf_counter() - written

        async def all_applied() -> bool:
            return bool(await sink.pool.fetchval("SELECT count(*) FROM ticks") >= n)

        async def all_sent() -> bool:
            return not await source.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
            )

        started = time.perf_counter()
        await source.start_consuming()  # the relay
        await wait_until(all_sent, timeout=300)
        relayed = time.perf_counter() - started
        await wait_until(all_applied, timeout=300)
        elapsed = time.perf_counter() - started
        duplicates = await sink.pool.fetchval(
            "SELECT count(*) - count(DISTINCT event_id) FROM ticks"
        )
        report.add(section, "events", n)
        report.add(section, "outbox rows written/s", n / write_seconds)
        report.add(section, "relayed (confirmed+marked)/s", n / relayed)
        report.add(section, "end to end events/s", n / elapsed)
        report.add(section, "effects applied twice", duplicates)
    finally:
        await source.stop()
        await sink.stop()


# --- 5. the six services --------------------------------------------------------------------


def system_values(
    database_url: str,
    amqp_url: str,
    identity_signing_keys: str,
    operator_public_keys: dict[str, str],
    smtp_port: int,
    pool_size: int,
) -> dict[str, Any]:
    """The six services' settings in a benchmark (each service gets its own part of them)."""
    return {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "identity_jwks": public_jwks(identity_signing_keys),
        "identity_signing_keys": identity_signing_keys,
        "operator_public_keys": operator_public_keys,
        "dossier_content_key": "kO7n0Zr0m4v3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "messaging_content_key": "pS1ljXzr3sVv6Nq9o2mFh4tYcK8wQeLbUaR7dG0xZiE",
        "purge_proof_key": "pUrG3pr00fK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "log_pseudonym_key": "l0gPs3udOnYmK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bF",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "clock_mode": "adjustable",
        "log_level": "WARNING",
        "rpc_timeout_seconds": 30.0,
        "sweep_interval_seconds": 0.2,
        "db_pool_size": pool_size,
        # The sign-in sections ask many codes for few holders from one caller.
        "code_requests_per_ins": 1_000_000,
        "code_requests_per_caller": 1_000_000,
    }


async def system(
    report: Report,
    database_url: str,
    amqp_url: str,
    n_decide: int,
    n_deposit: int,
    pool_size: int,
    in_process: bool,
) -> None:
    section_decide = "system access.decide (64)"
    section_deposit = "system deposits (64)"
    try:
        modules = {name: importlib.import_module(f"services.{name}.main") for name in SERVICES}
        from libs.client import Client
        from libs.clock import advance
        from libs.contracts import commands as cmd
        from tests.support.actors import b64, sign_in_professional
        from tests.support.people import new_nir, new_professional
        from tests.support.smtp import SmtpServer
    except Exception as exc:  # the services are being written by others
        report.add("system", "skipped", f"skipped: cannot import the services: {exc!r}")
        return

    identity_signing_keys = key_set(new_signing_key())
    operator_private, operator_public = new_keypair()
    operator_id = "bench-operator"
    smtp = SmtpServer()
    smtp.__enter__()
    values = system_values(
        database_url,
        amqp_url,
        identity_signing_keys,
        {operator_id: operator_public},
        smtp.port,
        pool_size,
    )
    runtimes: dict[str, Runtime] = {}
    started: list[Runtime] = []
    running: dict[str, Any] = {}
    rpc = RpcClient(infra.client_url(amqp_url), name="bench-client", timeout=60)
    # access.decide is asked as the dossier asks it: as a service, through dmp.internal.
    as_dossier = RpcClient(
        infra.party_url(amqp_url, "dossier"),
        name="bench-as-dossier",
        timeout=60,
        exchange="dmp.internal",
    )
    # The bench's own connection first: PostgreSQL allows 100 in all, and the services take many.
    alerts_db = await asyncpg.connect(database_url)
    try:
        if in_process:
            for name, module in modules.items():
                runtimes[name] = module.build(module.Settings(**infra.service_values(values, name)))
            for runtime in runtimes.values():
                await runtime.start()
                started.append(runtime)
        else:
            # As deployed: one process per service, so they share the machine's cores.
            running = processes.start(
                lambda name: infra.service_values(values, name),
                Path(tempfile.mkdtemp()) / "logs",
            )
        await rpc.connect()
        await as_dossier.connect()
        client = Client(rpc)
        if not in_process:
            await processes.wait_ready(client)

        setup_started = time.perf_counter()
        operator = (await client.sign_in_with_card("operator", operator_id, operator_private)).token
        # Several holders per part: decisions and alerts for one holder serialize on that
        # holder's row (as they should); a real load spreads over many holders.
        holders: dict[str, list[tuple[str, str]]] = {"decide": [], "deposit": []}
        for role, group in holders.items():
            for _ in range(HOLDERS_PER_ROLE):
                ins = new_nir(sex=2, year=80)
                email = f"{role}.{ins}@example.org"
                await client.send(
                    cmd.RegisterHolder(
                        nir=ins,
                        first_name="Bench",
                        last_name=role.capitalize(),
                        birth_date=date(1980, 5, 1),
                        email=email,
                    ),
                    token=operator,
                )
                group.append((ins, email))
        pros = [new_professional("physician", f"Bench{i}") for i in range(4)]
        for pro in pros:
            await client.send(pro.registration(), token=operator)
        # Six weeks pass: retention fires, identity opens the spaces, access learns of it.
        await advance(database_url, timedelta(weeks=6, minutes=1))
        holder_tokens = {}
        for ins, email in holders["decide"] + holders["deposit"]:
            # Signing in waits for the space to open (which shows identity's clock moved).
            holder_tokens[ins] = await _holder_sign_in(client, smtp, ins, email)
        # Signed in after the clock moved: a token is valid for an hour of the shared clock.
        pro_tokens = [await sign_in_professional(client, p) for p in pros]
        for ins, token in holder_tokens.items():
            for pro in pros:
                await _retry(
                    lambda ins=ins, token=token, pro=pro: client.send(
                        cmd.AuthorizeProfessional(ins=ins, rpps=pro.rpps), token=token
                    )
                )
        report.add(
            "system",
            f"setup ({2 * HOLDERS_PER_ROLE} holders, {len(pros)} pros)",
            time.perf_counter() - setup_started,
            "s",
        )

        async def alerts(group: list[tuple[str, str]], kind: str) -> int:
            return int(
                await alerts_db.fetchval(
                    "SELECT count(*) FROM notifier.alerts WHERE ins = ANY($1) AND kind = $2",
                    [ins for ins, _ in group],
                    kind,
                )
            )

        async def reached(group: list[tuple[str, str]], kind: str, n: int) -> bool:
            return await alerts(group, kind) >= n

        # access.decide, as the dossier asks it on every read (64 callers in flight).
        deciders = holders["decide"]
        granted = 0

        async def decide(i: int) -> None:
            nonlocal granted
            result = await as_dossier.call(
                "access.decide",
                "Decide",
                {"ins": deciders[i % len(deciders)][0], "action": "read"},
                token=pro_tokens[i % len(pro_tokens)],
            )
            granted += bool(result["granted"])

        warm = min(200, n_decide)
        await run_in_flight(warm, IN_FLIGHT, decide)
        await wait_until(lambda: reached(deciders, "access", warm), 120, 0.1)
        granted = 0
        before = await alerts(deciders, "access")
        elapsed, latencies = await run_in_flight(n_decide, IN_FLIGHT, decide)
        report.add(section_decide, "decisions/s", n_decide / elapsed)
        report.add(section_decide, "p50 latency", statistics.median(latencies), "ms")
        report.add(section_decide, "p99 latency", percentile(latencies, 99), "ms")
        report.add(section_decide, "granted", granted)
        # Let the notifier finish the decisions' alerts before timing the deposits.
        drain = time.perf_counter()
        await wait_until(lambda: reached(deciders, "access", before + n_decide), 300, 0.05)
        report.add(
            section_decide,
            "all alerted, decisions/s",
            n_decide / (elapsed + time.perf_counter() - drain),
        )

        # Deposits, timed until each has its alert stored.
        depositors = holders["deposit"]
        content = b64(os.urandom(2048))

        async def deposit(i: int) -> None:
            await client.send(
                cmd.DepositDocument(
                    ins=depositors[i % len(depositors)][0],
                    document_type="lab_report",
                    title=f"Bilan {i}",
                    content_b64=content,
                ),
                token=pro_tokens[i % len(pro_tokens)],
            )

        warm = min(50, n_deposit)
        await run_in_flight(warm, IN_FLIGHT, deposit)
        await wait_until(lambda: reached(depositors, "access", warm), 120, 0.1)
        await wait_until(lambda: reached(depositors, "new_message", warm), 120, 0.1)
        access_before = await alerts(depositors, "access")
        message_before = await alerts(depositors, "new_message")
        started_at = time.perf_counter()
        elapsed, latencies = await run_in_flight(n_deposit, IN_FLIGHT, deposit)
        await wait_until(
            lambda: reached(depositors, "access", access_before + n_deposit), 300, 0.02
        )
        journey = time.perf_counter() - started_at
        await wait_until(
            lambda: reached(depositors, "new_message", message_before + n_deposit), 300, 0.02
        )
        everything = time.perf_counter() - started_at
        ins_list = [ins for ins, _ in depositors]
        documents = await alerts_db.fetchval(
            "SELECT count(*) FROM dossier.documents WHERE ins = ANY($1)", ins_list
        )
        traces = await alerts_db.fetchval(
            "SELECT count(*) FROM access.traces WHERE ins = ANY($1) AND action = 'deposit'",
            ins_list,
        )
        report.add(section_deposit, "deposits replied/s", n_deposit / elapsed)
        report.add(section_deposit, "p50 deposit latency", statistics.median(latencies), "ms")
        report.add(section_deposit, "p99 deposit latency", percentile(latencies, 99), "ms")
        report.add(section_deposit, "journey deposits/s (alerted)", n_deposit / journey)
        report.add(section_deposit, "+ secure message alerted, /s", n_deposit / everything)
        report.add(
            section_deposit,
            "stored / traced / alerted",
            f"{documents} / {traces} / {await alerts(depositors, 'access')} (incl. {warm} warm-up)",
        )

        # Sign-ins (SPC_03). A professional's card: RequestChallenge, the card signs, then
        # SignInWithCard mints the token (64 in flight, over the bench's professionals).
        section_sign_in = "system sign-ins"

        async def card(i: int) -> None:
            pro = pros[i % len(pros)]
            await client.sign_in_with_card("professional", pro.rpps, pro.card_private)

        elapsed, latencies = await run_in_flight(n_decide, IN_FLIGHT, card)
        report.add(section_sign_in, "card sign-ins/s (64)", n_decide / elapsed)
        report.add(section_sign_in, "card p50 latency", statistics.median(latencies), "ms")
        report.add(section_sign_in, "card p99 latency", percentile(latencies, 99), "ms")

        # A holder's code: RequestHolderCode, the code read from the SMTP sink the mail reaches,
        # SignInHolder. One caller per holder (a new code revokes the last), the rate limits
        # raised in the bench's settings: the mail's path is part of what is measured.
        everyone = holders["decide"] + holders["deposit"]
        # Headers parsed once per mail: the sink keeps every alert mail of the run, and parsing
        # them again on each poll would be the bench measuring itself.
        parsed: dict[int, tuple[str, str]] = {}

        def codes_to(email: str) -> list[Any]:
            found = []
            for mail in list(smtp.mailbox.messages):
                to, subject = parsed.get(id(mail)) or parsed.setdefault(
                    id(mail), (str(mail["To"]), str(mail["Subject"] or ""))
                )
                if to == email and "code de connexion" in subject:
                    found.append(mail)
            return found

        # The callers take the next index as they finish: without a lock, a slow caller's holder
        # could be taken again by another, whose new code voids the first's.
        one_at_a_time = {ins: asyncio.Lock() for ins, _ in everyone}

        async def by_code(i: int) -> None:
            ins, email = everyone[i % len(everyone)]
            async with one_at_a_time[ins]:
                await sign_in_by_code(ins, email)

        async def sign_in_by_code(ins: str, email: str) -> None:
            seen = len(codes_to(email))
            await client.send(cmd.RequestHolderCode(ins=ins))
            async with asyncio.timeout(30):
                while len(mails := codes_to(email)) <= seen:  # noqa: ASYNC110 (the sink polls)
                    await asyncio.sleep(0.01)
            code = re.search(r"\b(\d{6})\b", mails[-1].get_body(("plain",)).get_content())
            assert code is not None
            await client.send(cmd.SignInHolder(ins=ins, code=code[1]))

        n_codes = max(len(everyone), n_deposit)
        elapsed, latencies = await run_in_flight(n_codes, len(everyone), by_code)
        report.add(section_sign_in, f"code sign-ins/s ({len(everyone)})", n_codes / elapsed)
        report.add(section_sign_in, "code p50 latency", statistics.median(latencies), "ms")
        report.add(section_sign_in, "code p99 latency", percentile(latencies, 99), "ms")

        # The "every service under 150 MB resident under load": each process's peak
        # so far (decisions, the journey, sign-ins), before the dossier's large documents.
        for name, process in running.items():
            if (peak := _peak_rss_mb(process)) is not None:
                report.add("system memory", f"{name} peak RSS under load", peak, "MB")
        await dossier_section(
            report,
            client,
            alerts_db,
            values["dossier_content_key"],
            depositors,
            pro_tokens,
            running.get("dossier"),
        )
    finally:
        await alerts_db.close()
        await rpc.close()
        await as_dossier.close()
        for runtime in reversed(started):
            with contextlib.suppress(Exception):
                await runtime.stop()
        if running:
            processes.stop(running)
        smtp.__exit__()


def _peak_rss_mb(process: Any) -> float | None:
    """The process's peak resident memory so far (VmHWM), in MB; None in-process."""
    if process is None:
        return None
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


async def dossier_section(
    report: Report,
    client: Any,
    db: asyncpg.Connection,
    content_key: str,
    depositors: list[tuple[str, str]],
    pro_tokens: list[str],
    dossier_process: Any,
) -> None:
    """The dossier's peak memory around a 50 MB upload in parts, deposits of 10 kB, of 5 MB and a
    burst of 5 MB ones (as many at once as a small lane's prefetch), then a listing in a dossier
    of 5,000 documents (issue 9)."""
    from libs.contracts import commands as cmd
    from libs.tokens import b64d
    from services.dossier import domain as dossier_domain
    from services.dossier import repository as dossier_repository
    from tests.support.actors import b64

    section = "system dossier"
    # First, while the dossier has only done small deposits: its peak memory around a 50 MB
    # document, uploaded in parts (no step holds it whole).
    before = _peak_rss_mb(dossier_process)
    big = os.urandom(50_000_000)
    started = time.perf_counter()
    upload = await client.send(
        cmd.BeginDocumentUpload(
            ins=depositors[0][0],
            document_type="imaging_report",
            title="IRM 50 MB",
            size=len(big),
            sha256=hashlib.sha256(big).hexdigest(),
        ),
        token=pro_tokens[0],
    )
    for index in range(upload.parts):
        part = big[index * upload.part_bytes : (index + 1) * upload.part_bytes]
        await client.send(
            cmd.UploadDocumentPart(upload_id=upload.upload_id, index=index, content_b64=b64(part)),
            token=pro_tokens[0],
        )
    await client.send(cmd.CompleteDocumentUpload(upload_id=upload.upload_id), token=pro_tokens[0])
    report.add(section, "50 MB upload in parts, seconds", time.perf_counter() - started, "s")
    after = _peak_rss_mb(dossier_process)
    if before is not None and after is not None:
        report.add(section, "dossier peak RSS before the 50 MB upload", before, "MB")
        report.add(section, "dossier peak RSS after it", after, "MB")
    del big
    for label, size, n, in_flight in (
        ("10 kB", 10_000, 300, IN_FLIGHT),
        ("5 MB", 5_000_000, 16, 4),
        # As many as the prefetch of a small lane: what the large lanes bound.
        ("5 MB at once", 5_000_000, IN_FLIGHT, IN_FLIGHT),
    ):
        content = b64(os.urandom(size))

        async def deposit(i: int, content: str = content) -> None:
            await client.send(
                cmd.DepositDocument(
                    ins=depositors[i % len(depositors)][0],
                    document_type="lab_report",
                    title=f"Bilan {i}",
                    content_b64=content,
                ),
                token=pro_tokens[i % len(pro_tokens)],
            )

        elapsed, latencies = await run_in_flight(n, in_flight, deposit)
        report.add(section, f"{label} deposits/s ({in_flight} in flight)", n / elapsed)
        report.add(section, f"{label} p99 deposit latency", percentile(latencies, 99), "ms")
        report.add(section, f"{label} MB/s deposited", n * size / elapsed / 1e6)
        if (peak := _peak_rss_mb(dossier_process)) is not None:
            report.add(section, f"dossier peak RSS after the {label} deposits", peak, "MB")

    # A dossier of 5,000 documents, sealed as the dossier seals them, loaded with COPY.
    ins = depositors[0][0]
    master = b64d(content_key)
    rows = []
    now = datetime.now(UTC)
    for i in range(5_000):
        document_id = uuid.uuid4()
        body = os.urandom(1_000)
        sealed = dossier_domain.seal_document(master, "k1", body, f"Doc {i}", document_id, ins)
        rows.append(
            (
                document_id, ins, "lab_report", sealed.title_nonce, sealed.title,
                "application/octet-stream", "professional", "10000000000", "Bench",
                uuid.uuid4(), "ACC_05", now - timedelta(minutes=i), sealed.nonce,
                sealed.content, "k1", sealed.key.nonce, sealed.key.wrapped, sealed.sha256,
                len(body),
            )
        )  # fmt: skip
    await db.copy_records_to_table(
        "documents",
        schema_name="dossier",
        records=rows,
        columns=[
            "document_id", "ins", "document_type", "title_nonce", "title_sealed", "media_type",
            "author_kind", "author_id", "author_name", "decision_id", "decision_rule",
            "deposited_at", "nonce", "content", "key_id", "key_nonce", "wrapped_key",
            "content_sha256", "size",
        ],
    )  # fmt: skip
    await db.execute("ANALYZE dossier.documents")
    total = await db.fetchval("SELECT count(*) FROM dossier.documents WHERE ins = $1", ins)
    token = pro_tokens[0]
    times: list[float] = []
    page = await client.send(cmd.ReadDossier(ins=ins), token=token)
    for _ in range(200):
        started = time.perf_counter()
        page = await client.send(
            cmd.ReadDossier(ins=ins, cursor=page.next_cursor if len(times) % 10 else None),
            token=token,
        )
        times.append((time.perf_counter() - started) * 1000)
    report.add(
        section, f"listing, 20 of {total} docs, p50 (bus + access)", percentile(times, 50), "ms"
    )
    report.add(
        section, f"listing, 20 of {total} docs, p99 (bus + access)", percentile(times, 99), "ms"
    )
    await db.execute("SET search_path TO dossier")
    query_times = []
    for _ in range(500):
        started = time.perf_counter()
        await dossier_repository.page_candidates(
            db, ins, document_types=None, include_masked=False, after=None, limit=21
        )
        query_times.append((time.perf_counter() - started) * 1000)
    await db.execute("SET search_path TO public")
    report.add(section, "listing query alone p99 (database)", percentile(query_times, 99), "ms")


async def _retry(action: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    from libs.bus.rpc import RpcError

    async with asyncio.timeout(timeout):
        while True:
            try:
                return await action()
            except RpcError as exc:
                if exc.code in ("timeout", "unavailable", "internal_error"):
                    raise
                await asyncio.sleep(0.1)


async def _holder_sign_in(client: Any, smtp: Any, ins: str, email: str) -> str:
    # identity answers the same whether or not a code went (the space may not be open yet):
    # ask again while no code arrives (within the per-INS limit: 5 an hour).
    from libs.bus.rpc import RpcError
    from libs.contracts import commands as cmd

    async with asyncio.timeout(30):
        while True:
            asked_at = time.monotonic()
            try:
                await client.send(cmd.RequestHolderCode(ins=ins))
            except RpcError as exc:
                if exc.code != "rate_limited":
                    raise
            while time.monotonic() - asked_at < 5:
                codes = [
                    m.get_body(("plain",)).get_content()
                    for m in smtp.mailbox.to(email)
                    if "code" in str(m["Subject"])
                ]
                code = re.search(r"\b(\d{6})\b", codes[-1]) if codes else None
                if code is not None:
                    session = await client.send(cmd.SignInHolder(ins=ins, code=code[1]))
                    return str(session.token)
                await asyncio.sleep(0.05)


# --- main -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    raw_messages: int
    rpc_calls: int
    pipeline_events: int
    decisions: int
    deposits: int


DEFAULT = Sizes(
    raw_messages=15_000, rpc_calls=6_000, pipeline_events=6_000, decisions=1_000, deposits=400
)
QUICK = Sizes(
    raw_messages=4_000, rpc_calls=2_000, pipeline_events=2_000, decisions=300, deposits=100
)


async def main(sizes: Sizes, skip_system: bool, pool_size: int, in_process: bool) -> Report:
    report = Report()
    logging.basicConfig(level=logging.WARNING)
    async with fresh_infra() as (database_url, amqp_url):
        identity_jwks = public_jwks(key_set(new_signing_key()))
        settings = service_settings(database_url, amqp_url, identity_jwks, pool_size)
        print(f"database {database_url.rsplit('/', 1)[-1]}, vhost {amqp_url.rsplit('/', 1)[-1]}")
        await raw_publish_consume(report, amqp_url, sizes.raw_messages)
        await raw_rpc(report, amqp_url, sizes.rpc_calls)
        await our_rpc(report, settings, sizes.rpc_calls)
        await our_pipeline(report, settings, sizes.pipeline_events)
        if skip_system:
            report.add("system", "skipped", "skipped: --no-system")
        else:
            await system(
                report,
                database_url,
                amqp_url,
                sizes.decisions,
                sizes.deposits,
                pool_size,
                in_process,
            )
    return report


def print_ratios(report: Report) -> None:
    def ratio(ours: str, raw: str) -> str:
        a, b = report.get(ours), report.get(raw)
        return f"{a / b:.2f}x ({a:,.0f} / {b:,.0f})" if a and b else "n/a"

    print("\nratios (ours / raw):")
    print(
        "  RPC calls/s:                 ",
        ratio("ours RpcClient->Runtime (64)/calls/s", "raw aio-pika RPC (64 in flight)/calls/s"),
    )
    print(
        "  RPC p50 latency:             ",
        ratio(
            "ours RpcClient->Runtime (64)/p50 latency",
            "raw aio-pika RPC (64 in flight)/p50 latency",
        ),
    )
    print(
        "  events end to end/s:         ",
        ratio(
            "ours outbox->relay->inbox/end to end events/s",
            "raw aio-pika publish->consume/end to end msgs/s",
        ),
    )
    print(
        "  card sign-ins vs echo RPC:   ",
        ratio("system sign-ins/card sign-ins/s (64)", "ours RpcClient->Runtime (64)/calls/s"),
    )
    print(
        "  access.decide vs echo RPC:   ",
        ratio("system access.decide (64)/decisions/s", "ours RpcClient->Runtime (64)/calls/s"),
    )


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (well under a minute)")
    parser.add_argument("--no-system", action="store_true", help="skip the six-service section")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the six services in this process (one core) instead of one process each",
    )
    parser.add_argument(
        "--db-pool-size",
        type=int,
        default=DB_POOL_SIZE,
        help=f"connections per service (default {DB_POOL_SIZE}; six services run at once)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else DEFAULT
    print(f"bench: {'quick' if args.quick else 'default'} sizes {sizes}, {os.cpu_count()} cpus")
    started = time.perf_counter()
    report = asyncio.run(main(sizes, args.no_system, args.db_pool_size, args.in_process))
    report.print_table()
    print_ratios(report)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    json_out = os.environ.get("BENCH_JSON")
    if json_out:
        Path(json_out).write_text(json.dumps(report.values, indent=2))


if __name__ == "__main__":
    sys.exit(cli())
