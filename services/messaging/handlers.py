"""messaging's edges: its commands, the lifecycle projection and the deposits it relays."""

from __future__ import annotations

from libs import spaces
from libs.contracts import commands as cmd
from libs.contracts.events import DocumentDeposited, DocumentDepositedV1
from libs.runtime import Runtime
from services.messaging import service
from services.messaging.settings import MessagingSettings

LIFECYCLE_QUEUE = "messaging.space-lifecycle"
DEPOSITS_QUEUE = "messaging.deposits"


def register(runtime: Runtime[MessagingSettings]) -> None:
    runtime.handle(cmd.SendMessage, service.send_message)
    runtime.handle(cmd.ListMessages, service.list_messages)
    runtime.on_events(LIFECYCLE_QUEUE, spaces.HANDLERS)
    # Version 1 is still read (messages queued before the upgrade), as version 2.
    runtime.on_events(
        DEPOSITS_QUEUE,
        {
            DocumentDeposited: service.on_document_deposited,
            DocumentDepositedV1: service.on_document_deposited,
        },
    )
