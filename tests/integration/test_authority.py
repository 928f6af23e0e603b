"""Least privilege, enforced by the servers themselves: the broker refuses, PostgreSQL refuses.

Every party connects as its own broker user (provisioned by `libs.bus.authority`) and every
service as its own database role (`libs.provision`); nothing here is mocked.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiormq.exceptions import ChannelAccessRefused

from libs.bus import authority, topology
from libs.contracts.events import AccessLogged, SpaceClosed
from tests.support import infra
from tests.support.bus import consume_as, publish_as

pytestmark = pytest.mark.integration

QUEUES = ("notifier.access-alerts", "dossier.commands", "access.decide", "identity.commands")


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("event", [AccessLogged, SpaceClosed])
async def test_a_client_cannot_publish_any_event(amqp_url: str, kind: str, event: Any) -> None:
    with pytest.raises(ChannelAccessRefused):
        await publish_as(
            infra.client_url(amqp_url, kind), topology.EVENTS_EXCHANGE, event.routing_key()
        )


@pytest.mark.parametrize("kind", authority.CLIENTS)
async def test_a_client_cannot_publish_to_a_queue_by_name(amqp_url: str, kind: str) -> None:
    with pytest.raises(ChannelAccessRefused):
        await publish_as(infra.client_url(amqp_url, kind), "", "access.decide")


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("queue", QUEUES)
async def test_a_client_cannot_consume_any_queue(
    amqp_url: str, identity: Any, kind: str, queue: str
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await consume_as(infra.client_url(amqp_url, kind), queue)


async def test_a_service_publishes_only_its_own_routing_keys(amqp_url: str) -> None:
    """dossier may not publish access's AccessLogged on dmp.events (topic permission)."""
    with pytest.raises(ChannelAccessRefused):
        await publish_as(
            infra.party_url(amqp_url, "dossier"),
            topology.EVENTS_EXCHANGE,
            AccessLogged.routing_key(),
        )
    # Its own keys go through (confirmed; parked as unrouted if nobody listens).
    await publish_as(
        infra.party_url(amqp_url, "dossier"), topology.EVENTS_EXCHANGE, "dossier.nothing.v1"
    )


async def test_a_service_cannot_consume_another_services_queue(
    amqp_url: str, identity: Any
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await consume_as(infra.party_url(amqp_url, "dossier"), "identity.commands")


async def test_no_service_role_is_a_superuser_and_none_reads_another_schema(
    database_url: str, identity: Any
) -> None:
    """identity's tables exist (it runs); every other role is refused them."""
    for service in authority.SERVICES:
        conn = await asyncpg.connect(infra.db_url(database_url, service))
        try:
            assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = user")
            assert not await conn.fetchval(
                "SELECT rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = user"
            )
            if service == "identity":
                assert await conn.fetchval("SELECT count(*) >= 0 FROM identity.persons")
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT count(*) FROM identity.persons")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE SCHEMA intruder")
        finally:
            await conn.close()
