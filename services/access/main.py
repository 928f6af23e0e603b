"""access: authorizations, blocks, the authorization matrix, decisions and access traces.

python -m services.access
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import spaces
from libs.runtime import Runtime
from services.access import domain, handlers
from services.access.settings import AccessSettings

NAME = "access"
Settings = AccessSettings


def build(settings: AccessSettings | None = None) -> Runtime[AccessSettings]:
    settings = settings or Settings()
    # A matrix access cannot decide with stops it here, before it serves (ACC_07).
    domain.load_matrix(settings.access_matrix_file)
    runtime = Runtime(
        NAME,
        settings,
        Path(__file__).parent / "migrations",
        shared_migrations=spaces.MIGRATIONS,
    )
    handlers.register(runtime)
    # Every decision counted by rule and outcome (libs/metrics.py), exposed from the start.
    assert runtime.meters.access_decisions is not None
    return runtime


def app() -> FastStream:
    return build().app()
