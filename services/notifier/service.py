"""notifier's use cases. Event handlers run in the runtime's transaction (after the inbox): the
alert, its pending mail and `HolderAlerted` are written together, or not at all."""

from __future__ import annotations

import structlog

from libs import outbox, paging, spaces
from libs.access import require_access
from libs.contracts import commands as cmd
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
from libs.runtime import CommandContext, EventContext
from services.notifier import domain, repository

log = structlog.get_logger()


async def raise_alert(ctx: EventContext, ins: str, alert: domain.AlertText) -> bool:
    """One alert for the event being handled; False if that event already has its alert."""
    conn = ctx.conn
    holder = await repository.lock_holder(conn, ins)
    contact_known = holder["changed_at"] is not None
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
    ):
        # The inbox already de-duplicates redeliveries; this is the second guard (NTF_01).
        log.warning("alert_already_raised", cause_event_id=str(cause))
        return False
    channels = ["space"]
    outward = sorted(set(holder["channels"]) & {"email", "sms"})
    if outward:
        # The addresses are asked of identity when the alert is sent (they are not kept here).
        await repository.insert_mail(conn, alert_id=alert_id)
        channels += outward
    # Else (SPC_06): no channel; the alert waits in the space. An unknown contact is mailed
    # once ContactChanged arrives (see change_contact).
    await outbox.add_event(
        conn,
        HolderAlerted(
            alert_id=alert_id,
            ins=ins,
            cause_event_id=cause,
            kind=alert.kind,
            channels=channels,
            at=now,
        ),
        holder_key=ins,
        occurred_at=now,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )
    return True


async def alert_on_access(ctx: EventContext, event: AccessLogged) -> None:
    """NTF_01: one alert per granted access by anyone but the holder.

    Denied attempts are not alerted — a product choice: nothing was seen or changed, and they are
    in the holder's access history kept by the access service (ACC_03). See
    domain.should_alert_access.
    """
    if domain.should_alert_access(event):
        await raise_alert(ctx, event.ins, domain.access_alert(event))


async def alert_on_space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    """NTF_02."""
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_opened(ctx.conn, event.ins, event.opened_at)
    await spaces.on_space_opened(ctx, event)
    await raise_alert(ctx, event.ins, domain.space_opened_alert(event))


async def alert_on_space_reactivated(ctx: EventContext, event: SpaceReactivated) -> None:
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_opened(ctx.conn, event.ins, event.reactivated_at)
    await spaces.on_space_reactivated(ctx, event)
    await raise_alert(ctx, event.ins, domain.space_reactivated_alert(event))


async def alert_on_came_of_age(ctx: EventContext, event: HolderCameOfAge) -> None:
    """SPC_04: the person, now eighteen, is told they manage their space (to their own
    contact: identity answers GetAlertContact with it from now on)."""
    await raise_alert(ctx, event.ins, domain.came_of_age_alert(event))


async def alert_on_held_back_notice(ctx: EventContext, event: HeldBackNoticeDue) -> None:
    """NTF_03: the two-week notice of DOC_07."""
    await raise_alert(ctx, event.ins, domain.held_back_notice_alert(event))


async def alert_on_message(ctx: EventContext, sent: MessageSent | MessageSentV1) -> None:
    """NTF_03: a new secure message (to the holder: not the holder's own messages)."""
    event = sent.upgraded()  # v1, still readable, is read as v2 (its subject ignored)
    if event.sender_kind == "holder" and event.sender_id == event.ins:
        return
    await raise_alert(ctx, event.ins, domain.message_alert(event))


async def record_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_05: the closure is recorded; alerts and mails already pending are still delivered."""
    await repository.lock_holder(ctx.conn, event.ins)
    await repository.set_closed(ctx.conn, event.ins, event.closed_at)
    await spaces.on_space_closed(ctx, event)


async def change_contact(ctx: EventContext, changed: ContactChanged | ContactChangedV1) -> None:
    """Which channels the holder's alerts have (a minor's: the representative's, NTF_04).

    v1, still readable, is read as v2: its name and addresses are ignored, never stored.
    """
    event = changed.upgraded()
    holder = await repository.lock_holder(ctx.conn, event.ins)
    changed_at = ctx.envelope.occurred_at
    if holder["changed_at"] is not None and holder["changed_at"] > changed_at:
        log.info("stale_contact_ignored", ins=event.ins)
        return
    channels = sorted(set(event.channels))
    await repository.set_channels(ctx.conn, ins=event.ins, channels=channels, changed_at=changed_at)
    # Alerts raised before any contact was known: never zero, so mail them now.
    for alert in await repository.take_alerts_awaiting_contact(ctx.conn, event.ins):
        if {"email", "sms"} & set(channels):
            await repository.insert_mail(ctx.conn, alert_id=alert["alert_id"])


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
        alerts=[cmd.Alert.model_validate({k: r[k] for k in r.keys() if k != "seq"}) for r in rows],
        next_cursor=paging.encode_cursor(rows[-1]["created_at"], rows[-1]["seq"]) if more else None,
    )


async def mark_alerts_read(ctx: CommandContext, c: cmd.MarkAlertsRead) -> cmd.AlertsRead:
    await require_access(ctx, c.ins, "read_history")
    marked = await repository.mark_read(
        ctx.runtime.pool, c.ins, sorted(set(c.alert_ids)), ctx.runtime.now()
    )
    return cmd.AlertsRead(ins=c.ins, marked=marked)
