"""notifier's edges: the events that raise alerts, the contact it keeps, and its one command."""

from __future__ import annotations

from libs import purge
from libs.contracts import commands as cmd
from libs.contracts.events import (
    AccessLogged,
    ContactChanged,
    ContactChangedV1,
    HeldBackNoticeDue,
    HolderCameOfAge,
    MessageSent,
    MessageSentV1,
    SpaceClosed,
    SpaceOpened,
    SpaceReactivated,
)
from libs.runtime import Runtime
from services.notifier import purge as holder_purge
from services.notifier import service
from services.notifier.settings import NotifierSettings

ACCESS_QUEUE = "notifier.access-alerts"
LIFECYCLE_QUEUE = "notifier.space-lifecycle"
MESSAGES_QUEUE = "notifier.messages"


def register(runtime: Runtime[NotifierSettings]) -> None:
    # RET_01 / RET_02: its part of a holder's purge.
    purge.register(runtime, holder_purge.PURGE)
    runtime.on_events(ACCESS_QUEUE, {AccessLogged: service.alert_on_access})
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {
            ContactChanged: service.change_contact,
            ContactChangedV1: service.change_contact,
            SpaceOpened: service.alert_on_space_opened,
            SpaceClosed: service.record_space_closed,
            SpaceReactivated: service.alert_on_space_reactivated,
            HolderCameOfAge: service.alert_on_came_of_age,
            HeldBackNoticeDue: service.alert_on_held_back_notice,
        },
    )
    runtime.on_events(
        MESSAGES_QUEUE,
        {MessageSent: service.alert_on_message, MessageSentV1: service.alert_on_message},
    )
    runtime.handle(cmd.ListAlerts, service.list_alerts)
    runtime.handle(cmd.MarkAlertsRead, service.mark_alerts_read)
