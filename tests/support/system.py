"""The services as the tests run them: the keys they are configured with, one service built as
deployed, and all six in this process."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from libs.runtime import Runtime
from libs.tokens import key_set, new_keypair, new_signing_key, public_jwks
from tests.support import infra

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")


@dataclass(frozen=True)
class Keys:
    identity_private: str  # identity's signing keys: a private JWKS
    identity_public: str  # the public JWKS every service verifies tokens with
    operator_id: str
    operator_private: str
    operator_public: str


def new_keys(operator_id: str = "cnam-agent-1") -> Keys:
    """Fresh signing keys for identity and a card key for one operator."""
    identity_private = key_set(new_signing_key())
    operator_private, operator_public = new_keypair()
    return Keys(
        identity_private,
        public_jwks(identity_private),
        operator_id,
        operator_private,
        operator_public,
    )


def build_service(name: str, values: dict[str, Any], **overrides: Any) -> Runtime:
    """The service as deployed: `values` name the environment (the administrator's URLs of a
    vhost and a database); the service connects as its own broker user and database role."""
    module = importlib.import_module(f"services.{name}.main")
    settings = infra.service_values({**values, **overrides}, name)
    runtime: Runtime = module.build(module.Settings(**settings))
    return runtime


@contextlib.asynccontextmanager
async def running_system(
    values: dict[str, Any], services: tuple[str, ...] = SERVICES, **overrides: Any
) -> AsyncIterator[dict[str, Runtime]]:
    """The services (all six unless told) in this process, each its own Runtime (connections,
    schema, users)."""
    runtimes = {name: build_service(name, values, **overrides) for name in services}
    started: list[Runtime] = []
    try:
        for runtime in runtimes.values():
            await runtime.start()
            started.append(runtime)
        yield runtimes
    finally:
        for runtime in reversed(started):
            await runtime.stop()
