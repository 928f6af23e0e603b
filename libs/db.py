"""PostgreSQL: one pool per service, bound to the service's own schema, and the migration runner.

Migrations are numbered `.sql` files. Each applied file is recorded in `<schema>.schema_migrations`
and applied once, in its own transaction, under an advisory lock so replicas starting together
do not race.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger()

LIBS_MIGRATIONS = Path(__file__).parent / "migrations"

# A connection as handlers and repositories get it: a plain one or one lent by a pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"


async def _keep_session(_conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Run on each connection given back to the pool, after asyncpg has rolled back any
    transaction left open. asyncpg's default also sends `SELECT pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL`, one more round trip per use of a connection (about 7 % of a
    service's CPU under load). The services leave no session state behind: `SET LOCAL` only,
    transaction-scoped advisory locks, no LISTEN on pooled connections, cursors inside
    transactions; the one session lock (migrations, `migrate`) is released before its
    connection goes back."""


class TransactionAborted(Exception):
    """COMMIT rolled back: a statement of the transaction failed and its error was swallowed."""


@contextlib.asynccontextmanager
async def begun_with(conn: Conn, first: str) -> AsyncIterator[str]:
    """A transaction whose first statement goes with its `BEGIN`, in one round trip: yields that
    statement's status (`INSERT 0 1`...). Commits when the block ends, rolls back if it raises.

    One simple query takes no parameters: build `first` with `literal` only."""
    try:
        yield await conn.execute(f"BEGIN; {first}")
    except BaseException:
        # Also when the connection is gone or busy: the pool rolls back what is left open.
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    if (ended := await conn.execute("COMMIT")) != "COMMIT":
        raise TransactionAborted(f"the transaction ended {ended}: a statement of it had failed")


# What `literal` writes into SQL: no quote, backslash, space or control character can pass.
_PLAIN = re.compile(r"[A-Za-z0-9_.:|@-]{1,512}")


def literal(value: str) -> str:
    """`value` as an SQL string literal, for `begun_with`'s simple query; ValueError unless it
    is made of letters, digits and `_.:|@-` only (ids and names of ours)."""
    if not _PLAIN.fullmatch(value):
        raise ValueError("not a plain value for a literal")
    return f"'{value}'"


def plain(value: str) -> bool:
    """Whether `literal` takes `value`."""
    return _PLAIN.fullmatch(value) is not None


async def create_pool(url: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    pool: Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": schema},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def migration_files(sources: dict[str, Path]) -> list[tuple[str, Path]]:
    """Every migration of `sources`, in the order applied, as (version, file)."""
    return [
        (f"{source}/{path.stem}", path)
        for source, directory in sources.items()
        for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    ]


async def pending(pool: Pool, schema: str, sources: dict[str, Path]) -> list[str]:
    """The migrations of `sources` not yet applied to `schema` (all of them on a fresh one)."""
    async with pool.acquire() as conn:
        table = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".schema_migrations')
        done = (
            {
                r["version"]
                for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
            }
            if table is not None
            else set()
        )
    return [version for version, _ in migration_files(sources) if version not in done]


class SchemaBehind(RuntimeError):
    """A service told not to migrate (MIGRATE_ON_START=false) found its schema behind."""


async def require_migrated(pool: Pool, schema: str, sources: dict[str, Path]) -> None:
    """Refuse to go on while `schema` misses a migration: run `python -m libs.migrate` first."""
    missing = await pending(pool, schema, sources)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        message = (
            f"the {schema} schema is not at its latest migration ({len(missing)} pending: {shown});"
            f" migrations are a separate step here (migrate_on_start is false):"
            f" run `python -m libs.migrate {schema}` first"
        )
        log.error("schema_behind", schema=schema, pending=missing)
        raise SchemaBehind(message)


async def migrate(pool: Pool, schema: str, sources: dict[str, Path]) -> list[str]:
    """Apply, in order, the files of each source (e.g. {"libs": ..., "identity": ...})."""
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext('migrate:' || $1))", schema)
        try:
            # Provisioning made the schema, owned by this service's role, which may not create
            # one (and PostgreSQL checks that right even for CREATE SCHEMA IF NOT EXISTS).
            if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " version text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            done = {
                r["version"]
                for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
            }
            for version, path in migration_files(sources):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                    await conn.execute(path.read_text())
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (version) VALUES ($1)',
                        version,
                    )
                applied_now.append(version)
                log.info("migration_applied", schema=schema, version=version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('migrate:' || $1))", schema)
    return applied_now
