"""identity's edges: its commands, the contact lookup for the notifier, the events it hears."""

from __future__ import annotations

from libs.contracts import commands as cmd
from libs.contracts.events import SpaceOpeningDue
from libs.runtime import CommandContext, Runtime
from services.identity import service
from services.identity.background import CodeMailer, janitor
from services.identity.settings import IdentitySettings

LIFECYCLE_QUEUE = "identity.space-lifecycle"


def register(runtime: Runtime[IdentitySettings]) -> None:
    settings = runtime.settings
    mailer = CodeMailer(settings)
    cleaner = janitor(runtime, service.sign_in_policy(settings), settings.prune_interval_seconds)
    runtime.add_background(mailer.start, mailer.stop)
    runtime.add_background(cleaner.start, cleaner.stop)

    async def request_holder_code(
        ctx: CommandContext[IdentitySettings], c: cmd.RequestHolderCode
    ) -> cmd.CodeRequested:
        return await service.request_holder_code(ctx, c, mailer)

    runtime.handle(cmd.RegisterHolder, service.register_holder)
    runtime.handle(cmd.ObjectToSpace, service.object_to_space)
    runtime.handle(cmd.RegisterProfessional, service.register_professional)
    runtime.handle(cmd.RequestChallenge, service.request_challenge)
    runtime.handle(cmd.SignInWithCard, service.sign_in_with_card)
    runtime.handle(cmd.RequestHolderCode, request_holder_code)
    runtime.handle(cmd.SignInHolder, service.sign_in_holder)
    runtime.handle(cmd.CloseSpace, service.close_space)
    runtime.handle(cmd.GetSigningKeys, service.get_signing_keys)
    # Asked by services only (the notifier), never by a person: no token, the caller is checked.
    runtime.handle(cmd.GetAlertContact, service.get_alert_contact)
    runtime.on_events(LIFECYCLE_QUEUE, {SpaceOpeningDue: service.open_space_when_due})
