"""retention's use cases: record and cancel deadlines, fire those that have come, list them.

Every deadline of the system lives here (RET_04): other services never keep timers, they react
to the `...Due` events this service publishes when a deadline comes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from asyncpg import Record

from libs import outbox
from libs import purge as holder_purge
from libs.contracts import commands as cmd
from libs.contracts.envelope import Envelope, envelope_for
from libs.contracts.events import (
    AuthorizationGiven,
    AuthorizationWithdrawn,
    DocumentDeposited,
    DocumentDepositedV1,
    DocumentHeldBack,
    DocumentReleased,
    HolderDataPurged,
    HolderDeceased,
    HolderPurgeRequested,
    ProxyAppointed,
    ProxyEnded,
    SpaceAnnounced,
    SpaceClosed,
    SpaceDeletionRequested,
    SpaceOpened,
    SpaceReactivated,
)
from libs.contracts.vocabulary import OCCUPATIONAL_HEALTH
from libs.db import Conn, Pool
from libs.errors import Forbidden
from libs.runtime import CommandContext, EventContext
from libs.tokens import b64d
from services.retention import domain, repository
from services.retention.settings import RetentionSettings

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
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        domain.CANCELLED_BY_OPENING,
        started_by=event.opened_at,
        now=ctx.runtime.now(),
    )


async def on_space_reactivated(ctx: EventContext, event: SpaceReactivated) -> None:
    """RET_01: reactivated within the ten years: the purge is off."""
    await repository.lock_holder(ctx.conn, event.ins)
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


async def on_space_deletion_requested(ctx: EventContext, event: SpaceDeletionRequested) -> None:
    """RET_02: the express request brings the purge forward (never back): a later pending
    purge is replaced by this one."""
    await repository.lock_holder(ctx.conn, event.ins)
    now = ctx.runtime.now()
    await repository.cancel_purges_due_after(ctx.conn, event.ins, event.purge_due_at, now)
    await _record(ctx, event.ins, domain.SPACE_PURGE, event.requested_at, event.purge_due_at)


def is_a_visit(event: DocumentDeposited | DocumentDepositedV1) -> bool:
    return event.document_type == OCCUPATIONAL_HEALTH


async def on_document_deposited(
    ctx: EventContext, event: DocumentDeposited | DocumentDepositedV1
) -> None:
    """RET_03: each deposit in the occupational health part is a visit; the part is kept forty
    years after the last one. A later visit replaces the deadline; an earlier one delivered late
    leaves it (the pending one started after it)."""
    if not is_a_visit(event):
        return
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        (domain.OCCUPATIONAL_PART,),
        started_by=event.deposited_at,
        now=ctx.runtime.now(),
    )
    await _record(
        ctx,
        event.ins,
        domain.OCCUPATIONAL_PART,
        event.deposited_at,
        domain.occupational_due_at(event.deposited_at),
    )


async def on_authorization_given(ctx: EventContext, event: AuthorizationGiven) -> None:
    """ACC_14: a renewed authorization replaces the end of the former one (a permanent one has
    none)."""
    await repository.lock_holder(ctx.conn, event.ins)
    subject = domain.authorization_subject(event.grantee_kind, event.grantee_id)
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        (domain.AUTHORIZATION_END,),
        started_by=event.given_at,
        now=ctx.runtime.now(),
        subject=subject,
    )
    if event.until is not None:
        await _record(
            ctx, event.ins, domain.AUTHORIZATION_END, event.given_at, event.until, subject=subject
        )


async def on_authorization_withdrawn(ctx: EventContext, event: AuthorizationWithdrawn) -> None:
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.cancel_pending(
        ctx.conn,
        event.ins,
        (domain.AUTHORIZATION_END,),
        started_by=event.withdrawn_at,
        now=ctx.runtime.now(),
        subject=domain.authorization_subject(event.grantee_kind, event.grantee_id),
    )


async def on_holder_deceased(ctx: EventContext, event: HolderDeceased) -> None:
    """RET_03: after death the occupational health part is kept ten years from the death."""
    await repository.lock_holder(ctx.conn, event.ins)
    cancelled = await repository.cancel_pending(
        ctx.conn,
        event.ins,
        (domain.OCCUPATIONAL_PART,),
        started_by=event.recorded_at,
        now=ctx.runtime.now(),
    )
    if cancelled:
        await _record(
            ctx,
            event.ins,
            domain.OCCUPATIONAL_PART,
            event.recorded_at,
            domain.occupational_due_after_death(event.died_on),
        )


async def on_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_01: ten years of archive from closure, then the purge; no opening any more."""
    await repository.lock_holder(ctx.conn, event.ins)
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


async def fire_due(pool: Pool, now: datetime, limit: int, *, proof_key: bytes = b"") -> int | None:
    """Fire up to `limit` deadlines due at `now`, in one transaction.

    Each fired deadline writes its due event to the outbox and is marked fired in the same
    transaction, so a deadline is announced once or not at all. Only the replica holding the
    advisory lock sweeps (None: another one is sweeping); SKIP LOCKED is a second guard.
    """
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.try_sweep_lock(conn, SWEEP_LOCK):
            return None
        rows = await repository.claim_due(conn, now, limit)
        fired: list[uuid.UUID] = []
        events: list[tuple[Envelope, str]] = []
        purged: set[str] = set()
        for row in rows:
            if row["ins"] in purged:
                continue  # deleted with the rest of the holder's deadlines by their purge
            fired.append(row["deadline_id"])
            if row["kind"] == domain.SPACE_PURGE:
                await _start_purge(conn, row, now, proof_key)
                purged.add(row["ins"])
                continue
            event = domain.due_event(
                row["kind"],
                ins=row["ins"],
                deadline_id=row["deadline_id"],
                due_at=row["due_at"],
                subject=row["subject"],
            )
            envelope = envelope_for(
                event,
                holder_key=row["ins"],
                occurred_at=now,
                correlation_id=row["correlation_id"] or uuid.uuid4().hex,
                causation_id=str(row["cause_event_id"]) if row["cause_event_id"] else None,
            )
            events.append((envelope, event.routing_key()))
        # A batch is two statements besides the claim, whatever its size.
        await repository.mark_fired(conn, fired, now)
        await outbox.add_many(conn, events)
        if rows:
            log.info("deadlines_fired", count=len(fired), kinds=sorted({r["kind"] for r in rows}))
        return len(rows)


# --- the purge (RET_01) ---------------------------------------------------------------------


async def _start_purge(conn: Conn, deadline: Record, now: datetime, proof_key: bytes) -> None:
    """Ten years after closure: ask every service holding the holder's data to delete it, and
    delete retention's own part (the holder's deadlines, this one included) at once."""
    purge_id, ins = deadline["deadline_id"], deadline["ins"]
    await repository.insert_purge(
        conn,
        purge_id=purge_id,
        ins=ins,
        ins_key=domain.ins_key(proof_key, ins),
        closed_at=deadline["starts_at"],
        now=now,
    )
    own = await repository.delete_deadlines_of(conn, ins)
    await repository.insert_answer(
        conn,
        purge_id=purge_id,
        service=domain.RETENTION,
        rows={"deadlines": own},
        skipped=None,
        purged_at=now,
        now=now,
    )
    await _request_purge(conn, purge_id, ins, deadline["starts_at"], domain.PURGE_PARTICIPANTS, now)
    log.info("purge_requested", purge_id=str(purge_id))


async def _request_purge(
    conn: Conn,
    purge_id: uuid.UUID,
    ins: str,
    closed_at: datetime,
    services: Sequence[str],
    now: datetime,
) -> None:
    await outbox.add_event(
        conn,
        HolderPurgeRequested(
            purge_id=purge_id,
            ins=ins,
            closed_at=closed_at,
            services=list(services),
            requested_at=now,
        ),
        holder_key=ins,
        occurred_at=now,
        correlation_id=f"purge-{purge_id}",
    )


async def on_holder_purged(ctx: EventContext, event: HolderDataPurged) -> None:
    """A service's part is done: record it in the proof; once every service has answered, the
    proof is complete and retention forgets the INS itself."""
    now = ctx.runtime.now()
    purge = await repository.lock_purge(ctx.conn, event.purge_id)
    if purge is None:
        log.warning("purge_answer_for_unknown_purge", purge_id=str(event.purge_id))
        return
    service = type(event).OWNER
    first = await repository.insert_answer(
        ctx.conn,
        purge_id=event.purge_id,
        service=service,
        rows=event.rows,
        skipped=event.skipped,
        purged_at=event.purged_at,
        now=now,
    )
    if not first or purge["completed_at"] is not None:
        return
    answered = await repository.answered(ctx.conn, event.purge_id)
    if not domain.purge_complete(answered):
        return
    # Retention's own events and replies that named the INS (the purge requests among them).
    mentions = await holder_purge.delete_mentions(ctx.conn, purge["ins"])
    await repository.add_to_answer(ctx.conn, event.purge_id, domain.RETENTION, mentions)
    await repository.complete_purge(ctx.conn, event.purge_id, now)
    log.info("purge_completed", purge_id=str(event.purge_id))


async def request_unanswered(pool: Pool, now: datetime, after: timedelta, limit: int) -> int:
    """Ask again the services that have not answered a purge within `after` (RET_01: a service
    away for a while purges when it is back)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.claim_unanswered(conn, now - after, limit)
        for row in rows:
            missing = domain.still_to_answer(await repository.answered(conn, row["purge_id"]))
            await _request_purge(conn, row["purge_id"], row["ins"], row["closed_at"], missing, now)
            await repository.mark_requested_again(conn, row["purge_id"], now)
            log.warning(
                "purge_unanswered_asked_again",
                purge_id=str(row["purge_id"]),
                services=missing,
                requests=row["requests"] + 1,
            )
        return len(rows)


# --- commands -------------------------------------------------------------------------------


async def list_deadlines(ctx: CommandContext, c: cmd.ListDeadlines) -> cmd.Deadlines:
    """The operator, or the holder for their own space: when it opens, when it will be purged
    (RET_01, RET_02), when an authorization or a proxy ends (RET_04)."""
    actor = ctx.require_actor()
    if not (actor.kind == "operator" or (actor.kind == "holder" and actor.sub == c.ins)):
        raise Forbidden("only the holder or the operator lists a space's deadlines")
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


async def get_purge_proof(
    ctx: CommandContext[RetentionSettings], c: cmd.GetPurgeProof
) -> cmd.PurgeProofs:
    """RET_01: the proof of deletion, for ops: by purge id, or by INS (found by its keyed hash,
    never stored in clear once the purge is complete)."""
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator reads proofs of deletion")
    key = None if c.ins is None else domain.ins_key(proof_key(ctx.runtime.settings), c.ins)
    async with ctx.runtime.pool.acquire() as conn:
        purges = await repository.purges_by(conn, purge_id=c.purge_id, ins_key=key)
        proofs = []
        for p in purges:
            answers = await repository.answers_of(conn, p["purge_id"])
            proofs.append(
                cmd.PurgeProof(
                    purge_id=p["purge_id"],
                    ins_key=p["ins_key"],
                    closed_at=p["closed_at"],
                    requested_at=p["requested_at"],
                    requests=p["requests"],
                    completed_at=p["completed_at"],
                    waiting_for=domain.still_to_answer(a["service"] for a in answers),
                    answers=[
                        cmd.PurgeAnswer(
                            service=a["service"],
                            rows=json.loads(a["rows"]),
                            skipped=a["skipped"],
                            purged_at=a["purged_at"],
                            received_at=a["received_at"],
                        )
                        for a in answers
                    ],
                )
            )
    return cmd.PurgeProofs(proofs=proofs)


def proof_key(settings: RetentionSettings) -> bytes:
    return b64d(settings.purge_proof_key)
