"""Migrations as their own step: `python -m libs.migrate` on a fresh, provisioned database, and
a service told not to migrate (`migrate_on_start=false`) refusing a schema that is behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs import db, migrate
from libs.bus.authority import SERVICES
from tests.support import infra
from tests.support.system import build_service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def _applied(url: str, schema: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") is None:
            return set()
        rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        return {r["version"] for r in rows}
    finally:
        await conn.close()


def _expected(service: str) -> set[str]:
    return {version for version, _ in db.migration_files(migrate.plan(service).sources)}


def test_each_service_migrates_libs_shared_and_its_own_sources() -> None:
    for service in SERVICES:
        sources = migrate.plan(service).sources
        names = list(sources)
        assert (names[0], names[-1]) == ("libs", service)
    assert "spaces" in migrate.plan("access").sources
    assert "spaces" not in migrate.plan("identity").sources


async def test_the_command_migrates_a_fresh_database_as_each_services_role(
    servers: infra.Servers,
) -> None:
    async with infra.fresh_database(servers.database_url, prefix="dmp_migrate") as url:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        job = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "libs.migrate",
            cwd=ROOT,
            env={
                **keep,
                "PYTHONPATH": str(ROOT),
                "DATABASE_ADMIN_URL": url,
                "DB_ROLE_PREFIX": infra.db_prefix(url),
                "LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(job.communicate(), 120)
        assert job.returncode == 0, output.decode()
        for service in SERVICES:
            assert await _applied(url, service) == _expected(service), service
            assert f"{service}: {len(_expected(service))} applied" in output.decode()
        conn = await asyncpg.connect(url)
        try:
            # What the migrations made belongs to the service's role, as if it had migrated.
            owners = await conn.fetch(
                """SELECT DISTINCT n.nspname AS schema, pg_get_userbyid(c.relowner) AS owner
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p')""",
                list(SERVICES),
            )
        finally:
            await conn.close()
        assert {(r["schema"], r["owner"]) for r in owners} == {
            (s, infra.db_prefix(url) + s) for s in SERVICES
        }
        # Run again: nothing left to do.
        again = await migrate.migrate(
            SERVICES, {"DATABASE_ADMIN_URL": url, "DB_ROLE_PREFIX": infra.db_prefix(url)}
        )
        assert again == {service: [] for service in SERVICES}


async def test_the_command_migrates_with_a_services_own_url(servers: infra.Servers) -> None:
    async with infra.fresh_database(servers.database_url, prefix="dmp_migrate") as url:
        own = infra.db_url(url, "retention")
        applied = await migrate.migrate(("retention",), {"DATABASE_URL_RETENTION": own})
        assert set(applied["retention"]) == _expected("retention")
        assert await _applied(url, "retention") == _expected("retention")
        assert await _applied(url, "identity") == set()


def test_an_unknown_service_is_refused_before_anything_changes() -> None:
    with pytest.raises(SystemExit, match="no service 'dosier'"):
        migrate.plan("dosier")


async def test_a_service_not_migrating_at_start_refuses_a_schema_behind_then_starts_once_migrated(
    servers: infra.Servers, settings_values: dict[str, Any], own_amqp_url: str
) -> None:
    async with infra.fresh_database(servers.database_url, prefix="dmp_migrate") as url:
        values = {
            **settings_values,
            "database_url": url,
            "amqp_url": own_amqp_url,
            "migrate_on_start": False,
        }
        refused = build_service("retention", values)
        try:
            with pytest.raises(db.SchemaBehind, match=r"python -m libs.migrate retention"):
                await refused.prepare()
        finally:
            await refused.stop()
        assert await _applied(url, "retention") == set()  # it changed nothing

        await migrate.migrate(
            ("retention",), {"DATABASE_URL_RETENTION": infra.db_url(url, "retention")}
        )
        started = build_service("retention", values)
        await started.start()
        try:
            assert (await started.readiness())["database"]
        finally:
            await started.stop()
