"""The hostile suite's system: all six services in-process, on the session's vhost and database.

One system for the whole package (started once, as the e2e `system` fixture does for a module),
so the fuzzed commands, the forged events and the refused rights all hit the same running
services. Tiers run one after the other: whatever ran before has settled when this starts (each
check of "nothing written" first waits for the databases to stop moving).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from libs.bus import topology
from libs.bus.rpc import RpcClient
from libs.runtime import Runtime
from tests.hostile.catalog import HOLDER_INS, OPERATOR, RPPS, TokenKind
from tests.support import infra
from tests.support.system import Keys, running_system
from tests.support.tokens import token_for


@pytest.fixture(scope="package")
def hostile_values(settings_values: dict[str, Any]) -> dict[str, Any]:
    """The session's vhost and database."""
    return settings_values


@pytest.fixture(scope="package")
async def system(hostile_values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    # Retention's sweep would fire deadlines left due by earlier tiers (which moved the shared
    # clock by years) in the middle of a "nothing written" check: after its first sweep at
    # start, it waits an hour.
    async with running_system(hostile_values, sweep_interval_seconds=3600) as runtimes:
        yield runtimes


@pytest.fixture(scope="package")
def admin_amqp_url(hostile_values: dict[str, Any]) -> str:
    return str(hostile_values["amqp_url"])


@pytest.fixture(scope="package")
async def admin_db(hostile_values: dict[str, Any]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(hostile_values["database_url"])
    yield conn
    await conn.close()


@pytest.fixture(scope="package")
async def callers(
    admin_amqp_url: str, system: dict[str, Runtime]
) -> AsyncIterator[dict[str, RpcClient]]:
    """Request/reply clients by party: a practice software through `dmp.commands`, and the
    services that may ask the internal queues (dossier: `access.decide`, notifier:
    `identity.contacts`) through `dmp.internal`."""
    clients = {
        "practice-software": RpcClient(
            infra.client_url(admin_amqp_url), name="hostile", timeout=20.0
        ),
        **{
            party: RpcClient(
                infra.party_url(admin_amqp_url, party),
                name=f"hostile-{party}",
                timeout=20.0,
                exchange=topology.INTERNAL_EXCHANGE,
            )
            for party in ("dossier", "notifier")
        },
    }
    for rpc in clients.values():
        await rpc.connect()
    yield clients
    for rpc in clients.values():
        await rpc.close()


@pytest.fixture(scope="package")
def tokens(keys: Keys, system: dict[str, Runtime]) -> dict[TokenKind, str]:
    """Genuine tokens (identity's key, valid an hour) of people the system does not know.

    Minted on the services' clock, which earlier tiers may have moved forward by years."""
    now = system["identity"].now()
    return {
        "holder": token_for(keys.identity_private, sub=HOLDER_INS, kind="holder", now=now),
        "professional": token_for(
            keys.identity_private, sub=RPPS, kind="professional", now=now, profession="physician"
        ),
        "operator": token_for(keys.identity_private, sub=OPERATOR, kind="operator", now=now),
    }
