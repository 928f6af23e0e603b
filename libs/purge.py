"""A service's part of the holder purge (RET_01: ten years after closure, the archive is deleted).

Retention publishes `HolderPurgeRequested`; each service it names deletes, in one transaction,
everything it holds for the INS, then answers with its own `...PurgedHolder` event (rows deleted
by table, no personal data) written to its outbox in that same transaction. So an answer means
the deletion is committed, and a request delivered again (or retried by retention) deletes
nothing more and answers again, which retention ignores.

What a service deletes:
- its own tables, by the statements it declares (each takes the INS as $1), in their order;
- what every service keeps besides: events in its outbox that name the INS (sent or not: the
  holder is gone, nobody needs to hear of them any more) and stored command replies that name it.
  An INS is searched as a JSON string (`"<ins>"`), as both are JSON, and in the key of the
  holder's own requests.

A service that knows of a space newer than the one closed (the INS was registered again after an
earlier purge answered) deletes nothing and says so: a late retry never erases a new person.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from libs import outbox
from libs.contracts.events import PURGE_ANSWERS, HolderPurgeRequested
from libs.db import Conn
from libs.runtime import EventContext, Runtime

log = structlog.get_logger()

NewerSpace = Callable[[Conn, str, datetime], Awaitable[bool]]

# Every service's technical tables (libs/migrations) that may name a holder: events (JSON) and
# stored replies (JSON) that name the INS, and replies to the holder's own requests (their key
# names who asked, libs.runtime._request_key).
KEPT_BY_EVERY_SERVICE: tuple[tuple[str, str], ...] = (
    (
        "outbox",
        "DELETE FROM outbox WHERE strpos(convert_from(body, 'UTF8'), '\"' || $1 || '\"') > 0",
    ),
    (
        "requests",
        "DELETE FROM requests WHERE strpos(reply::text, '\"' || $1 || '\"') > 0"
        " OR strpos(request_key, '|holder:' || $1 || '|') > 0",
    ),
)


@dataclass(frozen=True)
class Purge:
    """What one service deletes for a holder.

    `tables`: (table, DELETE statement with the INS as $1), run in order (children first).
    `newer_space`: whether this service knows of a space for the INS newer than the closure.
    `prepare`: statements run first in the transaction (e.g. the settings a trigger asks for).
    """

    tables: Sequence[tuple[str, str]]
    newer_space: NewerSpace | None = None
    prepare: Sequence[str] = field(default_factory=tuple)


def queue_of(service: str) -> str:
    return f"{service}.purges"


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3".
    return int(status.split()[-1])


async def delete_holder(conn: Conn, purge: Purge, ins: str) -> dict[str, int]:
    """Delete everything `purge` names for `ins`; rows deleted by table (one entry per table,
    zeros included, so that a proof shows every table was looked at)."""
    for statement in purge.prepare:
        await conn.execute(statement)
    rows: dict[str, int] = {}
    for table, statement in purge.tables:
        rows[table] = rows.get(table, 0) + _count(await conn.execute(statement, ins))
    return rows | await delete_mentions(conn, ins)


async def delete_mentions(conn: Conn, ins: str) -> dict[str, int]:
    """The events in this service's outbox and its stored replies that name `ins`."""
    return {
        table: _count(await conn.execute(statement, ins))
        for table, statement in KEPT_BY_EVERY_SERVICE
    }


def register(runtime: Runtime[Any], purge: Purge) -> None:
    """Take part in holder purges on `<service>.purges`."""
    answer = PURGE_ANSWERS[runtime.name]

    async def on_holder_purge_requested(ctx: EventContext, event: HolderPurgeRequested) -> None:
        if ctx.runtime.name not in event.services:
            return  # a retry for the services that have not answered yet
        now = ctx.runtime.now()
        skipped: str | None = None
        rows: dict[str, int] = {}
        if purge.newer_space is not None and await purge.newer_space(
            ctx.conn, event.ins, event.closed_at
        ):
            skipped = "newer_space"
        else:
            rows = await delete_holder(ctx.conn, purge, event.ins)
        await outbox.add_event(
            ctx.conn,
            answer(purge_id=event.purge_id, rows=rows, purged_at=now, skipped=skipped),
            holder_key=str(event.purge_id),
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )
        log.info(
            "holder_purged",
            purge_id=str(event.purge_id),
            rows=sum(rows.values()),
            skipped=skipped,
        )

    runtime.on_events(queue_of(runtime.name), {HolderPurgeRequested: on_holder_purge_requested})
