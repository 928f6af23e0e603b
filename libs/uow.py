"""One unit of work: a transaction, the events it causes, and the request it answers.

    async with ctx.unit_of_work() as uow:
        ...                       # uow.conn: the transaction's connection
        await uow.emit(SomethingHappened(ins=..., ...))
        return uow.answer({...})  # what the caller is told, stored with the effects

`emit` writes to the outbox in the same transaction, the holder key, time, correlation and
causation filled from the context; the events are written when the work is done, with the stored
reply, in one statement (one round trip however many events). For a command carrying a request
id, the request is claimed in the same transaction and its reply stored with the effects: a
retried or redelivered request finds the claim, changes nothing, and gets the first reply
(`AlreadyAnswered`, which the runtime turns into that reply). Two copies of one request running
at once meet on the claim's primary key: the second waits for the first to commit, then replays
its reply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from libs import db, outbox
from libs.contracts.envelope import Envelope, Event, envelope_for
from libs.contracts.rpc import ErrorCode
from libs.db import Conn, Pool
from libs.errors import Conflict

R = TypeVar("R")


class AlreadyAnswered(Exception):
    """The request was done before; `reply` is what its caller was told."""

    def __init__(self, reply: Any) -> None:
        super().__init__("request already answered")
        self.reply = reply


@dataclass(frozen=True)
class RequestKey:
    key: str  # caller, actor and the request id they chose
    command: str
    fingerprint: str
    # How long the reply may be replayed; None: as long as it is kept. A decision (a grant)
    # must not outlive the retries it is for: replayed later, an old grant would outrun a
    # revocation.
    replay_window: timedelta | None = None

    @classmethod
    def of(
        cls,
        scope: str,
        request_id: str,
        command: str,
        payload: dict[str, Any],
        replay_window: timedelta | None = None,
    ) -> RequestKey:
        return cls(f"{scope}|{request_id}", command, fingerprint(command, payload), replay_window)


def fingerprint(command: str, payload: dict[str, Any]) -> str:
    """The SHA-256 of `[command, payload]` as canonical JSON (sorted keys, no spaces): what tells
    a retry from another request under the same id. A payload carrying a document (a deposit's
    base64, megabytes) is hashed a slice at a time: whole, its JSON and their bytes would be two
    more copies of it at once in the dossier's memory. Either way, the same digest."""
    digest = hashlib.sha256()
    if any(isinstance(v, str) and len(v) > _SLICE for v in payload.values()):
        digest.update(f"[{_dumps(command)},{{".encode())
        for position, name in enumerate(sorted(payload)):
            digest.update(f"{',' if position else ''}{_dumps(name)}:".encode())
            value = payload[name]
            if isinstance(value, str) and len(value) > _SLICE:
                digest.update(b'"')
                for start in range(0, len(value), _SLICE):
                    # JSON escapes one character at a time: the slices' escapes join up.
                    digest.update(_dumps(value[start : start + _SLICE])[1:-1].encode())
                digest.update(b'"')
            else:
                digest.update(_dumps(value).encode())
        digest.update(b"}]")
    else:
        digest.update(_dumps([command, payload]).encode())
    return digest.hexdigest()


_SLICE = 1 << 16


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


async def stored_reply(conn: Conn | Pool, request: RequestKey) -> Any | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, reply, clock_timestamp() - created_at AS age FROM requests"
        " WHERE request_key = $1",
        request.key,
    )
    if row is None:
        return None
    _check_same(request, row["fingerprint"])
    if request.replay_window is not None and row["age"] > request.replay_window:
        raise Conflict(
            "this request id is too old to be replayed; send the request under a new one",
            code=ErrorCode.REQUEST_ID_EXPIRED,
        )
    return json.loads(row["reply"])


def _check_same(request: RequestKey, fingerprint: str) -> None:
    if fingerprint != request.fingerprint:
        raise Conflict(
            "this request id was already used for a different request; choose a new one",
            code=ErrorCode.REQUEST_ID_REUSED,
        )


@dataclass
class UnitOfWork:
    conn: Conn
    correlation_id: str
    now: datetime
    causation_id: str | None = None
    reply: Any = None
    emitted: list[Event] = field(default_factory=list)
    # Written to the outbox when the work is done (`_record`), in this transaction.
    pending: list[tuple[Envelope, str]] = field(default_factory=list)

    def answer(self, reply: R) -> R:
        """The reply to the request, stored with the effects when the transaction commits."""
        self.reply = reply
        return reply

    async def emit(self, event: Event, *, holder_key: str | None = None) -> None:
        """Write `event` to the outbox, in this transaction."""
        key = holder_key if holder_key is not None else getattr(event, "ins", None)
        if key is None:
            raise ValueError(f"{type(event).__name__} names no holder: pass holder_key")
        envelope = envelope_for(
            event,
            holder_key=key,
            occurred_at=self.now,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        self.pending.append((envelope, event.routing_key()))
        self.emitted.append(event)


@asynccontextmanager
async def unit_of_work(
    pool: Pool,
    *,
    correlation_id: str,
    now: datetime,
    request: RequestKey | None = None,
    causation_id: str | None = None,
) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, _claiming(conn, request) as claimed:
        if not claimed:
            assert request is not None
            raise AlreadyAnswered(await stored_reply(conn, request))
        uow = UnitOfWork(conn, correlation_id, now, causation_id)
        yield uow
        await _record(conn, uow, request)


@asynccontextmanager
async def _claiming(conn: Conn, request: RequestKey | None) -> AsyncIterator[bool]:
    """The unit of work's transaction, with its request's claim if it answers one: yields
    False when the request was claimed before. A key, command and fingerprint of plain
    characters (as request ids, broker users and token subjects are) go with the `BEGIN`, in
    one round trip (`db.begun_with`); any other key in a statement of its own."""
    if request is None:
        async with conn.transaction():
            yield True
        return
    if db.plain(request.key) and db.plain(request.command) and db.plain(request.fingerprint):
        values = ", ".join(map(db.literal, (request.key, request.command, request.fingerprint)))
        async with db.begun_with(
            conn,
            "INSERT INTO requests (request_key, command, fingerprint, reply)"
            f" VALUES ({values}, 'null') ON CONFLICT DO NOTHING",
        ) as status:
            yield status == "INSERT 0 1"
        return
    async with conn.transaction():
        yield bool(
            await conn.fetchval(
                "INSERT INTO requests (request_key, command, fingerprint, reply)"
                " VALUES ($1, $2, $3, 'null') ON CONFLICT DO NOTHING RETURNING true",
                request.key,
                request.command,
                request.fingerprint,
            )
        )


async def _record(conn: Conn, uow: UnitOfWork, request: RequestKey | None) -> None:
    """The events emitted and the reply, in one statement, last in the transaction."""
    if request is None:
        await outbox.add_many(conn, uow.pending)
        return
    if uow.reply is None:
        raise RuntimeError(f"{request.command}: the unit of work set no reply")
    if isinstance(uow.reply, BaseModel):
        uow.reply = uow.reply.model_dump(mode="json")
    reply = json.dumps(uow.reply, default=str)
    if not uow.pending:
        await conn.execute(
            "UPDATE requests SET reply = $2 WHERE request_key = $1", request.key, reply
        )
        return
    await outbox.add_many(
        conn,
        uow.pending,
        also="answered AS (UPDATE requests SET reply = $7 WHERE request_key = $6 RETURNING 1)",
        also_args=(request.key, reply),
    )
