"""Watch events go by: a private, self-deleting queue bound to some routing keys.

For operators (`python -m libs.bus.tap 'access.#'` prints events live), the demo and the tests.
It takes copies: the services' own queues are untouched.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from libs.bus import topology

# ops may create queues by this name only.
TAP_PREFIX = "ops.tap."


class EventTap:
    """An exclusive queue bound to some event keys, recording every envelope it receives."""

    def __init__(
        self,
        amqp_url: str,
        *keys: str,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._url = amqp_url
        self._keys = keys or ("#",)
        self._on_event = on_event
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None

    async def __aenter__(self) -> EventTap:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        # Declared by the administrator; ops may not (and need not) declare it.
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)
        queue = await channel.declare_queue(
            f"{TAP_PREFIX}{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        for key in self._keys:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = json.loads(message.body)
        except ValueError:
            event = {"type": None, "payload": {}, "undecodable": message.body[:200].hex()}
        self.events.append(event)
        self._arrived.set()
        if self._on_event is not None:
            self._on_event(event)

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
            while len(found := self.of_type(type_, **payload)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return found


async def _watch(url: str, keys: list[str]) -> None:
    def show(event: dict[str, Any]) -> None:
        print(json.dumps(event, ensure_ascii=False), flush=True)

    async with EventTap(url, *keys, on_event=show):
        await asyncio.Event().wait()


if __name__ == "__main__":
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        asyncio.run(_watch(amqp, sys.argv[1:] or ["#"]))
    except KeyboardInterrupt:
        pass
