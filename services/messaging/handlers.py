"""messaging's edges: its commands, the lifecycle projection, the deposits it relays and the
treating physicians it relays them to."""

from __future__ import annotations

from libs import purge, spaces
from libs.contracts import commands as cmd
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    StaffJoined,
    StaffLeft,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
)
from libs.runtime import Runtime
from services.messaging import purge as holder_purge
from services.messaging import service
from services.messaging.settings import MessagingSettings

LIFECYCLE_QUEUE = "messaging.space-lifecycle"
DEPOSITS_QUEUE = "messaging.deposits"
PEOPLE_QUEUE = "messaging.people"


def register(runtime: Runtime[MessagingSettings]) -> None:
    # RET_01 / RET_02: its part of a holder's purge.
    purge.register(runtime, holder_purge.PURGE)
    runtime.handle(cmd.SendMessage, service.send_message)
    runtime.handle(cmd.ListMessages, service.list_messages)
    runtime.handle(cmd.StartThread, service.start_thread)
    runtime.handle(cmd.ListThreads, service.list_threads)
    runtime.handle(cmd.ReadThread, service.read_thread)
    runtime.handle(cmd.GetAttachment, service.get_attachment)
    runtime.on_events(LIFECYCLE_QUEUE, spaces.HANDLERS)
    # Version 1 is still read (messages queued before the upgrade), as version 2.
    runtime.on_events(
        DEPOSITS_QUEUE,
        {
            DocumentDeposited: service.on_document_deposited,
            DocumentDepositedV1: service.on_document_deposited,
        },
    )
    # MSG_02: deposits are also sent to the holder's treating physician.
    runtime.on_events(
        PEOPLE_QUEUE,
        {
            StaffJoined: service.on_staff_joined,
            StaffLeft: service.on_staff_left,
            TreatingPhysicianDeclared: service.on_treating_physician,
            TreatingPhysicianChanged: service.on_treating_physician,
        },
    )
