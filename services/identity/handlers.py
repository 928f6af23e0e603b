"""identity's edges: its commands and the events it listens to."""

from __future__ import annotations

from libs.contracts import commands as cmd
from libs.contracts.events import SpaceOpeningDue
from libs.runtime import Command, Runtime
from services.identity import service

COMMANDS_QUEUE = "identity.commands"
LIFECYCLE_QUEUE = "identity.space-lifecycle"


def register(runtime: Runtime) -> None:
    runtime.on_commands(
        COMMANDS_QUEUE,
        {
            "RegisterHolder": Command(cmd.RegisterHolder, service.register_holder),
            "ObjectToSpace": Command(cmd.ObjectToSpace, service.object_to_space),
            "RegisterProfessional": Command(
                cmd.RegisterProfessional, service.register_professional
            ),
            "RequestChallenge": Command(
                cmd.RequestChallenge, service.request_challenge, authenticated=False
            ),
            "SignInWithCard": Command(
                cmd.SignInWithCard, service.sign_in_with_card, authenticated=False
            ),
            "RequestHolderCode": Command(
                cmd.RequestHolderCode, service.request_holder_code, authenticated=False
            ),
            "SignInHolder": Command(cmd.SignInHolder, service.sign_in_holder, authenticated=False),
            "CloseSpace": Command(cmd.CloseSpace, service.close_space),
        },
    )
    runtime.on_events(LIFECYCLE_QUEUE, {SpaceOpeningDue: service.open_space_when_due})
