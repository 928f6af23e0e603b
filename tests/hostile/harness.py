"""How the hostile suite sends, waits and looks: hypothesis draws, the real bus decides.

hypothesis does not run coroutine tests, and this suite must run on pytest-asyncio's session
loop, where the services and their connections live. So each property is checked in two steps:

1. `draw(strategy, n)` runs hypothesis synchronously (a `@given` function that only collects
   what it is given): `n` examples, hypothesis's own mix of boundary and random cases, no I/O.
2. The async test sends them all through the real broker to the real services (many in flight)
   and checks each outcome; a failure names the input that caused it (`Failure`).

Shrinking is given up (it would replay I/O case by case); the input is printed whole instead,
and the failing cases found so far are pinned as explicit tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from libs.bus.rpc import RpcClient, RpcError
from libs.contracts.rpc import ErrorCode, Reply

T = TypeVar("T")

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")
REPLY_TIMEOUT = 20.0
IN_FLIGHT = 12


def examples(full: int) -> int:
    """How many examples a property draws: `full` with `HOSTILE=full` (`make test-hostile`),
    half of it in `make test`, which must stay well under fifteen minutes (hypothesis's boundary
    cases come first either way; the half keeps every target and every property)."""
    return full if os.environ.get("HOSTILE") == "full" else max(4, full // 2)


def draw(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """`n` examples of `strategy`, as hypothesis would try them (no shrinking, no database)."""
    found: list[T] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found


@dataclass(frozen=True)
class Outcome:
    """What came back for one input: a reply, or the client's own error (timeout...)."""

    case: Any
    reply: Reply | None
    error: str | None = None
    # The client's own refusal: a request too large for its queue never leaves it.
    refused: str | None = None

    @property
    def code(self) -> str | None:
        if self.reply is None:
            return self.refused or f"<no reply: {self.error}>"
        return None if self.reply.ok else (self.reply.error.code if self.reply.error else "")


def shown(case: Any, limit: int = 300) -> str:
    text = repr(case)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


async def send_all(
    rpc: RpcClient, queue: str, cases: Iterable[T], body: Callable[[T], bytes]
) -> list[Outcome]:
    """Send every case's request bytes to `queue`, many in flight; collect the replies."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(case: T) -> Outcome:
        async with gate:
            try:
                raw = await rpc.call_raw(queue, body(case), timeout=REPLY_TIMEOUT)
            except RpcError as exc:
                refused = exc.code if exc.code == ErrorCode.TOO_LARGE else None
                return Outcome(case, None, f"{exc.code}: {exc.message}", refused)
        try:
            return Outcome(case, Reply.model_validate_json(raw))
        except ValueError as exc:
            return Outcome(case, None, f"unreadable reply {raw[:200]!r}: {exc}")

    return list(await asyncio.gather(*(one(c) for c in cases)))


def refusals_outside(outcomes: list[Outcome], allowed: AbstractSet[str | None]) -> list[str]:
    """Every outcome that is not a refusal with one of the `allowed` codes, described. A request
    over its queue's size limit (`too_large`, by the server or before it is sent) is always a
    refusal allowed: nothing reads it further."""
    allowed = allowed | {ErrorCode.TOO_LARGE.value}
    return [
        f"{o.code or 'ok'} for {shown(o.case)}"
        + (f" ({o.reply.error.message[:200]})" if o.reply and o.reply.error else "")
        for o in outcomes
        if o.code not in allowed
    ]


def request_bytes(command: str, payload: Any, token: str | None, **extra: Any) -> bytes:
    body = {"command": command, "token": token, "correlation_id": "hostile", "payload": payload}
    body.update(extra)
    return json.dumps(body).encode()


async def ping(rpc: RpcClient, queue: str) -> dict[str, Any]:
    raw = await rpc.call_raw(queue, request_bytes("Ping", {}, None), timeout=REPLY_TIMEOUT)
    reply = Reply.model_validate_json(raw)
    assert reply.ok and reply.result is not None, f"{queue} does not answer Ping: {reply}"
    return reply.result


# --- what the databases hold --------------------------------------------------------------------


# Per set of schemas: its last fingerprint and since when it has not moved (monotonic time).
_UNMOVED: dict[tuple[str, ...], tuple[dict[str, str], float]] = {}


async def fingerprint(db: asyncpg.Connection, schemas: Iterable[str] = SERVICES) -> dict[str, str]:
    """Every table of the services' schemas: its row count and a digest of its rows (one round
    trip). Remembers since when it has not moved, for `settled`."""
    key = tuple(sorted(schemas))
    tables = await db.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'"
        " AND table_name <> 'schema_migrations' ORDER BY 1, 2",
        list(key),
    )
    names = [f'"{row["table_schema"]}"."{row["table_name"]}"' for row in tables]
    found: dict[str, str] = {}
    if names:
        rows = await db.fetch(
            " UNION ALL ".join(
                f"SELECT {i} AS n, count(*) AS count,"
                f" md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest"
                f" FROM {name} t"
                for i, name in enumerate(names)
            )
        )
        found = {names[row["n"]]: f"{row['count']}:{row['digest']}" for row in rows}
    now = time.monotonic()
    last = _UNMOVED.get(key)
    _UNMOVED[key] = (found, last[1] if last is not None and last[0] == found else now)
    return found


async def settled(
    db: asyncpg.Connection,
    schemas: Iterable[str] = SERVICES,
    timeout: float = 15.0,
    quiet: float = 1.0,
) -> dict[str, str]:
    """The fingerprint once nothing has moved for `quiet` seconds (effects in flight have
    landed). The quiet time counts from the earlier fingerprints that found the same: a test
    that follows one which wrote nothing does not wait again."""
    key = tuple(sorted(schemas))
    deadline = time.monotonic() + timeout
    while True:
        now = await fingerprint(db, key)
        if time.monotonic() - _UNMOVED[key][1] >= quiet or time.monotonic() > deadline:
            return now
        await asyncio.sleep(min(quiet, max(0.05, quiet - (time.monotonic() - _UNMOVED[key][1]))))


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in {*before, *after} if before.get(t) != after.get(t))


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.2
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
