"""Every event type fuzzed into the real consumers, and every event forged by a non-owner.

Hostile bodies are published by the event's owner (a publisher the consumers believe) on the
event's routing key, with and without `content_type="application/json"`; an event no service
consumes is put by its owner straight into a consumer queue through the default exchange. A
well-formed event published by a service that does not own it goes through the default exchange
too (services may write there; the broker validates `user_id`). Each must end in the queue's
`.dlq` with an `x-dead-reason`, the consumer's tables untouched, and the consumer still applying
a valid event after the burst.

Examples are drawn with hypothesis, then published (see `tests/hostile/harness.py`).
"""

from __future__ import annotations

import json
import typing
import uuid
from datetime import UTC, date, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest
from hypothesis import strategies as st
from pydantic import ValidationError

from libs.contracts.envelope import Envelope, Event, envelope_for, open_envelope
from libs.runtime import Runtime
from tests.hostile import catalog
from tests.hostile.catalog import EVENT_QUEUES, HOLDER_INS, consumers_of, owner_of
from tests.hostile.harness import changed, draw, examples, fingerprint, settled, wait_until
from tests.hostile.strategies import controls, huge_text, wrong_types
from tests.support import infra
from tests.support.bus import dead_letters, publish_as, publish_raw

pytestmark = pytest.mark.hostile

EXAMPLES = examples(12)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONTENT_TYPES = (None, "application/json")


def sample(event: type[Event], ins: str = HOLDER_INS) -> Event:
    """A valid instance of `event`, about `ins`."""
    values: dict[str, Any] = {}
    for name, field in event.model_fields.items():
        annotation = str(field.annotation)
        if name == "ins":
            values[name] = ins
        elif "UUID" in annotation:
            values[name] = uuid.uuid4()
        elif field.annotation is date:
            values[name] = NOW.date()
        elif "datetime" in annotation:
            values[name] = NOW
        elif "bool" in annotation:
            values[name] = False
        elif field.annotation is int or annotation == "int | None":
            values[name] = 1
        elif name in ("actor_kind", "author_kind", "sender_kind"):
            values[name] = "professional"
        elif name == "outcome":
            values[name] = "granted"
        elif name == "channels":
            values[name] = ["email"]
        elif name == "time_zone":
            values[name] = "America/Guadeloupe"
        elif "list" in annotation:
            values[name] = []
        elif "dict" in annotation:
            values[name] = {}
        elif typing.get_origin(field.annotation) is typing.Literal:
            values[name] = typing.get_args(field.annotation)[0]
        else:
            values[name] = "x"
    return event.model_validate(values)


def envelope_json(event: Event, **override: Any) -> dict[str, Any]:
    body = json.loads(
        envelope_for(
            event, holder_key=HOLDER_INS, occurred_at=NOW, correlation_id=uuid.uuid4().hex
        ).model_dump_json()
    )
    body.update(override)
    return body


def hostile_bodies(event: type[Event]) -> st.SearchStrategy[bytes]:
    """Bodies that must never be applied: broken bytes, broken envelopes, broken payloads,
    unknown versions and types, a holder key that is not the payload's."""
    good = envelope_json(sample(event))
    envelope_fields = sorted(good)
    payload_fields = sorted(good["payload"])

    def encode(body: Any) -> bytes:
        return json.dumps(body).encode()

    def without(field: str) -> dict[str, Any]:
        return {k: v for k, v in good.items() if k != field}

    def payload_with(**fields: Any) -> dict[str, Any]:
        return {**good, "payload": {**good["payload"], **fields}}

    return st.one_of(
        st.binary(max_size=200),
        st.just(encode(good)[:-7]),
        st.just(b"\xff" + encode(good)),
        st.sampled_from(envelope_fields).map(lambda f: encode(without(f))),
        st.tuples(st.sampled_from(envelope_fields), wrong_types).map(
            lambda t: encode({**good, t[0]: t[1]})
        ),
        st.sampled_from(payload_fields).map(
            lambda f: encode(
                {**good, "payload": {k: v for k, v in good["payload"].items() if k != f}}
            )
        ),
        st.tuples(st.sampled_from(payload_fields), wrong_types).map(
            lambda t: encode(payload_with(**{t[0]: t[1]}))
        ),
        st.text(min_size=1, max_size=10).map(lambda k: encode(payload_with(**{f"x{k}": 1}))),
        st.integers()
        .filter(lambda v: v != event.VERSION)
        .map(lambda v: encode({**good, "version": v})),
        st.text(max_size=20)
        .filter(lambda t: t != event.TYPE)
        .map(lambda t: encode({**good, "type": t})),
        st.one_of(controls, huge_text(), st.just("")).map(
            lambda k: encode({**good, "holder_key": k})
        ),
    )


def with_fresh_id(body: bytes) -> tuple[bytes, str]:
    """The body with an event id of its own (when it has one to replace) and the message id to
    publish it with: the event id, so that only what is hostile in it can get it refused."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body, uuid.uuid4().hex
    if isinstance(doc, dict) and isinstance(doc.get("event_id"), str):
        doc["event_id"] = str(uuid.uuid4())
        return json.dumps(doc).encode(), doc["event_id"]
    return body, uuid.uuid4().hex


def would_apply(body: bytes, message_id: str, event: type[Event]) -> bool:
    """Whether the owner's consumers would believe and apply it (hypothesis sometimes draws a
    mutation that is still valid: an integer is a timestamp, `[]` a list of strings...)."""
    try:
        envelope = Envelope.model_validate_json(body)
        opened = open_envelope(envelope)
    except (ValidationError, LookupError):
        return False
    return (
        type(opened).OWNER == event.OWNER
        and getattr(opened, "ins", envelope.holder_key) == envelope.holder_key
        and str(envelope.event_id) == message_id
    )


async def _publish_hostile(
    admin_amqp_url: str, event: type[Event], body: bytes, message_id: str, content_type: str | None
) -> list[str]:
    """Publish as the owner; returns the queues it must end up dead-lettered in."""
    queues = consumers_of(event)
    if queues:
        await publish_raw(
            admin_amqp_url,
            event.routing_key(),
            body,
            message_id,
            as_party=event.OWNER,
            content_type=content_type,
        )
        return queues
    # Nobody consumes it: its owner puts it straight into some consumer's queue.
    queue = "notifier.access-alerts"
    url = infra.party_url(admin_amqp_url, event.OWNER)
    await publish_as(
        url,
        "",
        queue,
        body,
        message_id=message_id,
        content_type=content_type,
        user_id=f"{infra.bus_prefix(admin_amqp_url)}{event.OWNER}",
    )
    return [queue]


async def _drain(admin_amqp_url: str, queues: set[str], wanted: set[str]) -> dict[str, dict]:
    """Dead letters by queue then message id, until every wanted (queue, id) is there."""
    found: dict[str, dict[str, Any]] = {q: {} for q in queues}

    async def enough() -> bool:
        for queue in queues:
            for message in await dead_letters(admin_amqp_url, queue):
                found[queue][message.message_id or ""] = message
        return all(m in found[q] for q in queues for m in wanted_by.get(q, ()))

    wanted_by: dict[str, set[str]] = {}
    for key in wanted:
        queue, message_id = key.split("|", 1)
        wanted_by.setdefault(queue, set()).add(message_id)
    await wait_until(enough, timeout=30.0, interval=0.3)
    return found


async def _applies(admin_db: asyncpg.Connection, queue: str, event_id: str) -> bool:
    schema = owner_of(queue)
    return bool(
        await admin_db.fetchval(
            f'SELECT count(*) FROM "{schema}".inbox WHERE consumer = $1 AND message_id = $2',
            queue,
            event_id,
        )
    )


async def _still_serving(admin_amqp_url: str, admin_db: asyncpg.Connection, queues: set[str]):
    """A valid event of each queue's first handled type is applied after the burst."""
    for queue in sorted(queues):
        event = sample(EVENT_QUEUES[queue][0], ins=f"1850575{uuid.uuid4().int % 10**8:08d}")
        # An event naming no holder (a purge's answer) is keyed by anything.
        body = envelope_json(event, holder_key=getattr(event, "ins", HOLDER_INS))
        await publish_raw(
            admin_amqp_url,
            event.routing_key(),
            json.dumps(body).encode(),
            body["event_id"],
            content_type="application/json",
        )
        event_id = body["event_id"]
        assert await wait_until(lambda q=queue, e=event_id: _applies(admin_db, q, e)), (
            f"{queue} did not apply a valid event after the burst"
        )


@pytest.mark.parametrize("event", catalog.system_events(), ids=lambda e: f"{e.TYPE}.v{e.VERSION}")
async def test_a_broken_event_from_its_owner_is_dead_lettered_with_a_reason_and_changes_nothing(
    event: type[Event],
    system: dict[str, Runtime],
    admin_amqp_url: str,
    admin_db: asyncpg.Connection,
) -> None:
    cases = [
        (*with_fresh_id(body), content_type)
        for body in draw(hostile_bodies(event), EXAMPLES)
        for content_type in CONTENT_TYPES
    ]
    cases = [c for c in cases if not would_apply(c[0], c[1], event)]
    schemas = {owner_of(q) for q in consumers_of(event) or ["notifier.access-alerts"]}
    before = await settled(admin_db, schemas)

    wanted: set[str] = set()
    queues: set[str] = set()
    for body, message_id, content_type in cases:
        for queue in await _publish_hostile(admin_amqp_url, event, body, message_id, content_type):
            wanted.add(f"{queue}|{message_id}")
            queues.add(queue)
    found = await _drain(admin_amqp_url, queues, wanted)

    missing = [w for w in wanted if w.split("|", 1)[1] not in found[w.split("|", 1)[0]]]
    assert not missing, f"{len(missing)} of {len(wanted)} never dead-lettered"
    for queue in queues:
        for message in found[queue].values():
            assert (message.headers or {}).get("x-dead-reason"), message.body[:200]
    assert not changed(before, await fingerprint(admin_db, schemas))
    await _still_serving(admin_amqp_url, admin_db, queues)


@pytest.mark.parametrize("event", catalog.system_events(), ids=lambda e: f"{e.TYPE}.v{e.VERSION}")
async def test_a_well_formed_event_from_any_other_service_is_dead_lettered_as_forged(
    event: type[Event],
    system: dict[str, Runtime],
    admin_amqp_url: str,
    admin_db: asyncpg.Connection,
) -> None:
    queues = consumers_of(event) or ["notifier.access-alerts"]
    forgers = [s for s in catalog.SERVICES if s != event.OWNER]
    schemas = {owner_of(q) for q in queues}
    before = await settled(admin_db, schemas)

    wanted: set[str] = set()
    for forger in forgers:
        body = envelope_json(sample(event))
        for queue in queues:
            connection = await aio_pika.connect(infra.party_url(admin_amqp_url, forger))
            try:
                channel = await connection.channel(publisher_confirms=True)
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=body["event_id"],
                        content_type="application/json",
                        user_id=f"{infra.bus_prefix(admin_amqp_url)}{forger}",
                    ),
                    routing_key=queue,
                )
            finally:
                await connection.close()
            wanted.add(f"{queue}|{body['event_id']}")
    found = await _drain(admin_amqp_url, set(queues), wanted)

    for key in wanted:
        queue, message_id = key.split("|", 1)
        assert message_id in found[queue], f"{key} never dead-lettered"
        reason = found[queue][message_id].headers["x-dead-reason"]
        if event in EVENT_QUEUES.get(queue, ()):
            assert reason.startswith(f"forged: {event.TYPE} is published by"), reason
        else:
            assert reason.startswith("unknown event"), reason
    assert not changed(before, await fingerprint(admin_db, schemas))
    await _still_serving(admin_amqp_url, admin_db, set(queues))
