"""retention against real PostgreSQL and RabbitMQ, with the shared clock moved forward.

This module runs on a database and a vhost of its own: the e2e suite's services (session-scoped)
stay up during the integration tests, and their retention would otherwise sweep these deadlines
too; and moving this database's clock ten years on leaves the other modules' clock alone.
The clock offset only moves forward: every expectation is computed from `runtime.now()`, and
each test uses its own INS values.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs import periods
from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.clock import advance
from libs.contracts.envelope import Event, envelope_for
from libs.contracts.events import (
    DocumentDeposited,
    HolderDeceased,
    ProxyEndDue,
    SpaceAnnounced,
    SpaceClosed,
    SpaceOpened,
)
from libs.runtime import Runtime
from libs.tokens import issue_for
from scripts import processes
from tests.support import infra
from tests.support.bus import EventTap, publish_raw
from tests.support.people import new_nir
from tests.support.system import Keys, build_service

pytestmark = pytest.mark.integration

SWEEP = 0.2
# Ten calendar years are at most 3653 days (three leap days).
TEN_YEARS_AND_A_BIT = timedelta(days=3653, minutes=1)


@pytest.fixture(scope="module")
def values(
    settings_values: dict[str, Any], own_database_url: str, own_amqp_url: str
) -> dict[str, Any]:
    return {**settings_values, "database_url": own_database_url, "amqp_url": own_amqp_url}


@pytest.fixture(scope="module")
async def client(own_amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.retention", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


@asynccontextmanager
async def running(values: dict[str, Any]) -> AsyncIterator[Runtime]:
    runtime = build_service("retention", values, sweep_interval_seconds=SWEEP)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def publish(amqp_url: str, event: Event, ins: str, at: datetime) -> str:
    envelope = envelope_for(
        event, holder_key=ins, occurred_at=at, correlation_id=f"test-{uuid.uuid4().hex[:8]}"
    )
    await publish_raw(
        amqp_url,
        event.routing_key(),
        envelope.model_dump_json().encode(),
        message_id=str(envelope.event_id),
    )
    return str(envelope.event_id)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def deadlines(runtime: Runtime, ins: str) -> list[asyncpg.Record]:
    async with runtime.pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM deadlines WHERE ins = $1 ORDER BY created_at", ins
        )
    return rows


def operator_token(keys: Keys, runtime: Runtime) -> str:
    return issue_for(
        keys.identity_private,
        sub=keys.operator_id,
        kind="operator",
        name="operator",
        now=runtime.now(),
        ttl=timedelta(hours=1),
    )


async def test_space_opening_is_due_six_weeks_after_announcement_and_not_before__SPC_01__RET_04(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    ins = new_nir()
    async with running(values) as retention, EventTap(own_amqp_url, "retention.#") as tap:
        announced_at = retention.now()
        cause = await publish(
            own_amqp_url,
            SpaceAnnounced(ins=ins, announced_at=announced_at, minor=False),
            ins,
            announced_at,
        )
        [row] = await eventually(lambda: deadlines(retention, ins))
        assert row["kind"] == "space_opening"
        assert row["due_at"] == announced_at + timedelta(weeks=6)
        assert str(row["cause_event_id"]) == cause

        # Several sweeps, then almost six weeks: nothing yet.
        await asyncio.sleep(5 * SWEEP)
        await advance(own_database_url, timedelta(weeks=6) - timedelta(hours=1))
        await asyncio.sleep(5 * SWEEP)
        assert tap.of_type("SpaceOpeningDue", ins=ins) == []
        assert (await deadlines(retention, ins))[0]["fired_at"] is None

        await advance(own_database_url, timedelta(hours=1, minutes=1))
        [due] = await tap.wait_for("SpaceOpeningDue", ins=ins)
        await asyncio.sleep(5 * SWEEP)
        assert len(tap.of_type("SpaceOpeningDue", ins=ins)) == 1
    assert due["holder_key"] == ins
    assert due["causation_id"] == cause
    assert due["payload"]["deadline_id"] == str(row["deadline_id"])
    assert datetime.fromisoformat(due["payload"]["due_at"]) == row["due_at"]


async def test_opened_space_cancels_its_opening__SPC_01(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    ins = new_nir()
    async with running(values) as retention, EventTap(own_amqp_url, "retention.#") as tap:
        now = retention.now()
        await publish(own_amqp_url, SpaceAnnounced(ins=ins, announced_at=now, minor=True), ins, now)
        await eventually(lambda: deadlines(retention, ins))
        await publish(own_amqp_url, SpaceOpened(ins=ins, opened_at=now), ins, now)

        async def cancelled() -> bool:
            return (await deadlines(retention, ins))[0]["cancelled_at"] is not None

        await eventually(cancelled)
        await advance(own_database_url, timedelta(weeks=6, minutes=1))
        await asyncio.sleep(5 * SWEEP)
    assert tap.of_type("SpaceOpeningDue", ins=ins) == []


async def test_closure_records_a_purge_ten_years_later_and_fires_it__RET_01(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str, keys: Keys, client: Client
) -> None:
    ins = new_nir()
    async with running(values) as retention, EventTap(own_amqp_url, "retention.#") as tap:
        closed_at = retention.now()
        await publish(
            own_amqp_url,
            SpaceClosed(ins=ins, closed_at=closed_at, requested_by=f"holder:{ins}"),
            ins,
            closed_at,
        )
        [row] = await eventually(lambda: deadlines(retention, ins))
        assert row["kind"] == "space_purge"
        # Ten calendar years: same date and time (29 February aside), 3652 or 3653 days.
        assert row["due_at"].year == closed_at.year + 10
        assert row["due_at"].time() == closed_at.time()
        assert row["due_at"] - closed_at in (timedelta(days=3652), timedelta(days=3653))

        listed = await client.rpc.call(
            "retention.commands",
            "ListDeadlines",
            {"ins": ins},
            token=operator_token(keys, retention),
        )
        [shown] = listed["deadlines"]
        assert (shown["kind"], shown["status"]) == ("space_purge", "pending")
        assert datetime.fromisoformat(shown["due_at"]) == row["due_at"]

        # Nine years on, still archived.
        await advance(own_database_url, timedelta(days=9 * 365))
        await asyncio.sleep(5 * SWEEP)
        assert tap.of_type("HolderPurgeRequested", ins=ins) == []

        await advance(own_database_url, TEN_YEARS_AND_A_BIT - timedelta(days=9 * 365))
        [due] = await tap.wait_for("HolderPurgeRequested", ins=ins)
        await asyncio.sleep(5 * SWEEP)
        assert len(tap.of_type("HolderPurgeRequested", ins=ins)) == 1
        assert due["payload"]["purge_id"] == str(row["deadline_id"])
        assert due["payload"]["services"] == [
            "access",
            "dossier",
            "identity",
            "messaging",
            "notifier",
        ]
        # Retention's own part is done at once: the holder's deadlines are gone.
        assert await deadlines(retention, ins) == []


async def test_reactivation_cancels_the_purge_and_a_new_closure_sets_another__RET_01(
    values: dict[str, Any], own_amqp_url: str
) -> None:
    ins = new_nir()
    async with running(values) as retention:
        closed_at = retention.now()
        closure = SpaceClosed(ins=ins, closed_at=closed_at, requested_by=f"holder:{ins}")
        await publish(own_amqp_url, closure, ins, closed_at)
        await eventually(lambda: deadlines(retention, ins))
        # A stale opening (from before the closure) delivered late cancels nothing.
        stale = closed_at - timedelta(days=30)
        stale_id = await publish(own_amqp_url, SpaceOpened(ins=ins, opened_at=stale), ins, stale)

        async def stale_applied() -> bool:
            async with retention.pool.acquire() as conn:
                seen = await conn.fetchval("SELECT 1 FROM inbox WHERE message_id = $1", stale_id)
            return seen is not None

        await eventually(stale_applied)
        [row] = await deadlines(retention, ins)
        assert row["cancelled_at"] is None
        # Reactivated a year later: no purge any more.
        reopened_at = closed_at + timedelta(days=365)
        await publish(own_amqp_url, SpaceOpened(ins=ins, opened_at=reopened_at), ins, reopened_at)

        async def purge_cancelled() -> bool:
            [row] = await deadlines(retention, ins)
            return row["cancelled_at"] is not None

        await eventually(purge_cancelled)
        closed_again = reopened_at + timedelta(days=1)
        await publish(
            own_amqp_url,
            SpaceClosed(ins=ins, closed_at=closed_again, requested_by="operator:x"),
            ins,
            closed_again,
        )

        async def two() -> list[asyncpg.Record] | None:
            rows = await deadlines(retention, ins)
            return rows if len(rows) == 2 else None

        first, second = await eventually(two)
    assert first["starts_at"] == closed_at and first["fired_at"] is None
    assert second["kind"] == "space_purge" and second["cancelled_at"] is None
    assert second["due_at"].year == closed_again.year + 10


async def test_only_the_operator_and_the_holder_list_a_spaces_deadlines__RET_02(
    values: dict[str, Any], keys: Keys, client: Client
) -> None:
    ins, other = new_nir(), new_nir()
    async with running(values) as retention:

        def holder(sub: str) -> str:
            return issue_for(
                keys.identity_private,
                sub=sub,
                kind="holder",
                name="Jeanne Durand",
                now=retention.now(),
                ttl=timedelta(hours=1),
            )

        listed = await client.rpc.call(
            "retention.commands", "ListDeadlines", {"ins": ins}, token=holder(ins)
        )
        assert listed == {"deadlines": []}
        with pytest.raises(RpcError) as refused:
            await client.rpc.call(
                "retention.commands", "ListDeadlines", {"ins": ins}, token=holder(other)
            )
        assert refused.value.code == "forbidden"


async def test_two_replicas_fire_each_due_deadline_once__RET_04(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    people = [new_nir() for _ in range(30)]
    async with (
        running(values) as first,
        running(values) as second,
        EventTap(own_amqp_url, "retention.#") as tap,
    ):
        now = first.now()
        for ins in people:
            await publish(
                own_amqp_url, SpaceAnnounced(ins=ins, announced_at=now, minor=False), ins, now
            )

        async def all_recorded() -> bool:
            async with first.pool.acquire() as conn:
                count = await conn.fetchval(
                    "SELECT count(*) FROM deadlines WHERE ins = ANY($1::text[])", people
                )
            return bool(count == len(people))

        await eventually(all_recorded)
        await advance(own_database_url, timedelta(weeks=6, minutes=1))
        for ins in people:
            await tap.wait_for("SpaceOpeningDue", ins=ins)
        await asyncio.sleep(10 * SWEEP)
        for replica in (first, second):
            assert replica.now() >= now + timedelta(weeks=6)
    for ins in people:
        assert len(tap.of_type("SpaceOpeningDue", ins=ins)) == 1, ins


async def test_a_deadline_survives_a_restart__RET_04(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    recorded_before, sent_while_down = new_nir(), new_nir()
    async with running(values) as retention:
        now = retention.now()
        await publish(
            own_amqp_url,
            SpaceAnnounced(ins=recorded_before, announced_at=now, minor=False),
            recorded_before,
            now,
        )
        await eventually(lambda: deadlines(retention, recorded_before))
    # Down: the event waits in the durable queue.
    await publish(
        own_amqp_url,
        SpaceAnnounced(ins=sent_while_down, announced_at=now, minor=False),
        sent_while_down,
        now,
    )
    async with running(values) as retention, EventTap(own_amqp_url, "retention.#") as tap:
        await eventually(lambda: deadlines(retention, sent_while_down))
        await advance(own_database_url, timedelta(weeks=6, minutes=1))
        await tap.wait_for("SpaceOpeningDue", ins=recorded_before)
        await tap.wait_for("SpaceOpeningDue", ins=sent_while_down)


async def test_the_sweep_survives_a_database_outage__RET_04(
    values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    ins = new_nir()
    async with running(values) as retention, EventTap(own_amqp_url, "retention.#") as tap:
        now = retention.now()
        await publish(
            own_amqp_url, SpaceAnnounced(ins=ins, announced_at=now, minor=False), ins, now
        )
        await eventually(lambda: deadlines(retention, ins))
        # Cut every connection the service holds; its pool reconnects, the sweep carries on.
        admin = await asyncpg.connect(own_database_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'retention' AND datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        await asyncio.sleep(3 * SWEEP)
        await advance(own_database_url, timedelta(weeks=6, minutes=1))
        await tap.wait_for("SpaceOpeningDue", ins=ins)


async def test_a_sweep_killed_9_mid_batch_resumes_firing_each_deadline_once__RET_04(
    values: dict[str, Any], own_database_url: str, tmp_path: Path
) -> None:
    """Twenty thousand deadlines due at once, in batches of 200; the sweeping process is killed
    with SIGKILL while it fires them, then another takes over: each fired exactly once."""
    ins, count = new_nir(), 20_000
    async with running(values):
        pass  # the schema, migrated
    admin = await asyncpg.connect(own_database_url)
    try:
        long_ago = datetime(2000, 1, 1, tzinfo=UTC)
        await admin.copy_records_to_table(
            "deadlines",
            schema_name="retention",
            columns=[
                *("deadline_id", "ins", "kind", "due_at", "created_at", "starts_at", "subject"),
                *("cause_event_id", "correlation_id"),
            ],
            records=[
                (
                    *(uuid.uuid4(), ins, "proxy_end", long_ago, long_ago, long_ago),
                    *(str(uuid.uuid4()), uuid.uuid4(), "test-sweep-killed"),
                )
                for _ in range(count)
            ],
        )

        async def fired() -> int:
            n: int = await admin.fetchval(
                "SELECT count(*) FROM retention.deadlines WHERE ins = $1 AND fired_at IS NOT NULL",
                ins,
            )
            return n

        env = {
            **os.environ,
            **processes.environment(
                infra.service_values(
                    {**values, "sweep_batch_size": 200, "sweep_interval_seconds": SWEEP},
                    "retention",
                )
            ),
            "PYTHONPATH": str(Path(__file__).parents[2]),
        }
        with (tmp_path / "retention.log").open("wb") as log:
            sweeping = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.retention", env=env, stdout=log, stderr=log
            )
            try:
                await eventually(fired, timeout=60)
                await asyncio.sleep(0.3)  # in the middle of the batches
            finally:
                sweeping.send_signal(signal.SIGKILL)
                await sweeping.wait()
        at_kill = await fired()
        assert 0 < at_kill < count, at_kill

        async with running(values):
            await eventually(lambda: _all_fired(fired, count), timeout=120)

        events = await admin.fetchrow(
            """SELECT count(*) AS events, count(DISTINCT payload->>'deadline_id') AS deadlines
               FROM (SELECT convert_from(body, 'UTF8')::jsonb -> 'payload' AS payload
                     FROM retention.outbox WHERE routing_key = $1) e
               WHERE payload->>'ins' = $2""",
            ProxyEndDue.routing_key(),
            ins,
        )
        assert (events["events"], events["deadlines"]) == (count, count)
    finally:
        await admin.close()


async def _all_fired(fired: Callable[[], Awaitable[int]], count: int) -> bool:
    return await fired() == count


async def test_occupational_part_kept_forty_years_after_last_visit_ten_after_death__RET_03(
    values: dict[str, Any], own_amqp_url: str
) -> None:
    ins = new_nir()
    async with running(values) as retention:
        now = retention.now()
        for visit, when in ((uuid.uuid4(), now - timedelta(days=800)), (uuid.uuid4(), now)):
            deposit = DocumentDeposited(
                document_id=visit,
                ins=ins,
                document_type="occupational_health",
                author_kind="professional",
                author_id="10000000001",
                author_name="Dr Travail",
                deposited_at=when,
            )
            await publish(own_amqp_url, deposit, ins, when)
        lab = DocumentDeposited(
            document_id=uuid.uuid4(),
            ins=ins,
            document_type="lab_report",
            author_kind="professional",
            author_id="10000000001",
            author_name="Dr Travail",
            deposited_at=now,
        )
        await publish(own_amqp_url, lab, ins, now)

        async def pending() -> list[asyncpg.Record]:
            rows = await deadlines(retention, ins)
            return [r for r in rows if r["cancelled_at"] is None]

        async def forty_years_after_the_last() -> bool:
            rows = await pending()
            return [r["due_at"] for r in rows] == [periods.add_calendar_years(now, 40)]

        await eventually(forty_years_after_the_last)
        assert {r["kind"] for r in await deadlines(retention, ins)} == {"occupational_part"}

        died_on = (now - timedelta(days=3)).date()
        death = HolderDeceased(ins=ins, died_on=died_on, recorded_at=now)
        await publish(own_amqp_url, death, ins, now)

        async def ten_years_after_death() -> bool:
            rows = await pending()
            due = datetime(died_on.year + 10, died_on.month, died_on.day, tzinfo=UTC)
            return [r["due_at"] for r in rows] == [due]

        await eventually(ten_years_after_death)


async def test_a_deposit_outside_the_occupational_part_needs_no_transaction__RET_03(
    values: dict[str, Any], own_amqp_url: str
) -> None:
    """Retention takes every deposit for the occupational health ones (libs.runtime.Only): the
    others are checked as any event, acknowledged, and leave nothing behind, not even an inbox
    row; a visit is applied and remembered as before."""
    ins = new_nir()
    async with running(values) as retention:
        now = retention.now()

        def deposit(document_type: str) -> DocumentDeposited:
            return DocumentDeposited(
                document_id=uuid.uuid4(),
                ins=ins,
                document_type=document_type,
                author_kind="professional",
                author_id="10000000001",
                author_name="Dr Travail",
                deposited_at=now,
            )

        def handled(outcome: str) -> float:
            counter = retention.meters.handled.labels(
                "retention", "retention.documents", "event", outcome
            )
            return float(counter._value.get())

        ignored_before, applied_before = handled("ignored"), handled("applied")
        lab = await publish(own_amqp_url, deposit("lab_report"), ins, now)
        visit = await publish(own_amqp_url, deposit("occupational_health"), ins, now)

        async def both_handled() -> bool:
            return handled("ignored") > ignored_before and handled("applied") > applied_before

        await eventually(both_handled)
        async with retention.pool.acquire() as conn:
            remembered = {
                str(r["message_id"])
                for r in await conn.fetch(
                    "SELECT message_id FROM inbox WHERE message_id = ANY($1::text[])", [lab, visit]
                )
            }
        assert remembered == {visit}
        assert [r["kind"] for r in await deadlines(retention, ins)] == ["occupational_part"]
