"""messaging: the space's secure messaging, in threads (MSG_01..03), sealed at rest.

python -m services.messaging
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import spaces
from libs.runtime import Runtime
from services.messaging import handlers
from services.messaging.settings import MessagingSettings

NAME = "messaging"
Settings = MessagingSettings


def build(settings: MessagingSettings | None = None) -> Runtime[MessagingSettings]:
    runtime = Runtime(
        NAME,
        settings or MessagingSettings(),
        Path(__file__).parent / "migrations",
        shared_migrations=spaces.MIGRATIONS,
    )
    handlers.register(runtime)
    return runtime


def app() -> FastStream:
    return build().app()
