"""Whether a space is open or closed, as identity's lifecycle events tell it: one projection,
kept the same way by every service that serves a space (access, dossier, messaging), so that at
any moment they agree.

Identity stamps each change with its own time (`opened_at`, `closed_at`) while it holds the space
locked, so for one space those times follow the order in which the changes happened. The events
reach a consumer in any order (a requeue, an outage waited out, a message sent back to its queue's
tail), so the projection keeps the status of the latest change it has heard of:

- the later change wins, whichever arrives first. A closure is not final: the holder may
  reactivate the space during its ten years of archive (RET_01), and an opening later than a
  closure is that reactivation;
- an earlier change arriving late changes nothing: after a `SpaceClosed`, an older `SpaceOpened`
  leaves the space closed. A closure of a space never heard of is kept, so that an older opening
  delivered after it cannot open the space;
- at the same instant a closure wins over an opening: the order cannot be told, and the mistake
  to avoid is serving a closed space (ACC_17, RET_05), an access that would be unlawful, while a
  refusal can be tried again;
- the same change heard again changes nothing.

So the kept state is the greatest change heard, by (time, closure over opening): the same
whatever the order of delivery, duplicates included. `apply` writes it in one statement whose
condition PostgreSQL evaluates against the row as last committed, so deliveries racing in
concurrent transactions end where a delivery one by one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import structlog

from libs import db
from libs.contracts.envelope import Event
from libs.contracts.events import SpaceClosed, SpaceOpened, SpaceReactivated
from libs.db import Conn
from libs.runtime import EventContext, EventHandler

log = structlog.get_logger()

Status = Literal["open", "closed"]

# The projection's table, for the services that opt in (`Runtime(..., shared_migrations=...)`):
# applied after libs' own migrations and before the service's, which moved its former table in.
MIGRATIONS = {"spaces": db.LIBS_MIGRATIONS / "spaces"}


@dataclass(frozen=True)
class Change:
    status: Status
    at: datetime  # when identity made it


def supersedes(incoming: Change, current: Change | None) -> bool:
    """Whether `incoming` replaces the change the projection holds (see the module's rule)."""
    return current is None or _rank(incoming) > _rank(current)


def _rank(change: Change) -> tuple[datetime, bool]:
    return change.at, change.status == "closed"


async def apply(conn: Conn, ins: str, status: Status, at: datetime) -> bool:
    """Record a change unless it does not supersede the one held; True when recorded."""
    # The row comparison is `_rank` (false < true): keep the two the same.
    recorded = await conn.fetchval(
        """INSERT INTO space_lifecycle AS held (ins, status, changed_at) VALUES ($1, $2, $3)
           ON CONFLICT (ins) DO UPDATE SET status = EXCLUDED.status,
                                           changed_at = EXCLUDED.changed_at
           WHERE (EXCLUDED.changed_at, EXCLUDED.status = 'closed')
               > (held.changed_at, held.status = 'closed')
           RETURNING true""",
        ins,
        status,
        at,
    )
    return bool(recorded)


async def status(conn: Conn, ins: str, *, lock: bool = False) -> Status | None:
    """The space's status as last heard from identity; None when nothing was heard.

    With `lock`, the row is share-locked until the transaction ends, so a change being recorded
    concurrently waits for this transaction (or this transaction sees it).
    """
    sql = "SELECT status FROM space_lifecycle WHERE ins = $1" + (" FOR SHARE" if lock else "")
    found: Status | None = await conn.fetchval(sql, ins)
    return found


async def opened_since(conn: Conn, ins: str, closed_at: datetime) -> bool:
    """Whether identity opened a space for `ins` after `closed_at`: for a purge of the space
    closed then, the INS now names someone newer (libs.purge)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM space_lifecycle"
            " WHERE ins = $1 AND status = 'open' AND changed_at > $2)",
            ins,
            closed_at,
        )
    )


# The projection's part of a holder purge (libs.purge).
PURGE_TABLE = ("space_lifecycle", "DELETE FROM space_lifecycle WHERE ins = $1")


async def on_space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    await _record(ctx.conn, event.ins, "open", event.opened_at)


async def on_space_reactivated(ctx: EventContext, event: SpaceReactivated) -> None:
    """RET_01: the holder reactivated the space within its ten years: it is served again."""
    await _record(ctx.conn, event.ins, "open", event.reactivated_at)


async def on_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_05: from the closure, the services that read this projection stop serving the space."""
    await _record(ctx.conn, event.ins, "closed", event.closed_at)


async def _record(conn: Conn, ins: str, status: Status, at: datetime) -> None:
    if await apply(conn, ins, status, at):
        log.info("space_status_recorded", status=status, at=at.isoformat())
    else:
        log.info("space_event_superseded", status=status, at=at.isoformat())


# What a service that serves spaces consumes to keep this projection: `runtime.on_events(queue,
# spaces.HANDLERS)`.
HANDLERS: dict[type[Event], EventHandler] = {
    SpaceOpened: on_space_opened,
    SpaceReactivated: on_space_reactivated,
    SpaceClosed: on_space_closed,
}
