"""retention's use cases: record and cancel deadlines, fire those that have come, list them.

Every deadline of the system lives here (RET_04): other services never keep timers, they react
to the `...Due` events this service publishes when a deadline comes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from libs import outbox
from libs.contracts import commands as cmd
from libs.contracts.events import (
    DocumentHeldBack,
    DocumentReleased,
    ProxyAppointed,
    ProxyEnded,
    SpaceAnnounced,
    SpaceClosed,
    SpaceOpened,
    SpaceReactivated,
)
from libs.db import Pool
from libs.errors import Forbidden
from libs.runtime import CommandContext, EventContext
from services.retention import domain, repository

log = structlog.get_logger()

# pg_try_advisory_xact_lock key: one sweeping replica at a time ("retention" in ASCII, 7 bytes).
SWEEP_LOCK = 0x72_65_74_65_6E_74_69


# --- events ---------------------------------------------------------------------------------


async def on_space_announced(ctx: EventContext, event: SpaceAnnounced) -> None:
    """SPC_01 / RET_04: the space opens by itself six weeks after the announcement."""
    await _record(
        ctx,
        event.ins,
        domain.SPACE_OPENING,
        event.announced_at,
        domain.opening_due_at(event.announced_at),
    )


async def on_space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    """The opening happened: nothing left to wait for; after a closure, no purge (RET_01)."""
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        domain.CANCELLED_BY_OPENING,
        started_by=event.opened_at,
        now=ctx.runtime.now(),
    )


async def on_space_reactivated(ctx: EventContext, event: SpaceReactivated) -> None:
    """RET_01: reactivated within the ten years: the purge is off."""
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        domain.CANCELLED_BY_OPENING,
        started_by=event.reactivated_at,
        now=ctx.runtime.now(),
    )


async def on_proxy_appointed(ctx: EventContext, event: ProxyAppointed) -> None:
    """SPC_04 / SPC_05: an appointment with an end ends by itself then."""
    if event.ends_at is None:
        return
    await _record(
        ctx,
        event.ins,
        domain.PROXY_END,
        event.starts_at,
        event.ends_at,
        subject=str(event.proxy_id),
    )


async def on_proxy_ended(ctx: EventContext, event: ProxyEnded) -> None:
    """Ended before its time (or by this very deadline): nothing left to wait for."""
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        (domain.PROXY_END,),
        started_by=event.ended_at,
        now=ctx.runtime.now(),
        subject=str(event.proxy_id),
    )


async def on_document_held_back(ctx: EventContext, event: DocumentHeldBack) -> None:
    """DOC_07: the two-week notice and the one-month release, each by itself (RET_04)."""
    subject = str(event.document_id)
    for kind, due_at in (
        (domain.HELD_BACK_NOTICE, domain.held_back_notice_at(event.held_at)),
        (domain.HELD_BACK_RELEASE, domain.held_back_release_at(event.held_at)),
    ):
        await _record(ctx, event.ins, kind, event.held_at, due_at, subject=subject)


async def on_document_released(ctx: EventContext, event: DocumentReleased) -> None:
    """Released (by the consultation, or by the release itself): nothing left to wait for."""
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        domain.HELD_BACK,
        started_by=event.released_at,
        now=ctx.runtime.now(),
        subject=str(event.document_id),
    )


async def on_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_01: ten years of archive from closure, then the purge; no opening any more."""
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        domain.CANCELLED_BY_CLOSURE,
        started_by=event.closed_at,
        now=ctx.runtime.now(),
    )
    await _record(
        ctx, event.ins, domain.SPACE_PURGE, event.closed_at, domain.purge_due_at(event.closed_at)
    )


async def _record(
    ctx: EventContext,
    ins: str,
    kind: str,
    starts_at: datetime,
    due_at: datetime,
    *,
    subject: str = "",
) -> None:
    deadline_id = await repository.insert_deadline(
        ctx.conn,
        ins=ins,
        kind=kind,
        starts_at=starts_at,
        due_at=due_at,
        now=ctx.runtime.now(),
        cause_event_id=ctx.envelope.event_id,
        correlation_id=ctx.correlation_id,
        subject=subject,
    )
    if deadline_id is None:
        log.info("deadline_already_pending", ins=ins, kind=kind)
    else:
        log.info("deadline_recorded", ins=ins, kind=kind, due_at=due_at.isoformat())


# --- the sweep ------------------------------------------------------------------------------


async def fire_due(pool: Pool, now: datetime, limit: int) -> int | None:
    """Fire up to `limit` deadlines due at `now`, in one transaction.

    Each fired deadline writes its due event to the outbox and is marked fired in the same
    transaction, so a deadline is announced once or not at all. Only the replica holding the
    advisory lock sweeps (None: another one is sweeping); SKIP LOCKED is a second guard.
    """
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.try_sweep_lock(conn, SWEEP_LOCK):
            return None
        rows = await repository.claim_due(conn, now, limit)
        for row in rows:
            event = domain.due_event(
                row["kind"],
                ins=row["ins"],
                deadline_id=row["deadline_id"],
                due_at=row["due_at"],
                subject=row["subject"],
            )
            await outbox.add_event(
                conn,
                event,
                holder_key=row["ins"],
                occurred_at=now,
                correlation_id=row["correlation_id"] or uuid.uuid4().hex,
                causation_id=str(row["cause_event_id"]) if row["cause_event_id"] else None,
            )
            await repository.mark_fired(conn, row["deadline_id"], now)
            log.info(
                "deadline_fired", ins=row["ins"], kind=row["kind"], deadline_id=row["deadline_id"]
            )
        return len(rows)


# --- commands -------------------------------------------------------------------------------


async def list_deadlines(ctx: CommandContext, c: cmd.ListDeadlines) -> cmd.Deadlines:
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator lists a space's deadlines")
    async with ctx.runtime.pool.acquire() as conn:
        rows = await repository.deadlines_of(conn, c.ins)
    return cmd.Deadlines(
        deadlines=[
            cmd.Deadline(
                deadline_id=r["deadline_id"],
                ins=r["ins"],
                kind=r["kind"],
                status=domain.status_of(r["fired_at"], r["cancelled_at"]),
                starts_at=r["starts_at"],
                due_at=r["due_at"],
                created_at=r["created_at"],
                fired_at=r["fired_at"],
                cancelled_at=r["cancelled_at"],
                cause_event_id=r["cause_event_id"],
                subject=r["subject"] or None,
            )
            for r in rows
        ]
    )
