"""retention: every deadline of the system (RET_04), and the events announcing they have come.

python -m services.retention
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs.runtime import Runtime
from services.retention import handlers
from services.retention.settings import RetentionSettings

NAME = "retention"
Settings = RetentionSettings


def build(settings: RetentionSettings | None = None) -> Runtime[RetentionSettings]:
    runtime = Runtime(NAME, settings or RetentionSettings(), Path(__file__).parent / "migrations")
    handlers.register(runtime)
    return runtime


def app() -> FastStream:
    return build().app()
