"""access: authorizations, blocks, the authorization matrix, decisions and access traces.

python -m services.access
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import spaces
from libs.runtime import Runtime
from libs.settings import ServiceSettings
from services.access import handlers

NAME = "access"
Settings = ServiceSettings


def build(settings: ServiceSettings | None = None) -> Runtime:
    runtime = Runtime(
        NAME,
        settings or Settings(),
        Path(__file__).parent / "migrations",
        shared_migrations=spaces.MIGRATIONS,
    )
    handlers.register(runtime)
    return runtime


def app() -> FastStream:
    return build().app()
