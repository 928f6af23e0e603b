"""Least privilege, enforced by the servers themselves: the broker refuses, PostgreSQL refuses.

Every party connects as its own broker user (provisioned by `libs.bus.authority`) and every
service as its own database role (`libs.provision`); nothing here is mocked.
"""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiormq.exceptions import ChannelAccessRefused

from libs.bus import authority, topology
from libs.contracts.events import AccessLogged, SpaceClosed
from tests.support import infra

pytestmark = pytest.mark.integration

QUEUES = ("notifier.access-alerts", "dossier.commands", "access.decide", "identity.commands")


async def _ignore(_message: Any) -> None:
    pass


async def _publish(url: str, exchange: str, routing_key: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        await target.publish(aio_pika.Message(b"{}", message_id=uuid.uuid4().hex), routing_key)
    finally:
        await connection.close()


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("event", [AccessLogged, SpaceClosed])
async def test_a_client_cannot_publish_any_event(amqp_url: str, kind: str, event: Any) -> None:
    with pytest.raises(ChannelAccessRefused):
        await _publish(
            infra.client_url(amqp_url, kind), topology.EVENTS_EXCHANGE, event.routing_key()
        )


@pytest.mark.parametrize("kind", authority.CLIENTS)
async def test_a_client_cannot_publish_to_a_queue_by_name(amqp_url: str, kind: str) -> None:
    with pytest.raises(ChannelAccessRefused):
        await _publish(infra.client_url(amqp_url, kind), "", "access.decide")


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("queue", QUEUES)
async def test_a_client_cannot_consume_any_queue(
    amqp_url: str, identity: Any, kind: str, queue: str
) -> None:
    connection = await aio_pika.connect(infra.client_url(amqp_url, kind))
    try:
        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            # Declared passively (no right needed to look), then consumed: refused.
            found = await channel.get_queue(queue, ensure=False)
            await found.consume(_ignore)
    finally:
        await connection.close()


async def test_a_service_publishes_only_its_own_routing_keys(amqp_url: str) -> None:
    """dossier may not publish access's AccessLogged on dmp.events (topic permission)."""
    with pytest.raises(ChannelAccessRefused):
        await _publish(
            infra.party_url(amqp_url, "dossier"),
            topology.EVENTS_EXCHANGE,
            AccessLogged.routing_key(),
        )
    # Its own keys go through (confirmed; parked as unrouted if nobody listens).
    await _publish(
        infra.party_url(amqp_url, "dossier"), topology.EVENTS_EXCHANGE, "dossier.nothing.v1"
    )


async def test_a_service_cannot_consume_another_services_queue(
    amqp_url: str, identity: Any
) -> None:
    connection = await aio_pika.connect(infra.party_url(amqp_url, "dossier"))
    try:
        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            queue = await channel.get_queue("identity.commands", ensure=False)
            await queue.consume(_ignore)
    finally:
        await connection.close()


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
