"""notifier's use cases. Event handlers run in the runtime's transaction (after the inbox): the
alert, its pending mail (or its place in its burst's digest) and `HolderAlerted` are written
together, or not at all. A burst's digest is queued by `queue_due_digests` at the window's end,
in one transaction with its mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from libs import outbox, paging, spaces
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.envelope import Envelope, envelope_for
from libs.contracts.events import (
    AccessLogged,
    ContactChanged,
    ContactChangedV1,
    HeldBackNoticeDue,
    HolderAlerted,
    HolderCameOfAge,
    MessageSent,
    MessageSentV1,
    SpaceClosed,
    SpaceOpened,
    SpaceReactivated,
)
from libs.db import Conn
from libs.runtime import CommandContext, EventContext, Runtime
from services.notifier import domain, repository
from services.notifier.settings import NotifierSettings

log = structlog.get_logger()

# The words of an alert, in the holder's time zone (read under the holder's lock).
Words = Callable[[str], domain.AlertText]


async def raise_alert(ctx: EventContext[Any], ins: str, words: Words) -> bool:
    """One alert for the event being handled; False if that event already has its alert.
    (`ctx` carries the notifier's settings, whatever the handler typed it as.)"""
    conn = ctx.conn
    holder = await repository.lock_holder(conn, ins)
    contact_known = holder["changed_at"] is not None
    zone = domain.zone_named(holder["time_zone"])
    alert = words(zone)
    cause = ctx.envelope.event_id
    alert_id = domain.alert_id_for(cause)
    now = ctx.runtime.now()
    if not await repository.insert_alert(
        conn,
        alert_id=alert_id,
        ins=ins,
        kind=alert.kind,
        cause_event_id=cause,
        text=alert.text,
        created_at=now,
        awaiting_contact=not contact_known,
        occurred_at=alert.at,
        time_zone=zone,
        sms_text=domain.sms_text(alert.kind, alert.at, zone),
        foldable=alert.foldable,
    ):
        # The inbox already de-duplicates redeliveries; this is the second guard (NTF_01).
        log.warning("alert_already_raised", cause_event_id=str(cause))
        return False
    outward = sorted(set(holder["channels"]) & {"email", "sms"})

    def announced(channels: list[str]) -> tuple[Envelope, str]:
        event = HolderAlerted(
            alert_id=alert_id,
            ins=ins,
            cause_event_id=cause,
            kind=alert.kind,
            channels=channels,
            at=now,
        )
        envelope = envelope_for(
            event,
            holder_key=ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )
        return envelope, event.routing_key()

    if outward:
        # The addresses are asked of identity when the alert is sent (they are not kept here).
        # Mailed on its own, its HolderAlerted is written with its mail, in one statement.
        folded = await send_or_fold(
            ctx.runtime,
            conn,
            ins,
            alert_id,
            alert.foldable,
            now,
            burst_row=holder,
            announced=lambda: announced(["space", *outward]),
        )
        if folded:
            await outbox.add(conn, *announced(["space", "digest"]))
    else:
        # SPC_06: no channel; the alert waits in the space. An unknown contact is mailed once
        # ContactChanged arrives (see change_contact).
        await outbox.add(conn, *announced(["space"]))
    return True


async def send_or_fold(
    runtime: Runtime[Any],
    conn: Conn,
    ins: str,
    alert_id: UUID,
    foldable: bool,
    now: datetime,
    *,
    burst_row: asyncpg.Record | None = None,
    announced: Callable[[], tuple[Envelope, str]] | None = None,
) -> bool:
    """The alert's mail goes out on its own, or, past the first few of its burst, the alert is
    folded into the burst's digest (NTF_01 without flooding; domain.route). True if folded.
    The holder's row is locked by the caller; `burst_row`: that row as locked, if nothing in
    this transaction has changed its burst since. `announced`: the event (envelope, routing
    key) to write with the mail when it goes out on its own."""
    settings = runtime.settings
    window = timedelta(seconds=settings.digest_window_seconds)
    row = burst_row if burst_row is not None else await repository.burst_of(conn, ins)
    burst = domain.Burst(row["burst_started_at"], row["burst_sent"])
    routing = domain.route(
        burst, now, foldable=foldable, alone=settings.alerts_before_digest, window=window
    )
    if not routing.folded:
        new_burst = None
        if routing.burst != burst:
            same_window = routing.burst.started_at == burst.started_at
            digest_id = row["burst_digest_id"] if same_window else None
            new_burst = (ins, routing.burst.started_at, routing.burst.sent, digest_id)
        event = announced() if announced is not None else None
        await repository.insert_mail(conn, alert_id=alert_id, burst=new_burst, event=event)
        return False
    digest_id = row["burst_digest_id"]
    if digest_id is None:
        # The burst's first folded alert names its digest, due at the window's end.
        digest_id = domain.digest_id_for(alert_id)
        await repository.insert_digest(
            conn, digest_id=digest_id, ins=ins, due_at=burst.due_at(window), created_at=now
        )
        await repository.set_burst(conn, ins, burst.started_at, burst.sent, digest_id)
    await repository.fold_alert(conn, alert_id, digest_id)
    return True


async def queue_due_digests(runtime: Runtime[NotifierSettings], limit: int = 100) -> int:
    """The digests whose window has ended: each one's words written and its mail queued, once,
    in one transaction (the delivery worker then sends it like an alert: retries, give-up,
    per-channel outcome). Run by a Periodic; a restart finds the due ones in the database."""
    now = runtime.now()
    queued = 0
    for due in await repository.due_digests(runtime.pool, now, limit):
        async with runtime.pool.acquire() as conn, conn.transaction():
            # The holder's lock first, as alerts take it: no alert folds in while it is queued.
            holder = await repository.lock_holder(conn, due["ins"])
            digest = await repository.lock_unqueued_digest(conn, due["digest_id"])
            if digest is None:
                continue  # another replica queued it
            told = await repository.folded_into(conn, digest["digest_id"])
            zone = domain.zone_named(holder["time_zone"])
            args = (told["accesses"], told["first_at"], told["last_at"], zone)
            await repository.mark_digest_queued(
                conn,
                ins=digest["ins"],
                digest_id=digest["digest_id"],
                text=domain.digest_alert(*args).text,
                sms_text=domain.digest_sms_text(*args),
                at=now,
            )
            if {"email", "sms"} & set(holder["channels"]):
                await repository.insert_mail(conn, alert_id=digest["digest_id"])
            queued += 1
            log.info("digest_queued", digest_id=str(digest["digest_id"]), alerts=told["accesses"])
    return queued


async def alert_on_access(ctx: EventContext, event: AccessLogged) -> None:
    """NTF_01: one alert per granted access by anyone but the holder.

    Denied attempts are not alerted — a product choice: nothing was seen or changed, and they are
    in the holder's access history kept by the access service (ACC_03). See
    domain.should_alert_access.
    """
    if domain.should_alert_access(event):
        await raise_alert(ctx, event.ins, lambda zone: domain.access_alert(event, zone))


async def alert_on_space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    """NTF_02."""
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_opened(ctx.conn, event.ins, event.opened_at)
    await spaces.on_space_opened(ctx, event)
    await raise_alert(ctx, event.ins, lambda zone: domain.space_opened_alert(event, zone))


async def alert_on_space_reactivated(ctx: EventContext, event: SpaceReactivated) -> None:
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_opened(ctx.conn, event.ins, event.reactivated_at)
    await spaces.on_space_reactivated(ctx, event)
    await raise_alert(ctx, event.ins, lambda zone: domain.space_reactivated_alert(event, zone))


async def alert_on_came_of_age(ctx: EventContext, event: HolderCameOfAge) -> None:
    """SPC_04: the person, now eighteen, is told they manage their space (to their own
    contact: identity answers GetAlertContact with it from now on)."""
    await raise_alert(ctx, event.ins, lambda _: domain.came_of_age_alert(event))


async def alert_on_held_back_notice(ctx: EventContext, event: HeldBackNoticeDue) -> None:
    """NTF_03: the two-week notice of DOC_07."""
    await raise_alert(ctx, event.ins, lambda _: domain.held_back_notice_alert(event))


async def alert_on_message(ctx: EventContext, sent: MessageSent | MessageSentV1) -> None:
    """NTF_03: a new secure message (to the holder: not the holder's own messages)."""
    event = sent.upgraded()  # v1, still readable, is read as v2 (its subject ignored)
    if event.sender_kind == "holder" and event.sender_id == event.ins:
        return
    await raise_alert(ctx, event.ins, lambda zone: domain.message_alert(event, zone))


async def record_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_05: the closure is recorded; alerts and mails already pending are still delivered."""
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_closed(ctx.conn, event.ins, event.closed_at)
    await spaces.on_space_closed(ctx, event)


async def change_contact(ctx: EventContext, changed: ContactChanged | ContactChangedV1) -> None:
    """Which channels the holder's alerts have (a minor's: the representative's, NTF_04), and
    the time zone they tell times in.

    v1, still readable, is read as v2: its name and addresses are ignored, never stored.
    """
    event = changed.upgraded()
    holder = await repository.lock_holder(ctx.conn, event.ins)
    changed_at = ctx.envelope.occurred_at
    if holder["changed_at"] is not None and holder["changed_at"] > changed_at:
        log.info("stale_contact_ignored", ins=event.ins)
        return
    channels = sorted(set(event.channels))
    await repository.set_channels(
        ctx.conn,
        ins=event.ins,
        channels=channels,
        time_zone=domain.zone_named(event.time_zone),
        changed_at=changed_at,
    )
    # Alerts raised before any contact was known: never zero, so mail them now (a burst of
    # them, past the first few, in a digest).
    now = ctx.runtime.now()
    for alert in await repository.take_alerts_awaiting_contact(ctx.conn, event.ins):
        if {"email", "sms"} & set(channels):
            await send_or_fold(
                ctx.runtime, ctx.conn, event.ins, alert["alert_id"], alert["foldable"], now
            )


async def list_alerts(ctx: CommandContext, c: cmd.ListAlerts) -> cmd.Alerts:
    """The holder's in-space inbox, newest first, a page at a time. Access decides who reads it
    (the holder, their representative; never on a closed space, ACC_17), as for the history."""
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    await require_access(ctx, c.ins, "read_history")
    rows = await repository.list_alerts(
        ctx.runtime.pool, c.ins, after, c.page_size + 1, c.unread_only
    )
    more, rows = len(rows) > c.page_size, rows[: c.page_size]
    return cmd.Alerts(
        alerts=[
            cmd.Alert(
                alert_id=r["alert_id"],
                kind=r["kind"],
                text=r["text"],
                created_at=r["created_at"],
                read_at=r["read_at"],
                delivery=r["delivery"],
                time_zone=r["time_zone"],
                # As the text and the mail tell it: the same instant, zone and words.
                local_time=domain.local_time(r["told_at"], r["time_zone"]),
            )
            for r in rows
        ],
        next_cursor=paging.encode_cursor(rows[-1]["created_at"], rows[-1]["seq"]) if more else None,
    )


async def mark_alerts_read(ctx: CommandContext, c: cmd.MarkAlertsRead) -> cmd.AlertsRead:
    await require_access(ctx, c.ins, "read_history")
    marked = await repository.mark_read(
        ctx.runtime.pool, c.ins, sorted(set(c.alert_ids)), ctx.runtime.now()
    )
    return cmd.AlertsRead(ins=c.ins, marked=marked)
