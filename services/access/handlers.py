"""access's edges: `access.decide`, the holder's commands, and identity's lifecycle events."""

from __future__ import annotations

from datetime import timedelta

from libs.contracts import commands as cmd
from libs.contracts.events import SpaceClosed, SpaceOpened
from libs.runtime import Command, Runtime
from services.access import service

DECIDE_QUEUE = "access.decide"
COMMANDS_QUEUE = "access.commands"
LIFECYCLE_QUEUE = "access.space-lifecycle"


def register(runtime: Runtime) -> None:
    # Its own queue, so that decisions never wait behind the holder's commands.
    runtime.on_commands(
        DECIDE_QUEUE,
        {
            "Decide": Command(
                cmd.Decide,
                service.decide,
                request_id="optional",
                # Long enough for any retry of the command that asks; never long enough for an
                # old grant to outrun a revocation.
                replay_window=timedelta(minutes=5),
            )
        },
    )
    runtime.on_commands(
        COMMANDS_QUEUE,
        {
            "AuthorizeProfessional": Command(
                cmd.AuthorizeProfessional, service.authorize_professional, request_id="required"
            ),
            "RevokeAuthorization": Command(
                cmd.ProfessionalRef, service.revoke_authorization, request_id="required"
            ),
            "BlockProfessional": Command(
                cmd.ProfessionalRef, service.block_professional, request_id="required"
            ),
            "UnblockProfessional": Command(
                cmd.ProfessionalRef, service.unblock_professional, request_id="required"
            ),
            "ListPermissions": Command(cmd.SpaceRef, service.list_permissions),
            "ListAccessHistory": Command(cmd.ListAccessHistory, service.list_access_history),
        },
    )
    runtime.on_events(
        LIFECYCLE_QUEUE, {SpaceOpened: service.space_opened, SpaceClosed: service.space_closed}
    )
