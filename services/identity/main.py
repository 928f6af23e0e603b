"""identity: persons, spaces and their lifecycle, professionals, sign-in and tokens.

python -m services.identity
"""

from __future__ import annotations

from pathlib import Path

from faststream import FastStream

from libs import purge
from libs.runtime import Runtime
from services.identity import handlers
from services.identity import purge as holder_purge
from services.identity.settings import IdentitySettings

NAME = "identity"
Settings = IdentitySettings


def build(settings: IdentitySettings | None = None) -> Runtime[IdentitySettings]:
    runtime = Runtime(NAME, settings or IdentitySettings(), Path(__file__).parent / "migrations")
    handlers.register(runtime)
    # RET_01: its part of a holder's purge, ten years after closure.
    purge.register(runtime, holder_purge.PURGE)
    return runtime


def app() -> FastStream:
    return build().app()
