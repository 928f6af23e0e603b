"""The servers refuse what a party has no right to: every event, every queue, every schema.

`tests/integration/test_authority.py` checks a sample; this checks them all, against the running
system (every queue declared): each kind of client publishing each event type on `dmp.events`
and consuming each queue (refused by RabbitMQ), and each service's database role reading every
table of every other service's schema (refused by PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiormq.exceptions import ChannelAccessRefused

from libs.bus import authority, topology
from libs.contracts.envelope import Event
from libs.runtime import Runtime
from tests.hostile import catalog
from tests.support import infra
from tests.support.bus import consume_as, publish_as

pytestmark = pytest.mark.hostile


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("event", catalog.system_events(), ids=lambda e: f"{e.TYPE}.v{e.VERSION}")
async def test_no_client_may_publish_any_event_type(
    admin_amqp_url: str, system: dict[str, Runtime], kind: str, event: type[Event]
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await publish_as(
            infra.client_url(admin_amqp_url, kind), topology.EVENTS_EXCHANGE, event.routing_key()
        )


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("queue", catalog.every_queue())
async def test_no_client_may_consume_any_queue_of_the_system(
    admin_amqp_url: str, system: dict[str, Runtime], kind: str, queue: str
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await consume_as(infra.client_url(admin_amqp_url, kind), queue)


@pytest.mark.parametrize("kind", authority.CLIENTS)
@pytest.mark.parametrize("queue", catalog.every_queue())
async def test_no_client_may_put_a_message_into_any_queue_by_name(
    admin_amqp_url: str, system: dict[str, Runtime], kind: str, queue: str
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await publish_as(infra.client_url(admin_amqp_url, kind), "", queue)


@pytest.mark.parametrize("service", catalog.SERVICES)
async def test_no_service_role_may_read_any_table_of_another_services_schema(
    hostile_values: dict[str, Any],
    admin_db: asyncpg.Connection,
    system: dict[str, Runtime],
    service: str,
) -> None:
    tables = await admin_db.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema = ANY($1::text[]) AND table_schema <> $2",
        list(catalog.SERVICES),
        service,
    )
    assert {t["table_schema"] for t in tables} == set(catalog.SERVICES) - {service}
    conn = await asyncpg.connect(infra.db_url(hostile_values["database_url"], service))
    try:
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"SELECT count(*) FROM {name}")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"DELETE FROM {name}")
    finally:
        await conn.close()
