"""The fault suite's harness: the six services as processes on private servers, a steady load
of deposits and reads through `libs.client.Client`, and the checks made afterwards from the
private database.

Every operation of the load carries a correlation id chosen here; the services carry it into
the access trace (`access.traces.correlation_id`) and into the outbox row of `AccessLogged`.
From it the checks find, for each operation: its traces, the documents stored under those
decisions, the `AccessLogged` events and the alerts raised for them (`notifier.alerts`,
`cause_event_id`), and messaging's notice of each deposit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiormq.exceptions import AMQPError

from libs.bus import topology
from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.clock import advance
from libs.contracts import commands as cmd
from libs.contracts.events import AccessLogged
from libs.faults import is_transient
from scripts import processes
from tests.support import infra
from tests.support.actors import b64, sign_in_professional
from tests.support.people import new_nir, new_professional
from tests.support.smtp import Mailbox, SmtpServer
from tests.support.system import Keys, new_keys

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run" / "faults"
SERVICES = processes.SERVICES
RATE = 20.0  # operations per second (deposits and reads alternately)
MAX_IN_FLIGHT = 100  # past this, a tick sends nothing (counted as skipped, not as sent)
CALL_TIMEOUT = 10.0
# A client retries what failed for a transient reason (no answer in time, the service or the
# broker away, access undecided) with the same request, as a practice software would, until
# OP_BUDGET seconds after it first sent it.
OP_BUDGET = 45.0
RETRY_PAUSE = 0.5
RECOVERY_BUDGET = 180.0  # seconds after the fault ends for the system to serve again by itself
SETTLE_BUDGET = 120.0  # seconds for effects in flight (alerts, notices) to arrive
# Ping through each service's command queue: a client's broker user cannot reach access.decide
# (access's Ping reports that queue's consumer too).
READY_QUEUES = [f"{name}.commands" for name in SERVICES]
HOLDERS = 4
PROS = 2

# --- the services ---------------------------------------------------------------------------


def service_values(database_url: str, amqp_url: str, keys: Keys, smtp_port: int) -> dict[str, Any]:
    """The settings `scripts/run_system.py` gives the services, on the private servers."""
    return {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "identity_jwks": keys.identity_public,
        "operator_public_keys": {keys.operator_id: keys.operator_public},
        "dossier_content_key": "kO7n0Zr0m4v3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "messaging_content_key": "mE5s4g1nGk3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA0",
        "purge_proof_key": "pUrG3pr00fK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "log_pseudonym_key": "l0gPs3udOnYmK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bF",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "clock_mode": "adjustable",
        "sweep_interval_seconds": 0.5,
        "log_level": "INFO",
        "rpc_timeout_seconds": CALL_TIMEOUT,
        "db_pool_size": 4,
        # The notifier's bursts: past the first few alerts of a holder, a digest at the end of a
        # short window, so that it is sent (and checked) while the effects settle.
        "digest_window_seconds": 5.0,
        "digest_sweep_seconds": 0.5,
    }


def service_environment(name: str, values: dict[str, Any], keys: Keys) -> dict[str, str]:
    """THE one place a service's environment is built (as `scripts.processes.start` does):
    `values` name the environment with the administrator's URLs; the service gets its own
    broker user and database role (`tests.support.infra.service_values`)."""
    env = {**os.environ, **processes.environment(infra.service_values(values, name))}
    env.pop("IDENTITY_SIGNING_KEYS", None)
    if name == "identity":  # only identity holds the signing keys
        env["IDENTITY_SIGNING_KEYS"] = keys.identity_private
    env["PYTHONPATH"] = str(ROOT)
    return env


class System:
    """The six services as processes, each startable, killable and restartable on its own."""

    def __init__(self, values: dict[str, Any], keys: Keys, logs: Path) -> None:
        self.values = values
        self.keys = keys
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # A service started with another entry point (crash points), by name.
        self.modules: dict[str, str] = {}
        self.extra_env: dict[str, dict[str, str]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str) -> None:
        assert name not in self.procs or self.procs[name].poll() is not None, f"{name} running"
        env = {**service_environment(name, self.values, self.keys), **self.extra_env.get(name, {})}
        module = self.modules.get(name)
        args = ["-m", module, name] if module else ["-m", f"services.{name}"]
        with (self.logs / f"{name}.log").open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            self.procs[name] = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
                preexec_fn=processes._die_with_parent,
            )

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def kill(self, name: str) -> None:
        process = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.procs[name].send_signal(sig)

    def stop_all(self) -> None:
        for process in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)
        processes.stop({n: p for n, p in self.procs.items() if p.poll() is None}, timeout=15)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


# --- the client and its load ----------------------------------------------------------------

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fault_correlation", default=None
)


class CorrelatedRpc(RpcClient):
    """An RpcClient that gives each command the correlation id of the operation in progress and
    a request id derived from it and from the command, the same on every retry (a retried
    command is then done once), so `libs.client.Client` is used as is and its effects can be
    found afterwards."""

    async def call(self, queue: str, command: str, payload: dict[str, Any], **kw: Any) -> Any:
        correlation_id = _correlation.get()
        if kw.get("correlation_id") is None:
            kw["correlation_id"] = correlation_id
        # `libs.client.Client` passes `request_id=None` when its caller chose none.
        if kw.get("request_id") is None and correlation_id is not None and command != "Ping":
            kw["request_id"] = f"{correlation_id}.{command}"
        return await super().call(queue, command, payload, **kw)


async def connect_client(amqp_url: str) -> tuple[RpcClient, Client]:
    # As a practice software connects: its own broker user, commands and replies only.
    rpc = CorrelatedRpc(infra.client_url(amqp_url), name="faults", timeout=CALL_TIMEOUT)
    await rpc.connect()
    return rpc, Client(rpc)


@dataclass
class World:
    """Holders with open spaces, each having authorized every professional."""

    holders: list[str]
    holder_tokens: dict[str, str]
    pro_tokens: list[str]


async def _retry(action: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await action()
            except RpcError:
                await asyncio.sleep(0.3)


async def populate(client: Client, smtp: SmtpServer, database_url: str, keys: Keys) -> World:
    """As bench/bench.py does: register holders and professionals, move the shared clock six
    weeks so the spaces open, sign the holders in with their e-mailed codes, authorize."""
    operator = (
        await _retry(
            lambda: client.sign_in_with_card("operator", keys.operator_id, keys.operator_private)
        )
    ).token
    holders = []
    for i in range(HOLDERS):
        ins = new_nir(sex=2, year=80 + i)
        await client.send(
            cmd.RegisterHolder(
                nir=ins,
                first_name="Fault",
                last_name=f"Holder{i}",
                birth_date=date(1980 + i, 5, 1),
                email=f"holder.{ins}@example.org",
            ),
            token=operator,
        )
        holders.append(ins)
    pros = [new_professional("physician", f"Fault{i}") for i in range(PROS)]
    for pro in pros:
        await client.send(pro.registration(), token=operator)
    await advance(database_url, timedelta(weeks=6, minutes=1))
    # A code is mailed only for an open space, and code requests are rate-limited per INS:
    # wait for identity to have opened the spaces before asking.
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(60):
            while await conn.fetchval(
                "SELECT count(*) FROM identity.spaces WHERE ins = ANY($1) AND status = 'open'",
                holders,
            ) < len(holders):
                await asyncio.sleep(0.2)
    finally:
        await conn.close()
    holder_tokens = {}
    for ins in holders:
        holder_tokens[ins] = await _holder_sign_in(client, smtp, ins, f"holder.{ins}@example.org")
    pro_tokens = [await sign_in_professional(client, p) for p in pros]
    for ins, token in holder_tokens.items():
        for pro in pros:
            await _retry(
                lambda ins=ins, token=token, pro=pro: client.send(
                    cmd.AuthorizeProfessional(ins=ins, rpps=pro.rpps), token=token
                )
            )
    return World(holders, holder_tokens, pro_tokens)


async def _holder_sign_in(client: Client, smtp: SmtpServer, ins: str, email: str) -> str:
    # The space opens once retention and identity saw the clock move: retry until then.
    await _retry(lambda: client.send(cmd.RequestHolderCode(ins=ins)))
    async with asyncio.timeout(30):
        while True:
            bodies = [
                m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                for m in smtp.mailbox.to(email)
                if "code" in str(m["Subject"])
            ]
            found = re.search(r"\b(\d{6})\b", bodies[-1]) if bodies else None
            if found is not None:
                return (await client.send(cmd.SignInHolder(ins=ins, code=found[1]))).token
            await asyncio.sleep(0.05)


@dataclass
class Op:
    kind: str  # deposit | read
    correlation_id: str
    ins: str
    sent_at: float
    outcome: str = "pending"  # ok | <error code> | exception:<type>
    document_id: str | None = None
    attempts: int = 0
    failures: list[str] = field(default_factory=list)  # the transient failures retried

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "ok"


# Failures a client waits out and retries with the same request: the service or the broker is
# away or slow (`libs.faults`), or access could not be reached ("try again later").
RETRY_CODES = {"timeout", "unavailable", "access_undecided"}


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, RpcError):
        return exc.code in RETRY_CODES
    return is_transient(exc) or isinstance(exc, AMQPError | RuntimeError)


def describe_failure(exc: BaseException) -> str:
    return exc.code if isinstance(exc, RpcError) else f"exception:{type(exc).__name__}"


class Load:
    """Deposits and reads alternately at `rate` per second, until stopped. Each operation is
    retried with the same request (correlation id, payload) on a transient failure."""

    def __init__(self, client: Client, world: World, rate: float = RATE) -> None:
        self.client = client
        self.world = world
        self.rate = rate
        self.ops: list[Op] = []
        self.skipped = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.content = os.urandom(256)

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """No new operation; retries stop; calls in flight get their answer or their timeout,
        then whatever is still running is abandoned (its outcome stays as it is)."""
        self._stop.set()
        if self._runner is not None:
            await self._runner
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CALL_TIMEOUT + 5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            if len(self._tasks) >= MAX_IN_FLIGHT:
                self.skipped += 1
            else:
                task = asyncio.create_task(self._one(i))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            i += 1
            next_at += 1 / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _one(self, i: int) -> None:
        ins = random.choice(self.world.holders)
        token = random.choice(self.world.pro_tokens)
        op = Op("deposit" if i % 2 == 0 else "read", uuid.uuid4().hex, ins, time.monotonic())
        self.ops.append(op)
        _correlation.set(op.correlation_id)
        while True:
            op.attempts += 1
            try:
                if op.kind == "deposit":
                    result = await self.client.send(
                        cmd.DepositDocument(
                            ins=ins,
                            document_type="lab_report",
                            title=f"Bilan {op.correlation_id[:8]}",
                            content_b64=b64(self.content),
                        ),
                        token=token,
                    )
                    op.document_id = str(result.document_id)
                else:
                    await self.client.send(cmd.ReadDossier(ins=ins), token=token)
                op.outcome = "ok"
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                op.outcome = describe_failure(exc)
                if (
                    not retryable(exc)
                    or self._stop.is_set()
                    or time.monotonic() - op.sent_at > OP_BUDGET
                ):
                    return
                op.failures.append(op.outcome)
            await asyncio.sleep(RETRY_PAUSE)


async def canary(client: Client, world: World) -> None:
    """One deposit and one read, both acknowledged (raises otherwise)."""
    ins, token = world.holders[0], world.pro_tokens[0]
    _correlation.set(f"canary-{uuid.uuid4().hex}")
    await client.send(
        cmd.DepositDocument(
            ins=ins, document_type="lab_report", title="canary", content_b64=b64(b"c")
        ),
        token=token,
    )
    await client.send(cmd.ReadDossier(ins=ins), token=token)


@dataclass
class Recovery:
    """What the recovery waited on: per command queue, when it first answered ready (seconds
    after the fault ended) and its last answer that was not ready; the canary's failures."""

    ready_after: dict[str, float] = field(default_factory=dict)
    last_blocker: dict[str, str] = field(default_factory=dict)
    canary_failures: int = 0
    last_canary_failure: str = ""

    def describe(self) -> str:
        ready = ", ".join(f"{q.split('.')[0]} {t:.1f}s" for q, t in self.ready_after.items())
        blockers = "; ".join(f"{q}: {b}" for q, b in self.last_blocker.items())
        return (
            f"first ready after: {ready or '-'}; last not-ready answers: {blockers or '-'};"
            f" canary failures {self.canary_failures} {self.last_canary_failure}"
        )


async def _ping(client: Client, queue: str) -> tuple[bool, str]:
    try:
        answer = await client.send(cmd.Ping(), queue=queue, timeout=2)
    except Exception as exc:
        return False, describe_failure(exc)
    if answer.ready:
        return True, ""
    why = {k: v for k, v in answer.model_dump().items() if k not in ("service", "ready") and v}
    return False, str(why)[:300]


async def measure_recovery(
    client: Client,
    world: World,
    budget: float = RECOVERY_BUDGET,
    recovery: Recovery | None = None,
) -> float:
    """Seconds until every service answers Ping ready (all in one round) and a deposit and a
    read succeed; raises TimeoutError past `budget`. `recovery` collects what it waited on."""
    recovery = recovery if recovery is not None else Recovery()
    started = time.monotonic()
    async with asyncio.timeout(budget):
        while True:
            answers = await asyncio.gather(*(_ping(client, q) for q in READY_QUEUES))
            for queue, (ready, why) in zip(READY_QUEUES, answers, strict=True):
                if ready:
                    recovery.ready_after.setdefault(queue, time.monotonic() - started)
                else:
                    recovery.last_blocker[queue] = f"{time.monotonic() - started:.0f}s {why}"
            if all(ready for ready, _ in answers):
                try:
                    await canary(client, world)
                    return time.monotonic() - started
                except Exception as exc:
                    recovery.canary_failures += 1
                    recovery.last_canary_failure = describe_failure(exc)
            await asyncio.sleep(0.5)


# --- the checks -----------------------------------------------------------------------------


@dataclass
class Verdict:
    sent: int = 0
    acknowledged: int = 0
    lost: int = 0  # effects missing: document, trace, alert, notice
    duplicated: int = 0  # effects present more than once
    stored_though_failed: int = 0  # deposits stored whose caller was told they failed
    mails_resent: int = 0  # the same mail (Message-ID) received again: at least once, by design
    read_retraced: int = 0  # reads the client sent again after a failure, traced again
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.details) < 30:
            self.details.append(text)


def mail_counts(mailbox: Mailbox | None) -> dict[str, int] | None:
    """How many times each Message-ID (the alert id) was received, if mail is checked."""
    if mailbox is None:
        return None
    counts: dict[str, int] = {}
    for message in list(mailbox.messages):
        found = re.match(r"<([0-9a-f-]{36})@", str(message["Message-ID"] or ""))
        if found:
            counts[found[1]] = counts.get(found[1], 0) + 1
    return counts


async def verify(database_url: str, ops: list[Op], mailbox: Mailbox | None = None) -> Verdict:
    verdict = Verdict(sent=len(ops), acknowledged=sum(op.acknowledged for op in ops))
    ids = [op.correlation_id for op in ops]
    conn = await asyncpg.connect(database_url)
    try:
        traces = await conn.fetch(
            "SELECT correlation_id, trace_id, decision_id, outcome, action FROM access.traces"
            " WHERE correlation_id = ANY($1)",
            ids,
        )
        logged = await conn.fetch(
            "SELECT event_id, correlation_id,"
            " convert_from(body, 'UTF8')::jsonb -> 'payload' ->> 'trace_id' AS trace_id,"
            " convert_from(body, 'UTF8')::jsonb -> 'payload' ->> 'actor_kind' AS actor_kind"
            " FROM access.outbox WHERE routing_key = $2 AND correlation_id = ANY($1)",
            ids,
            AccessLogged.routing_key(),
        )
        # Each alert by the mail that tells it: its own, or its burst's digest's.
        alerts: dict[Any, list[str]] = {}
        for r in await conn.fetch(
            "SELECT cause_event_id, coalesce(digest_id, alert_id) AS mailed_as"
            " FROM notifier.alerts WHERE cause_event_id = ANY($1::uuid[])",
            [r["event_id"] for r in logged],
        ):
            alerts.setdefault(r["cause_event_id"], []).append(str(r["mailed_as"]))
        docs = await conn.fetch(
            "SELECT document_id, decision_id FROM dossier.documents"
            " WHERE decision_id = ANY($1::uuid[])",
            [t["decision_id"] for t in traces],
        )
        notices = {
            r["document_id"]
            for r in await conn.fetch(
                "SELECT document_id FROM messaging.messages WHERE document_id = ANY($1::uuid[])",
                [d["document_id"] for d in docs],
            )
        }
    finally:
        await conn.close()

    traces_of: dict[str, list[Any]] = {}
    for t in traces:
        traces_of.setdefault(t["correlation_id"], []).append(t)
    logged_of: dict[str, Any] = {r["trace_id"]: r for r in logged}
    docs_of: dict[Any, list[Any]] = {}
    for d in docs:
        docs_of.setdefault(d["decision_id"], []).append(d)

    mails = mail_counts(mailbox)
    resent_counted: set[str] = set()  # a digest's mail tells many alerts: counted once
    for op in ops:
        mine = traces_of.get(op.correlation_id, [])
        granted = [t for t in mine if t["outcome"] == "granted"]
        stored = [d for t in mine for d in docs_of.get(t["decision_id"], [])]
        # A deposit is one access however often it is sent (same request id). A read takes no
        # request id (each read is an access): each attempt the client sent may be one, more
        # traces than attempts are accesses the caller never made.
        allowed = 1 if op.kind == "deposit" else max(1, op.attempts)
        if len(mine) > allowed:
            verdict.duplicated += len(mine) - allowed
            verdict.note(
                f"{op.kind} {op.correlation_id}: {len(mine)} access traces"
                f" for {op.attempts} attempt(s) {op.failures}"
            )
        elif len(mine) > 1:
            verdict.read_retraced += len(mine) - 1
        if len(stored) > 1:
            verdict.duplicated += len(stored) - 1
            verdict.note(
                f"deposit {op.correlation_id}: stored {len(stored)} times"
                f" for {op.attempts} attempt(s) {op.failures}"
            )
        if op.acknowledged and not granted:
            verdict.lost += 1
            verdict.note(f"{op.kind} {op.correlation_id} acknowledged: no granted trace")
        if op.acknowledged and op.kind == "deposit":
            if op.document_id not in {str(d["document_id"]) for d in stored}:
                verdict.lost += 1
                verdict.note(f"deposit {op.correlation_id} acknowledged: document not stored")
        if not op.acknowledged and stored:
            verdict.stored_though_failed += 1
        for t in granted:
            event = logged_of.get(str(t["trace_id"]))
            if event is None:
                verdict.lost += 1
                verdict.note(f"{op.kind} {op.correlation_id}: trace without AccessLogged")
                continue
            if event["actor_kind"] == "holder":
                continue
            raised = alerts.get(event["event_id"], [])
            n = len(raised)
            if n == 0:
                verdict.lost += 1
                verdict.note(f"{op.kind} {op.correlation_id}: granted access never alerted")
            elif n > 1:
                verdict.duplicated += n - 1
                verdict.note(f"{op.kind} {op.correlation_id}: alerted {n} times")
            if mails is not None:
                for mailed_as in raised:
                    received = mails.get(mailed_as, 0)
                    if received == 0:
                        verdict.lost += 1
                        verdict.note(f"{op.kind} {op.correlation_id}: {mailed_as} never mailed")
                    if mailed_as not in resent_counted:
                        resent_counted.add(mailed_as)
                        verdict.mails_resent += max(0, received - 1)
        for d in stored:
            if d["document_id"] not in notices:
                verdict.lost += 1
                verdict.note(f"deposit {op.correlation_id}: no notice in the holder's box")
    return verdict


async def settle(
    database_url: str,
    ops: list[Op],
    mailbox: Mailbox | None = None,
    budget: float = SETTLE_BUDGET,
) -> Verdict:
    """Verify until nothing is missing any more (effects in flight arrive), or `budget`."""
    deadline = time.monotonic() + budget
    while True:
        verdict = await verify(database_url, ops, mailbox)
        if verdict.lost == 0 or time.monotonic() > deadline:
            return verdict
        await asyncio.sleep(2)


def queues_holding(ctl: Callable[..., str], vhost: str) -> list[str]:
    """Consumer queues (not `.dlq`, not `ops.unrouted`) holding messages, ready or in hand."""
    out = ctl(
        "-q",
        "list_queues",
        "-p",
        vhost,
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "--formatter",
        "json",
    )
    return [
        f"{q['name']} ready {q['messages_ready']} in hand {q['messages_unacknowledged']}"
        for q in json.loads(out)
        if not q["name"].endswith(".dlq")
        and q["name"] != topology.UNROUTED_QUEUE
        and (q.get("messages_ready") or q.get("messages_unacknowledged"))
    ]


async def queues_drained(ctl: Callable[..., str], vhost: str, budget: float = 30.0) -> list[str]:
    """Wait up to `budget` for the consumer queues to be empty (a delivery in hand at one instant,
    or a stale count, is not a stuck one); returns what is still held after it."""
    deadline = time.monotonic() + budget
    while True:
        held = await asyncio.to_thread(queues_holding, ctl, vhost)
        if not held or time.monotonic() > deadline:
            return held
        await asyncio.sleep(2)


# --- the table ------------------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    sent: int
    acknowledged: int
    lost: int
    duplicated: int
    recovered: bool
    recovery_seconds: float | None
    stored_though_failed: int = 0
    note: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)


ROWS: list[Row] = []
HEADER = (
    "fault",
    "operations sent",
    "acknowledged",
    "lost",
    "duplicated effects",
    "recovered by itself",
    "time to recover",
    "stored though failed",
)


def table(rows: list[Row]) -> str:
    cells = [HEADER] + [
        (
            r.fault,
            str(r.sent),
            str(r.acknowledged),
            str(r.lost),
            str(r.duplicated),
            "yes" if r.recovered else "NO",
            f"{r.recovery_seconds:.1f} s" if r.recovery_seconds is not None else "-",
            str(r.stored_though_failed),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = [" | ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))) for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def record(row: Row) -> None:
    ROWS.append(row)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "table.txt").open("a") as out:
        out.write(table([row]).splitlines()[-1] + (f"   # {row.note}" if row.note else "") + "\n")


# --- one fault, end to end ------------------------------------------------------------------


@dataclass
class Bench:
    """What a fault test is given: the system, its client and world, its servers."""

    system: System
    client: Client
    world: World
    database_url: str
    amqp_url: str
    extra: dict[str, Any] = field(default_factory=dict)


Inject = Callable[[Bench], Awaitable[None]]


async def run_fault(
    bench: Bench,
    fault: str,
    inject: Inject,
    *,
    warmup: float = 5.0,
    after: float = 5.0,
) -> Row:
    """Load, inject (returns when the fault is over), measure recovery, load a little more,
    stop, let effects settle, check. Records and prints the row; asserts nothing."""
    load = Load(bench.client, bench.world)
    load.start()
    await asyncio.sleep(warmup)
    recovered, recovery = False, None
    waited = Recovery()
    try:
        await inject(bench)
        try:
            recovery = await measure_recovery(bench.client, bench.world, recovery=waited)
            recovered = True
        except TimeoutError:
            pass
        await asyncio.sleep(after)
    finally:
        await load.stop()
    smtp = bench.extra.get("smtp")
    verdict = await settle(bench.database_url, load.ops, smtp.mailbox if smtp else None)
    outcomes: dict[str, int] = {}
    for op in load.ops:
        outcomes[op.outcome] = outcomes.get(op.outcome, 0) + 1
    retried = [op for op in load.ops if op.attempts > 1]
    retried_ok = sum(op.acknowledged for op in retried)
    row = Row(
        fault,
        verdict.sent,
        verdict.acknowledged,
        verdict.lost,
        verdict.duplicated,
        recovered,
        recovery,
        verdict.stored_though_failed,
        outcomes=outcomes,
        note=(
            f"outcomes {outcomes}; retried {len(retried)} ({retried_ok} then ok);"
            f" skipped ticks {load.skipped}; mails re-sent {verdict.mails_resent};"
            f" reads sent again and traced again {verdict.read_retraced}"
        ),
    )
    record(row)
    report = "\n".join(
        [
            table([row]),
            f"  {row.note}",
            f"  recovery: {waited.describe()}",
            *(f"  - {x}" for x in verdict.details),
        ]
    )
    print(f"\n{report}")
    (bench.system.logs / "verdict.txt").write_text(report + "\n")
    return row


@contextlib.asynccontextmanager
async def system_on(
    database_url: str,
    amqp_url: str,
    logs: Path,
    *,
    modules: dict[str, str] | None = None,
    extra_env: dict[str, dict[str, str]] | None = None,
) -> AsyncIterator[Bench]:
    """Six services on the given (fresh) database and vhost, a client, a populated world."""
    keys = new_keys("fault-operator")
    with SmtpServer() as smtp:
        system = System(service_values(database_url, amqp_url, keys, smtp.port), keys, logs)
        system.modules.update(modules or {})
        system.extra_env.update(extra_env or {})
        system.start_all()
        rpc, client = await connect_client(amqp_url)
        try:
            await processes.wait_ready(client, READY_QUEUES, timeout=90)
            world = await populate(client, smtp, database_url, keys)
            yield Bench(system, client, world, database_url, amqp_url, {"smtp": smtp})
        finally:
            await rpc.close()
            system.stop_all()
