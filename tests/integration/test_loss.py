"""Nothing acknowledged is lost: crashes, duplicates, bad messages and poison, on the real broker.

Each test runs the probe service (`tests.support.probe_service`: the real `Runtime` with a trivial
domain) in a subprocess, so it can be SIGKILLed at the exact point a crash hurts most, and looks
at the probe's tables and at RabbitMQ itself. Each test has probes of its own (own schema, own
queues); the probe's event type `probe.effect_requested.v1` is bound by probe queues only, so
nothing here reaches the real services' queues.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest

from libs.bus import topology
from libs.bus.topology import ORIGINAL_PUBLISHER
from libs.client import Client
from libs.runtime import POISON_ATTEMPTS
from tests.support import infra
from tests.support.bus import EventTap, dead_letters, publish_raw
from tests.support.probe_harness import (
    ROUTING_KEY,
    Probe,
    ProbeDb,
    encode,
    envelope,
    new_probe_name,
    queue_depth,
    wait_until,
)
from tests.support.system import Keys

pytestmark = pytest.mark.integration

ProbeFactory = Callable[..., Probe]


@pytest.fixture
async def probes(
    database_url: str, amqp_url: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[ProbeFactory]:
    started: list[Probe] = []
    own = infra.service_values({"amqp_url": amqp_url, "database_url": database_url}, "probe")
    env = {
        "DATABASE_URL": own["database_url"],
        "AMQP_URL": own["amqp_url"],
        "BUS_USER_PREFIX": own["bus_user_prefix"],
        "IDENTITY_JWKS": keys.identity_public,
        "LOG_LEVEL": "INFO",
    }

    def make(purpose: str, **options: Any) -> Probe:
        name = new_probe_name(purpose)
        probe = Probe(name, env, tmp_path / f"{name}.log", **options)
        started.append(probe)
        return probe

    yield make
    for probe in started:
        await probe.kill()
        # Shown by pytest when the test failed.
        print(f"===== {probe.name} =====\n{probe.log()[-6000:]}")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def publish_body(amqp_url: str, body: dict[str, Any]) -> str:
    """A probe event body as given (well-formed or not), published as its owner would."""
    await publish_raw(amqp_url, ROUTING_KEY, encode(body), body["event_id"])
    return str(body["event_id"])


async def drain_dead_letters(amqp_url: str, queue: str, count: int, timeout: float = 15.0) -> dict:
    """Take `count` messages out of `<queue>.dlq`, keyed by message id."""
    found: dict[str, Any] = {}

    async def enough() -> bool:
        for message in await dead_letters(amqp_url, queue):
            found[message.message_id or ""] = message
        return len(found) >= count

    await wait_until(enough, timeout=timeout, interval=0.2)
    return found


async def test_consumer_killed_after_commit_applies_redelivered_event_once(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    probe = probes("a")
    store = ProbeDb(db, probe.name)
    await probe.start(crash="after_commit")

    event_id = await publish_body(amqp_url, envelope("a-1"))

    # The handler's transaction committed, then the process died in place of the ack.
    assert await probe.wait_exit() == 9
    assert "probe_crash_after_commit" in probe.log()
    assert await store.effects(event_id) == 1
    assert await store.inbox(event_id) == 1
    # Not acknowledged: once the broker sees the connection gone, it holds it again.
    await wait_until(lambda: _depth_is(amqp_url, probe.effects_queue, (1, 0)))

    await probe.start(crash="")
    await wait_until(lambda: _count(store.deliveries(event_id), 2))
    await wait_until(lambda: _ready_is(amqp_url, probe.effects_queue, 0))
    # A graceful stop returns anything unacknowledged to the queue: still empty means acked.
    await probe.stop()
    assert await queue_depth(amqp_url, probe.effects_queue) == (0, 0)

    deliveries = await store.deliveries(event_id)
    assert len(deliveries) == 2, "delivered twice: once to each process"
    assert deliveries[0]["pid"] != deliveries[1]["pid"]
    assert deliveries[1]["delivery_count"] >= 1, "the broker counted it as a redelivery"
    assert await store.effects(event_id) == 1, "applied once"
    assert await store.inbox(event_id) == 1
    assert '"duplicate_ignored"' in probe.log()


async def test_relay_killed_between_confirm_and_mark_sent_republishes_and_consumer_applies_once(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str, client: Client
) -> None:
    # A short relay lease so the restarted relay takes the row back at once (default: 30 s).
    source = probes("b_src", consume=False, commands=True, extra_env={"PROBE_OUTBOX_LEASE": "1"})
    sink = probes("b_sink")
    source_db, sink_db = ProbeDb(db, source.name), ProbeDb(db, sink.name)
    await sink.start()
    await source.start(crash="before_mark_sent")

    async with EventTap(amqp_url, ROUTING_KEY) as tap:
        result = await client.rpc.call(source.commands_queue, "Emit", {"key": "b-1"}, timeout=10)
        [event_id] = result["event_ids"]

        # The broker confirmed the publish; the relay died before marking the row.
        assert await source.wait_exit() == 9
        assert "probe_crash_before_mark_sent" in source.log()
        row = await source_db.outbox_row(event_id)
        assert row is not None and row["sent_at"] is None and row["attempts"] == 1
        await wait_until(lambda: _count(sink_db.deliveries(event_id), 1))
        assert await sink_db.effects(event_id) == 1

        await source.start(crash="")
        await wait_until(lambda: _sent(source_db, event_id))
        await wait_until(lambda: _count(sink_db.deliveries(event_id), 2))
        await wait_until(lambda: len(_tapped(tap, event_id)) == 2)

    row = await source_db.outbox_row(event_id)
    assert row is not None and row["sent_at"] is not None and row["attempts"] == 2
    assert len(_tapped(tap, event_id)) == 2, "published twice on the bus, same event id"
    assert await sink_db.effects(event_id) == 1, "applied once"
    assert await sink_db.inbox(event_id) == 1
    assert '"duplicate_ignored"' in sink.log()
    await wait_until(lambda: _ready_is(amqp_url, sink.effects_queue, 0))


async def test_malformed_and_schema_failing_messages_are_dead_lettered_with_reason_and_consumer_keeps_serving(  # noqa: E501
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    probe = probes("c")
    store = ProbeDb(db, probe.name)
    await probe.start()

    not_json_id = "c-not-json"
    await publish_raw(amqp_url, ROUTING_KEY, b"{this is not json", not_json_id)
    missing = envelope("c-missing")
    del missing["payload"]["n"]
    missing_id = await publish_body(amqp_url, missing)
    unknown_id = await publish_body(amqp_url, envelope("c-unknown", type="NoSuchEvent"))
    no_type = envelope("c-no-type")
    del no_type["type"]
    no_type_id = await publish_body(amqp_url, no_type)
    valid_id = await publish_body(amqp_url, envelope("c-valid"))

    parked = await drain_dead_letters(amqp_url, probe.effects_queue, 4)
    assert set(parked) == {not_json_id, missing_id, unknown_id, no_type_id}
    reasons = {k: m.headers["x-dead-reason"] for k, m in parked.items()}
    assert reasons[not_json_id].startswith("schema: ") and "JSON" in reasons[not_json_id]
    assert reasons[missing_id] == "schema: n: Field required"
    assert reasons[unknown_id] == "unknown event: unknown event type NoSuchEvent v1"
    assert reasons[no_type_id] == "schema: type: Field required"
    for message in parked.values():
        assert message.headers["x-original-queue"] == probe.effects_queue
        assert message.headers["x-original-routing-key"] == ROUTING_KEY
    assert parked[not_json_id].body == b"{this is not json", "parked as received"

    # Served before, around and after the bad ones.
    await wait_until(lambda: _effects_is(store, valid_id, 1))
    later_id = await publish_body(amqp_url, envelope("c-later"))
    await wait_until(lambda: _effects_is(store, later_id, 1))
    for bad in (missing_id, unknown_id, no_type_id):
        assert await store.effects(bad) == 0
        assert await store.inbox(bad) == 0
    await wait_until(lambda: _ready_is(amqp_url, probe.effects_queue, 0))


async def test_poison_is_parked_fast_with_its_real_error_in_one_delivery_never_dropped(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    """A handler that fails for the message's own fault is tried a few times in hand, then the
    message is parked with the actual error: it spends one delivery, not the queue's limit."""
    probe = probes("d")
    store = ProbeDb(db, probe.name)
    await probe.start()

    poison_id = await publish_body(amqp_url, envelope("poison-d"))
    valid_id = await publish_body(amqp_url, envelope("d-valid"))
    await wait_until(lambda: _effects_is(store, valid_id, 1))

    parked = await drain_dead_letters(amqp_url, probe.effects_queue, 1, timeout=30)
    message = parked[poison_id]
    reason = (message.headers or {})["x-dead-reason"]
    assert f"failed {POISON_ATTEMPTS} times" in reason and "RuntimeError" in reason, reason
    deliveries = await store.deliveries(poison_id)
    assert [d["delivery_count"] for d in deliveries] == [0], "one delivery, never requeued"
    assert probe.log().count('"event_failed_will_retry"') == POISON_ATTEMPTS - 1
    assert await store.effects(poison_id) == 0
    assert await store.inbox(poison_id) == 0, "the failed attempts left nothing behind"
    assert await queue_depth(amqp_url, probe.effects_queue) == (0, 1)


async def test_event_emitted_while_consumer_is_down_is_delivered_when_it_starts(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str, client: Client
) -> None:
    source = probes("e_src", consume=False, commands=True)
    sink = probes("e_sink")
    source_db, sink_db = ProbeDb(db, source.name), ProbeDb(db, sink.name)
    await sink.start()  # declares and binds its durable queue
    await sink.kill()
    await source.start()

    result = await client.rpc.call(source.commands_queue, "Emit", {"key": "e", "count": 5})
    event_ids = result["event_ids"]
    assert len(event_ids) == 5
    # The relay published them all (the broker confirmed) with nobody consuming...
    for event_id in event_ids:
        await wait_until(lambda event_id=event_id: _sent(source_db, event_id))
    # ...into the durable queue, where they wait.
    assert await queue_depth(amqp_url, sink.effects_queue) == (5, 0)
    # The relay is still serving while the consumer is down.
    more = await client.rpc.call(source.commands_queue, "Emit", {"key": "e-more"})
    event_ids += more["event_ids"]
    await wait_until(lambda: _sent(source_db, event_ids[-1]))
    assert await queue_depth(amqp_url, sink.effects_queue) == (6, 0)

    await sink.start()
    for event_id in event_ids:
        await wait_until(lambda event_id=event_id: _effects_is(sink_db, event_id, 1))
    await wait_until(lambda: _ready_is(amqp_url, sink.effects_queue, 0))
    assert await queue_depth(amqp_url, sink.effects_queue) == (0, 1)
    assert source.process is not None and source.process.returncode is None


# --- helpers --------------------------------------------------------------------------------


async def _count(rows: Any, n: int) -> bool:
    return len(await rows) >= n


async def _effects_is(store: ProbeDb, event_id: str, n: int) -> bool:
    return await store.effects(event_id) == n


async def _sent(store: ProbeDb, event_id: str) -> bool:
    row = await store.outbox_row(event_id)
    return row is not None and row["sent_at"] is not None


async def _depth_is(amqp_url: str, queue: str, depth: tuple[int, int]) -> bool:
    return await queue_depth(amqp_url, queue) == depth


async def _ready_is(amqp_url: str, queue: str, n: int) -> bool:
    ready, _ = await queue_depth(amqp_url, queue)
    return ready == n


def _tapped(tap: EventTap, event_id: str) -> list[dict[str, Any]]:
    return [e for e in tap.of_type("EffectRequested") if e["event_id"] == event_id]


async def test_bodies_that_say_json_but_are_not_never_halt_a_consumer(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    """More undecodable `application/json` bodies than the prefetch: all parked, none stuck."""
    probe = probes("f")
    store = ProbeDb(db, probe.name)
    await probe.start()
    bad = [f"f-bad-{i}" for i in range(70)]
    for message_id in bad:
        await publish_raw(
            amqp_url, ROUTING_KEY, b"\xff{not json", message_id, content_type="application/json"
        )
    valid_id = await publish_body(amqp_url, envelope("f-valid"))
    await wait_until(lambda: _effects_is(store, valid_id, 1), timeout=30)
    parked = await drain_dead_letters(amqp_url, probe.effects_queue, len(bad), timeout=30)
    assert set(parked) == set(bad)
    assert all(m.headers["x-dead-reason"].startswith("schema: ") for m in parked.values())
    await wait_until(lambda: _ready_is(amqp_url, probe.effects_queue, 0))


async def test_an_event_not_published_by_its_owner_is_parked_as_forged(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    """A service may reach any queue through the default exchange; the consumer still believes
    an event only from its owner's broker user, which RabbitMQ validates."""
    probe = probes("g")
    store = ProbeDb(db, probe.name)
    await probe.start()
    forged = envelope("g-forged")
    connection = await aio_pika.connect(infra.party_url(amqp_url, "dossier"))
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                encode(forged),
                message_id=forged["event_id"],
                user_id=f"{infra.bus_prefix(amqp_url)}dossier",
            ),
            routing_key=probe.effects_queue,
        )
        # Claiming to be the owner is refused by the broker itself.
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    encode(envelope("g-claims")), user_id=f"{infra.bus_prefix(amqp_url)}probe"
                ),
                routing_key=probe.effects_queue,
            )
    finally:
        await connection.close()
    parked = await drain_dead_letters(amqp_url, probe.effects_queue, 1)
    reason = parked[forged["event_id"]].headers["x-dead-reason"]
    assert reason.startswith("forged: EffectRequested is published by"), reason
    assert await store.effects(forged["event_id"]) == 0


async def test_ops_replays_dead_letters_without_laundering_a_forgery(
    probes: ProbeFactory, db: asyncpg.Connection, amqp_url: str
) -> None:
    """Replay (as ops) gives the consumers the first publisher: a genuine event parked for a
    cause since fixed is applied; a forged one is parked again as forged."""
    probe = probes("h")
    store = ProbeDb(db, probe.name)
    await probe.start()
    genuine = envelope("h-genuine")
    forged = envelope("h-forged")
    connection = await aio_pika.connect(amqp_url)  # the administrator, standing for the runtime
    try:
        channel = await connection.channel(publisher_confirms=True)
        dead = await channel.get_exchange(topology.DEAD_EXCHANGE, ensure=False)
        for body, publisher in (
            (genuine, f"{infra.bus_prefix(amqp_url)}probe"),
            (forged, f"{infra.bus_prefix(amqp_url)}dossier"),
        ):
            await dead.publish(
                aio_pika.Message(
                    encode(body),
                    message_id=body["event_id"],
                    headers={ORIGINAL_PUBLISHER: publisher, "x-dead-reason": "test"},
                ),
                routing_key=probe.effects_queue,
            )
    finally:
        await connection.close()
    # As the operator's guide says (deploy/README.md), as ops, from the command line.
    for action, said in (("list", "list: 2 message(s)"), ("replay", "replay: 2 message(s)")):
        done = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "libs.bus.deadletters",
            action,
            probe.effects_queue,
            env={**os.environ, "AMQP_URL": infra.party_url(amqp_url, "ops")},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await done.communicate()
        assert done.returncode == 0 and err.decode().strip() == said, err
    await wait_until(lambda: _effects_is(store, genuine["event_id"], 1))
    parked = await drain_dead_letters(amqp_url, probe.effects_queue, 1)
    assert parked[forged["event_id"]].headers["x-dead-reason"].startswith("forged: ")
    assert await store.effects(forged["event_id"]) == 0
