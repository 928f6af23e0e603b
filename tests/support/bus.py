"""Test-side views of the bus: a tap that records events, and dead-letter queue readers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from libs.bus import topology


class EventTap:
    """An exclusive queue bound to some event keys, recording every envelope it receives."""

    def __init__(self, amqp_url: str, *keys: str) -> None:
        self._url = amqp_url
        self._keys = keys or ("#",)
        self.events: list[dict[str, Any]] = []
        self._connection: AbstractRobustConnection | None = None

    async def __aenter__(self) -> EventTap:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        await topology.declare_exchanges(channel)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in self._keys:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.events.append(json.loads(message.body))

    def of_type(self, type_: str, **payload: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == type_ and all(e["payload"].get(k) == v for k, v in payload.items())
        ]

    async def wait_for(
        self, type_: str, count: int = 1, timeout: float = 15.0, **payload: Any
    ) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.of_type(type_, **payload)) < count:
                await asyncio.sleep(0.05)
        return self.of_type(type_, **payload)


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


async def publish_raw(amqp_url: str, routing_key: str, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(body, message_id=message_id, delivery_mode=2), routing_key=routing_key
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
