"""Test-side views of the bus: a tap that records events, and dead-letter queue readers."""

from __future__ import annotations

import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from libs.bus import topology
from libs.bus.publisher import broker_user
from libs.bus.tap import EventTap
from tests.support import infra

__all__ = [
    "EventTap",
    "consume_as",
    "dead_letters",
    "publish_as",
    "publish_event",
    "publish_raw",
]


async def dead_letters(amqp_url: str, queue: str) -> list[AbstractIncomingMessage]:
    """Everything in `<queue>.dlq`, taken out (acknowledged) for inspection."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        dlq = await channel.get_queue(topology.dlq_name(queue), ensure=True)
        found = []
        while (message := await dlq.get(fail=False)) is not None:
            await message.ack()
            found.append(message)
        return found
    finally:
        await connection.close()


async def publish_raw(
    amqp_url: str,
    routing_key: str,
    body: bytes,
    message_id: str,
    *,
    as_party: str | None = None,
    content_type: str | None = None,
) -> None:
    """Publish bytes on dmp.events as `as_party` (default: the routing key's owner, as the owner
    would), with the validated `user_id` set as the runtime sets it."""
    party = as_party or routing_key.split(".", 1)[0]
    url = infra.party_url(amqp_url, party)
    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                delivery_mode=2,
                content_type=content_type,
                user_id=broker_user(url),
            ),
            routing_key=routing_key,
        )
    finally:
        await connection.close()


async def publish_event(amqp_url: str, event: Any, *, holder_key: str, occurred_at: Any) -> str:
    """Publish a real, well-formed event envelope as its owner would; returns its event id."""
    from libs.contracts.envelope import envelope_for

    envelope = envelope_for(
        event, holder_key=holder_key, occurred_at=occurred_at, correlation_id=uuid.uuid4().hex
    )
    await publish_raw(
        amqp_url,
        event.routing_key(),
        envelope.model_dump_json().encode(),
        str(envelope.event_id),
    )
    return str(envelope.event_id)


async def publish_as(
    url: str, exchange: str, routing_key: str, body: bytes = b"{}", **properties: Any
) -> None:
    """Publish one confirmed message with `url`'s user (its rights, not the administrator's) to
    `exchange` ("" is the default exchange); the broker's refusal raises (ChannelAccessRefused)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        properties.setdefault("message_id", uuid.uuid4().hex)
        await target.publish(aio_pika.Message(body, **properties), routing_key)
    finally:
        await connection.close()


async def _ignore(_message: AbstractIncomingMessage) -> None:
    pass


async def consume_as(url: str, queue: str) -> None:
    """Start consuming `queue` with `url`'s user (declared passively: no right needed to look);
    the broker's refusal raises (ChannelAccessRefused)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        found = await channel.get_queue(queue, ensure=False)
        await found.consume(_ignore)
    finally:
        await connection.close()
