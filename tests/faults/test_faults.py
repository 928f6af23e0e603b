"""Faults under a steady load of deposits and reads, on private servers: nothing acknowledged
is lost, no effect happens twice, and the system serves again by itself.

Each test starts the six services as processes on a fresh database and vhost of the private
PostgreSQL and RabbitMQ, populates holders and professionals, runs the load (harness.RATE
operations per second), injects its fault, measures how long until every service answers Ping
ready and a deposit and a read succeed, then checks every operation's effects from the database
(harness.verify) and records a row of the table printed at the end.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from libs.bus import topology
from libs.contracts.events import AccessLogged
from tests.faults import harness
from tests.faults.crashing_service import MARKER
from tests.faults.harness import Bench, Row, run_fault, system_on
from tests.support.private_servers import PrivatePostgres, RabbitNode

pytestmark = pytest.mark.faults


def assert_held(row: Row) -> None:
    assert row.lost == 0, f"{row.fault}: {row.lost} acknowledged effects lost ({row.note})"
    assert row.duplicated == 0, f"{row.fault}: {row.duplicated} effects duplicated ({row.note})"
    assert row.recovered, f"{row.fault}: did not serve again within {harness.RECOVERY_BUDGET}s"
    # A caller must be told to try again (`unavailable`, `timeout`), never that we failed.
    assert not row.outcomes.get("internal_error"), f"{row.fault}: internal errors ({row.note})"


# --- kill -9 of each service ----------------------------------------------------------------


@pytest.mark.parametrize(
    "service",
    [
        pytest.param(name, marks=pytest.mark.faults_short) if name == "dossier" else name
        for name in harness.SERVICES
    ],
)
async def test_service_killed_9_under_load_then_restarted_loses_nothing_duplicates_nothing(
    service: str, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        bench.system.kill(service)
        await asyncio.sleep(2)  # a supervisor's restart delay
        bench.system.start(service)

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, f"kill -9 {service}", inject)
    assert_held(row)


async def test_dossier_killed_9_with_requests_in_flight_then_restarted_does_each_once(
    fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    """A random kill often finds dossier between requests. Here access is paused (SIGSTOP) for
    1.5 s first, so dossier holds deposits and reads waiting on `access.decide` when it dies;
    access then decides them (traces) and answers a dead dossier; the requests are redelivered
    to the new one. Each deposit and each read sent once must still be one access."""

    async def inject(bench: Bench) -> None:
        bench.system.signal("access", signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)
            bench.system.kill("dossier")
        finally:
            bench.system.signal("access", signal.SIGCONT)
        await asyncio.sleep(2)
        bench.system.start("dossier")

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "kill -9 dossier, requests in flight", inject)
    assert_held(row)


# --- the broker -----------------------------------------------------------------------------


@pytest.mark.faults_short
async def test_broker_restart_under_load_loses_nothing_duplicates_nothing_and_services_reconnect(
    private_rabbit: RabbitNode, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        await asyncio.to_thread(private_rabbit.restart)

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "broker restart", inject)
    assert_held(row)


async def test_broker_down_60s_under_load_loses_nothing_and_services_recover_by_themselves(
    private_rabbit: RabbitNode, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        await asyncio.to_thread(private_rabbit.stop)
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.to_thread(private_rabbit.start)

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "broker down 60 s", inject)
    assert_held(row)


# --- the database ---------------------------------------------------------------------------


async def test_database_crash_restart_under_load_loses_nothing_duplicates_nothing(
    private_pg: PrivatePostgres, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        # `immediate`: every backend killed, crash recovery at the next start.
        await asyncio.to_thread(private_pg.restart, "immediate")

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "database restart (immediate)", inject)
    assert_held(row)


async def test_database_down_120s_under_load_loses_no_alert_and_services_recover_by_themselves(
    private_pg: PrivatePostgres, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        await asyncio.to_thread(private_pg.stop, "fast")
        try:
            await asyncio.sleep(120)
        finally:
            await asyncio.to_thread(private_pg.start)

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "database down 120 s", inject)
    assert_held(row)


# --- the outbox relay -----------------------------------------------------------------------


async def test_access_relay_killed_between_confirm_and_mark_republishes_and_alerts_once(
    fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    crash_file = logs / "crash-access-relay"
    crash_file.unlink(missing_ok=True)
    republished: list[str] = []

    async def inject(bench: Bench) -> None:
        access = bench.system.procs["access"]
        crash_file.touch()
        deadline = time.monotonic() + 30
        while access.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert access.poll() == 9, "access's relay did not reach its crash point"
        line = next(x for x in bench.system.log("access").splitlines() if x.startswith(MARKER))
        republished.extend(part.strip(" '[],") for part in line.split("[", 1)[1].split(","))
        bench.system.start("access")
        # The rows the dead relay published stay unsent until their lease (30 s) ends, then
        # the new relay publishes them again: wait for that, so the check sees the duplicates.
        conn = await asyncpg.connect(bench.database_url)
        try:
            async with asyncio.timeout(90):
                while await conn.fetchval(
                    "SELECT count(*) FROM access.outbox WHERE event_id = ANY($1::uuid[])"
                    " AND sent_at IS NOT NULL AND attempts >= 2",
                    republished,
                ) < len(republished):
                    await asyncio.sleep(0.5)
        finally:
            await conn.close()

    async with system_on(
        fresh_database,
        fresh_vhost,
        logs,
        modules={"access": "tests.faults.crashing_service"},
        extra_env={"access": {"FAULT_CRASH_FILE": str(crash_file)}},
    ) as bench:
        row = await run_fault(bench, "access relay killed between confirm and mark", inject)
    assert republished, "no event was published twice"
    assert_held(row)


# --- poison ---------------------------------------------------------------------------------

POISON_EACH = 70  # more than the consumers' prefetch (64)


async def _publish_poison(amqp_url: str) -> int:
    """Bodies that are not JSON but labelled JSON, envelopes of the wrong schema, unknown event
    types: on the events exchange (to every consumer of AccessLogged) and straight into
    dossier.commands and access.decide. Returns how many were published."""
    not_json = b"{this is not json"
    wrong_schema = b'{"event_id": "x", "type": "AccessLogged", "version": 1, "payload": {}}'
    unknown = (
        b'{"event_id": "%s", "type": "NoSuchEvent", "version": 1, "occurred_at":'
        b' "2026-01-01T00:00:00+00:00", "correlation_id": "p", "causation_id": null,'
        b' "holder_key": "x", "payload": {}}'
    )
    bad_request = b'{"command": 42}'
    connection = await aio_pika.connect(amqp_url)
    sent = 0
    try:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        for i in range(POISON_EACH):
            for body in (not_json, wrong_schema, unknown % uuid.uuid4().hex.encode()):
                await events.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        message_id=f"poison-{i}-{sent}",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=AccessLogged.routing_key(),
                )
                sent += 1
            for queue in ("dossier.commands", "access.decide"):
                for body in (not_json, bad_request):
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            body,
                            content_type="application/json",
                            message_id=f"poison-{i}-{sent}",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=queue,
                    )
                    sent += 1
    finally:
        await connection.close()
    return sent


async def test_poison_burst_on_event_and_command_queues_is_parked_and_consumers_keep_serving(
    private_rabbit: RabbitNode, fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    published: list[int] = []

    async def inject(bench: Bench) -> None:
        published.append(await _publish_poison(bench.amqp_url))

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "poison burst", inject, after=15)
        vhost = bench.amqp_url.rsplit("/", 1)[1]
        held = await harness.queues_drained(private_rabbit.ctl, vhost)
        parked = await asyncio.to_thread(
            private_rabbit.ctl, "-q", "list_queues", "-p", vhost, "name", "messages"
        )
    print(f"poison published: {published}; held afterwards: {held}; queues:\n{parked}")
    (logs / "queues.txt").write_text(f"published {published}\nheld {held}\n{parked}\n")
    assert_held(row)
    assert not held, f"poison left in consumer queues 30 s after (not parked): {held}"


# --- a stalled consumer ---------------------------------------------------------------------


async def test_notifier_stalled_45s_under_load_alerts_every_access_once_after(
    fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    async def inject(bench: Bench) -> None:
        bench.system.signal("notifier", signal.SIGSTOP)
        try:
            await asyncio.sleep(45)
        finally:
            bench.system.signal("notifier", signal.SIGCONT)

    async with system_on(fresh_database, fresh_vhost, logs) as bench:
        row = await run_fault(bench, "notifier stalled 45 s (SIGSTOP)", inject)
    assert_held(row)
