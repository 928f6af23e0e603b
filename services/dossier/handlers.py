"""dossier's edges: its commands and the lifecycle events it listens to."""

from __future__ import annotations

from libs.contracts import commands as cmd
from libs.contracts.events import SpaceClosed, SpaceOpened
from libs.runtime import Command, Runtime
from services.dossier import service

COMMANDS_QUEUE = "dossier.commands"
LIFECYCLE_QUEUE = "dossier.space-lifecycle"


def register(runtime: Runtime) -> None:
    runtime.on_commands(
        COMMANDS_QUEUE,
        {
            "DepositDocument": Command(
                cmd.DepositDocument, service.deposit_document, request_id="required"
            ),
            # A read changes nothing here, but the id it passes on lets a redelivered read be
            # decided, traced and alerted once.
            "ReadDossier": Command(cmd.ReadDossier, service.read_dossier, request_id="optional"),
        },
    )
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {SpaceOpened: service.space_opened, SpaceClosed: service.space_closed},
    )
