"""Migrations as their own step: `python -m libs.migrate [service …]` (all six by default).

In production a service does not migrate its schema at start (`MIGRATE_ON_START=false`: it
refuses to start while a migration is pending); this command, run once per release as a job
after provisioning and before the services, applies each named service's migrations exactly as
the service would (`libs.db.migrate`: in order, once each, under an advisory lock).

What to apply is read from the service itself: its `build()` makes the `Runtime` that lists the
sources (libs' own, the shared sets it opts into, its own), so the list is never written twice.
Building connects to nothing; the job holds none of the services' keys, so the secrets a
service's settings require are filled with throw-away stand-ins that nothing uses.

Which database user runs them, per service, first found:

- `DATABASE_URL_<SERVICE>` (e.g. `DATABASE_URL_DOSSIER`): that service's own URL, its password
  taken from the secret file `$SECRETS_DIR/db_password_<service>` when there is one;
- `DATABASE_ADMIN_URL`: the administrator's, who takes the service's role (`SET ROLE
  <DB_ROLE_PREFIX><service>`, the prefix `<database>_` by default as in `libs.provision`), so
  that what the migrations make belongs to the service as when it migrates itself;
- `DATABASE_URL` (default: the services' default): as the services do at start in development.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from libs import db
from libs.bus.authority import SERVICES
from libs.logging import configure_logging
from libs.settings import with_password

log = structlog.get_logger()


@dataclass(frozen=True)
class Plan:
    """What one service's migration step does: where, as whom, which sources."""

    service: str
    schema: str
    sources: dict[str, Path]


def _stand_ins() -> dict[str, Any]:
    """Valid values for the secrets services require, made up here and used by nothing."""
    from libs.tokens import b64e, key_set, new_signing_key, public_jwks

    signing_keys = key_set(new_signing_key())
    return {
        "identity_jwks": public_jwks(signing_keys),
        "identity_signing_keys": signing_keys,
        "dossier_content_key": b64e(secrets.token_bytes(32)),
        "messaging_content_key": b64e(secrets.token_bytes(32)),
        "purge_proof_key": b64e(secrets.token_bytes(32)),
    }


def plan(service: str) -> Plan:
    """The service's schema and migration sources, as its `build()` makes its Runtime."""
    if service not in SERVICES:
        raise SystemExit(f"migrate: no service {service!r} (services: {', '.join(SERVICES)})")
    main = importlib.import_module(f"services.{service}.main")
    settings_class = main.Settings
    given = {k: v for k, v in _stand_ins().items() if k in settings_class.model_fields}
    runtime = main.build(settings_class(**given))
    return Plan(service, runtime.schema, dict(runtime.migrations))


def role_prefix(variables: Mapping[str, str]) -> str:
    from libs.provision import database_name

    if "DB_ROLE_PREFIX" in variables:
        return variables["DB_ROLE_PREFIX"]
    return f"{database_name(variables['DATABASE_ADMIN_URL'])}_"


async def _pool(service: str, variables: Mapping[str, str]) -> db.Pool:
    own = variables.get(f"DATABASE_URL_{service.upper()}")
    if own is None and variables.get("DATABASE_ADMIN_URL"):
        role = role_prefix(variables) + service

        async def as_service(conn: asyncpg.Connection[asyncpg.Record]) -> None:
            await conn.execute(f'SET ROLE "{role}"')

        pool: db.Pool = await asyncpg.create_pool(
            variables["DATABASE_ADMIN_URL"], min_size=1, max_size=1, init=as_service
        )
        return pool
    url = own or variables.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/dmp"
    # The service's password as a secret file (deploy/compose.yaml: `db_password_<service>`).
    secret = Path(variables.get("SECRETS_DIR", "/nonexistent")) / f"db_password_{service}"
    if own is not None and secret.is_file():
        url = with_password(url, secret.read_text().strip())
    return await db.create_pool(url, service, min_size=1, max_size=1)


async def migrate(
    services: tuple[str, ...] = SERVICES, variables: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """Apply every pending migration of each service; returns the versions applied now."""
    variables = os.environ if variables is None else variables
    plans = [plan(service) for service in services]  # every name checked before any change
    applied: dict[str, list[str]] = {}
    for step in plans:
        pool = await _pool(step.service, variables)
        try:
            applied[step.service] = await db.migrate(pool, step.schema, step.sources)
        finally:
            await pool.close()
    return applied


def main(argv: list[str]) -> None:
    if any(arg.startswith("-") for arg in argv):
        raise SystemExit(
            f"usage: python -m libs.migrate [service …] (services: {' '.join(SERVICES)})"
        )
    configure_logging("migrate", os.environ.get("LOG_LEVEL", "INFO"))
    applied = asyncio.run(migrate(tuple(argv) or SERVICES))
    for service, versions in applied.items():
        print(
            f"{service}: {len(versions)} applied"
            + (f" ({', '.join(versions)})" if versions else ", up to date")
        )


if __name__ == "__main__":
    main(sys.argv[1:])
