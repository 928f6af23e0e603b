"""messaging: the space's secure messaging box (MSG_01..03).

python -m services.messaging
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs.runtime import Runtime
from libs.settings import ServiceSettings
from services.messaging import handlers

NAME = "messaging"
Settings = ServiceSettings


def build(settings: ServiceSettings | None = None) -> Runtime:
    runtime = Runtime(NAME, settings or ServiceSettings(), Path(__file__).parent / "migrations")
    handlers.register(runtime)
    return runtime


def app() -> FastStream:
    return build().app()
