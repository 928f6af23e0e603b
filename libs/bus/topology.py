"""The RabbitMQ topology: what exists, and the arguments that keep messages from being lost.

- `dmp.events`: topic exchange for every event. Its alternate exchange `dmp.unrouted` parks any
  event no queue is bound for in `ops.unrouted`, so an event with no subscriber yet is kept for
  operators rather than dropped.
- Each consumer has its own durable quorum queue `<consumer>.<purpose>`, dead-lettering
  at-least-once to `dmp.dead` with its own name as routing key, into `<queue>.dlq`.
- Commands are quorum queues, same arguments, bound by their own name to `dmp.internal` (what
  services call each other through) and, for the public `<service>.commands` queues, to
  `dmp.commands` (the only exchange clients may publish to: `access.decide` and other internal
  queues are out of their reach). A queue serving a command that may carry a document has a
  large lane, `<queue>.large`, bound alike (libs/contracts/rpc.py, `SMALL_REQUEST_BYTES`).
- Exchanges and the ops queue are declared by the administrator (`libs.provision`); services
  only check that they exist, and declare their own queues.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from libs.contracts.rpc import LARGE_LANE_SUFFIX

EVENTS_EXCHANGE = "dmp.events"
UNROUTED_EXCHANGE = "dmp.unrouted"
UNROUTED_QUEUE = "ops.unrouted"
DEAD_EXCHANGE = "dmp.dead"
COMMANDS_EXCHANGE = "dmp.commands"
# The publisher a message had when a trusted mover (the consuming service giving it back, the
# runtime parking it, ops replaying it) published it again under its own user.
ORIGINAL_PUBLISHER = "x-original-publisher"
INTERNAL_EXCHANGE = "dmp.internal"
# What ops.unrouted keeps at most (set by policy, so it can change without redeclaring).
UNROUTED_POLICY = {"max-length": 100_000, "overflow": "drop-head", "message-ttl": 30 * 86_400_000}
# Past this many deliveries the broker dead-letters the message (3.10 has no default limit).
DELIVERY_LIMIT = 10


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def queue_arguments(queue: str) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-routing-key": queue,
        # at-least-once dead-lettering needs reject-publish overflow, else it falls back to
        # at-most-once without a word.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": DELIVERY_LIMIT,
    }


async def declare_exchanges(channel: AbstractChannel) -> None:
    unrouted = await channel.declare_exchange(
        UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    parked = await channel.declare_queue(
        UNROUTED_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await parked.bind(unrouted)
    await channel.declare_exchange(
        EVENTS_EXCHANGE,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )
    await channel.declare_exchange(DEAD_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    for name in (COMMANDS_EXCHANGE, INTERNAL_EXCHANGE):
        await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)


def is_public(queue: str) -> bool:
    """Clients may send to `<service>.commands` (and its large lane); every other command queue
    is internal."""
    return queue.removesuffix(LARGE_LANE_SUFFIX).endswith(".commands")


async def declare_queue(
    channel: AbstractChannel,
    name: str,
    routing_keys: list[str] | None = None,
    *,
    commands: bool = False,
) -> None:
    """Declare a consumer queue and its dead-letter queue; bind it to its events or commands."""
    dead = await channel.get_exchange(DEAD_EXCHANGE)
    dlq = await channel.declare_queue(
        dlq_name(name), durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(dead, routing_key=name)
    queue = await channel.declare_queue(name, durable=True, arguments=queue_arguments(name))
    if routing_keys:
        events = await channel.get_exchange(EVENTS_EXCHANGE)
        for key in routing_keys:
            await queue.bind(events, routing_key=key)
    if commands:
        await queue.bind(await channel.get_exchange(INTERNAL_EXCHANGE), routing_key=name)
        if is_public(name):
            await queue.bind(await channel.get_exchange(COMMANDS_EXCHANGE), routing_key=name)
