"""identity's edges: its commands, the contact lookup for the notifier, the events it hears."""

from __future__ import annotations

from typing import Any

from libs.contracts import commands as cmd
from libs.contracts.events import SpaceOpeningDue
from libs.runtime import Command, CommandContext, Runtime
from services.identity import service
from services.identity.background import CodeMailer, janitor
from services.identity.settings import IdentitySettings

COMMANDS_QUEUE = "identity.commands"
# Asked by services only (the notifier), never by a person: no token, the caller is checked.
CONTACTS_QUEUE = "identity.contacts"
LIFECYCLE_QUEUE = "identity.space-lifecycle"


def register(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, IdentitySettings)
    mailer = CodeMailer(settings)
    cleaner = janitor(runtime, service.sign_in_policy(settings), settings.prune_interval_seconds)
    runtime.add_background(mailer.start, mailer.stop)
    runtime.add_background(cleaner.start, cleaner.stop)

    async def request_holder_code(ctx: CommandContext, c: cmd.RequestHolderCode) -> dict[str, Any]:
        return await service.request_holder_code(ctx, c, mailer)

    runtime.on_commands(
        COMMANDS_QUEUE,
        {
            "RegisterHolder": Command(
                cmd.RegisterHolder, service.register_holder, request_id="required"
            ),
            "ObjectToSpace": Command(
                cmd.ObjectToSpace, service.object_to_space, request_id="required"
            ),
            "RegisterProfessional": Command(
                cmd.RegisterProfessional, service.register_professional, request_id="required"
            ),
            "RequestChallenge": Command(
                cmd.RequestChallenge, service.request_challenge, authenticated=False
            ),
            "SignInWithCard": Command(
                cmd.SignInWithCard, service.sign_in_with_card, authenticated=False
            ),
            "RequestHolderCode": Command(
                cmd.RequestHolderCode, request_holder_code, authenticated=False
            ),
            "SignInHolder": Command(cmd.SignInHolder, service.sign_in_holder, authenticated=False),
            "CloseSpace": Command(cmd.CloseSpace, service.close_space, request_id="required"),
        },
    )
    runtime.on_commands(
        CONTACTS_QUEUE,
        {
            "GetAlertContact": Command(
                cmd.GetAlertContact, service.get_alert_contact, authenticated=False
            ),
        },
    )
    runtime.on_events(LIFECYCLE_QUEUE, {SpaceOpeningDue: service.open_space_when_due})
