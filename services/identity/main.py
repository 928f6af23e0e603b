"""identity: persons, spaces and their lifecycle, professionals, sign-in and tokens.

python -m services.identity
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs.runtime import Runtime
from services.identity import handlers
from services.identity.settings import IdentitySettings

NAME = "identity"
Settings = IdentitySettings


def build(settings: IdentitySettings | None = None) -> Runtime[IdentitySettings]:
    runtime = Runtime(NAME, settings or IdentitySettings(), Path(__file__).parent / "migrations")
    handlers.register(runtime)
    return runtime


def app() -> FastStream:
    return build().app()
