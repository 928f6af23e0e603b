"""The space-status projection (libs/spaces.py) in access, dossier and messaging, against real
PostgreSQL and RabbitMQ: identity's lifecycle events delivered out of order, concurrently, and the
former tables moved into the shared one.

This module has a database and a vhost of its own: the e2e suite's services (session-scoped)
would otherwise consume the lifecycle events published here.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import permutations
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs import db, spaces
from libs.contracts.events import SpaceClosed, SpaceOpened
from libs.runtime import Runtime
from libs.spaces import Change
from tests.support import infra
from tests.support.bus import publish_event
from tests.support.people import new_nir
from tests.support.system import build_service, running_system

pytestmark = pytest.mark.integration

SERVICES = ("access", "dossier", "messaging")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def opened(hours: int) -> Change:
    return Change("open", T0 + timedelta(hours=hours))


def closed(hours: int) -> Change:
    return Change("closed", T0 + timedelta(hours=hours))


def expected_after(changes: Iterable[Change]) -> str | None:
    """The pure rule's verdict, delivery after delivery, on what was delivered."""
    held: Change | None = None
    for change in changes:
        if spaces.supersedes(change, held):
            held = change
    return None if held is None else held.status


@pytest.fixture(scope="module")
def values(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> dict[str, Any]:
    return {**settings_values, "amqp_url": own_amqp_url, "database_url": own_database_url}


@pytest.fixture(scope="module")
async def services(values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    async with running_system(values, SERVICES) as runtimes:
        yield runtimes


async def statuses(services: dict[str, Runtime], ins: str) -> dict[str, str | None]:
    found = {}
    for name, runtime in services.items():
        async with runtime.pool.acquire() as conn:
            found[name] = await spaces.status(conn, ins)
    return found


async def deliver(services: dict[str, Runtime], ins: str, change: Change) -> None:
    """As each service's lifecycle consumer does, one transaction per service."""
    for runtime in services.values():
        async with runtime.pool.acquire() as conn, conn.transaction():
            await spaces.apply(conn, ins, change.status, change.at)


# --- the rule, in each service's own schema -----------------------------------------------------


async def test_every_delivery_order_leaves_the_three_services_agreeing_at_every_step__RET_01(
    services: dict[str, Runtime],
) -> None:
    # Opened, closed, reactivated, closed again; and an opening stamped the same instant as the
    # last closure.
    history = [opened(0), closed(1), opened(2), closed(3), opened(3)]
    for order in permutations(history):
        ins = new_nir()
        for step in range(len(order)):
            await deliver(services, ins, order[step])
            expected = expected_after(order[: step + 1])
            assert await statuses(services, ins) == dict.fromkeys(SERVICES, expected), order


async def test_a_closure_heard_before_an_older_opening_keeps_the_space_closed__ACC_17(
    services: dict[str, Runtime],
) -> None:
    ins = new_nir()
    await deliver(services, ins, closed(1))
    assert await statuses(services, ins) == dict.fromkeys(SERVICES, "closed")
    await deliver(services, ins, opened(0))
    assert await statuses(services, ins) == dict.fromkeys(SERVICES, "closed")


async def test_an_opening_after_a_closure_reopens_the_space_in_every_service__RET_01(
    services: dict[str, Runtime],
) -> None:
    ins = new_nir()
    for change in (opened(0), closed(1)):
        await deliver(services, ins, change)
    assert await statuses(services, ins) == dict.fromkeys(SERVICES, "closed")
    await deliver(services, ins, opened(24 * 365))
    assert await statuses(services, ins) == dict.fromkeys(SERVICES, "open")


async def test_a_closure_and_an_opening_of_the_same_instant_leave_the_space_closed__ACC_17(
    services: dict[str, Runtime],
) -> None:
    for order in ((opened(1), closed(1)), (closed(1), opened(1))):
        ins = new_nir()
        for change in order:
            await deliver(services, ins, change)
        assert await statuses(services, ins) == dict.fromkeys(SERVICES, "closed"), order


async def test_a_change_heard_twice_is_recorded_once(services: dict[str, Runtime]) -> None:
    ins = new_nir()
    for runtime in services.values():
        async with runtime.pool.acquire() as conn:
            assert await spaces.apply(conn, ins, "closed", closed(1).at)
            assert not await spaces.apply(conn, ins, "closed", closed(1).at)
            assert not await spaces.apply(conn, ins, "open", opened(1).at)
            assert await spaces.status(conn, ins) == "closed"


async def test_deliveries_racing_in_concurrent_transactions_end_as_the_rule_says__RET_05(
    services: dict[str, Runtime], own_database_url: str
) -> None:
    history = [opened(0), closed(1), opened(2), closed(3)]

    async def one(conn: asyncpg.Connection, ins: str, change: Change, delay: float) -> None:
        async with conn.transaction():
            await spaces.apply(conn, ins, change.status, change.at)
            # Hold the row a while: the others queue behind it, then decide on what it committed.
            await asyncio.sleep(delay)

    for name in SERVICES:
        connections = [
            await asyncpg.connect(
                infra.db_url(own_database_url, name), server_settings={"search_path": name}
            )
            for _ in history
        ]
        try:
            for rotation in range(len(history)):
                ins = new_nir()
                order = history[rotation:] + history[:rotation]
                await asyncio.gather(
                    *(
                        one(conn, ins, change, 0.05 * i)
                        for i, (conn, change) in enumerate(zip(connections, order, strict=True))
                    )
                )
                async with services[name].pool.acquire() as conn:
                    assert await spaces.status(conn, ins) == "closed", (name, order)
        finally:
            for conn in connections:
                await conn.close()


# --- through the bus, as identity publishes -----------------------------------------------------


async def consumed(runtime: Runtime, event_id: str) -> None:
    queue = f"{runtime.name}.space-lifecycle"
    async with asyncio.timeout(15):
        while True:
            async with runtime.pool.acquire() as conn:
                if await conn.fetchval(
                    "SELECT true FROM inbox WHERE consumer = $1 AND message_id = $2",
                    queue,
                    event_id,
                ):
                    return
            await asyncio.sleep(0.02)


async def publish(amqp_url: str, ins: str, change: Change) -> str:
    event: SpaceOpened | SpaceClosed = (
        SpaceOpened(ins=ins, opened_at=change.at)
        if change.status == "open"
        else SpaceClosed(ins=ins, closed_at=change.at, requested_by=f"holder:{ins}")
    )
    return await publish_event(amqp_url, event, holder_key=ins, occurred_at=change.at)


@pytest.mark.parametrize(
    "order",
    [
        [opened(0), closed(1), opened(2), closed(3)],
        [closed(3), opened(2), closed(1), opened(0)],
        [closed(1), opened(0), closed(3), opened(2)],
        [opened(2), closed(1), closed(3), opened(0), opened(3), closed(3)],
    ],
    ids=["in-order", "reversed", "closures-first", "late-tie-and-repeat"],
)
async def test_lifecycle_events_out_of_order_on_the_bus_keep_the_services_agreeing__RET_05(
    services: dict[str, Runtime], own_amqp_url: str, order: Sequence[Change]
) -> None:
    ins = new_nir()
    for step, change in enumerate(order):
        event_id = await publish(own_amqp_url, ins, change)
        for runtime in services.values():
            await consumed(runtime, event_id)
        expected = expected_after(order[: step + 1])
        assert await statuses(services, ins) == dict.fromkeys(SERVICES, expected), step


# --- the former tables --------------------------------------------------------------------------


# What each service's own `spaces` table held before the shared projection, and its time column.
FORMER = {
    "access": ("0002_shared_spaces", "changed_at"),
    "dossier": ("0003_shared_spaces", "changed_at"),
    "messaging": ("0003_shared_spaces", "status_at"),
}


@pytest.mark.parametrize("service", SERVICES)
async def test_the_rows_of_a_services_former_spaces_table_are_moved_not_lost(
    servers: infra.Servers, values: dict[str, Any], tmp_path: Path, service: str
) -> None:
    migration, time_column = FORMER[service]
    own = Path(__file__).parents[2] / "services" / service / "migrations"
    before = tmp_path / service
    before.mkdir()
    for path in sorted(own.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if path.stem >= migration:
            break
        shutil.copy(path, before)
    rows = [(new_nir(), "open", T0), (new_nir(), "closed", T0 + timedelta(days=1))]

    async with infra.fresh_database(servers.database_url) as url:
        pool = await db.create_pool(infra.db_url(url, service), service)
        try:
            # The service as it was deployed before, with spaces heard of.
            await db.migrate(pool, service, {"libs": db.LIBS_MIGRATIONS, service: before})
            await pool.executemany(
                f"INSERT INTO spaces (ins, status, {time_column}) VALUES ($1, $2, $3)", rows
            )
            # Then this version's migrations, as its runtime applies them.
            runtime = build_service(service, {**values, "database_url": url})
            applied = await db.migrate(pool, service, runtime.migrations)
            # The shared table first, then the migration that moves the rows, then any later.
            assert applied[:2] == ["spaces/0001_spaces", f"{service}/{migration}"]
            assert all(name.startswith(f"{service}/") for name in applied[2:])
            moved = await pool.fetch("SELECT ins, status, changed_at FROM space_lifecycle")
            assert sorted(tuple(r) for r in moved) == sorted(rows)
            assert await pool.fetchval("SELECT to_regclass('spaces')") is None
            # The moved rows follow the shared rule: a reopening after the closure wins.
            async with pool.acquire() as conn:
                assert await spaces.apply(conn, rows[1][0], "open", T0 + timedelta(days=2))
                assert await spaces.status(conn, rows[1][0]) == "open"
        finally:
            await pool.close()
