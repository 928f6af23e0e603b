"""Inspect and replay dead letters: `python -m libs.bus.deadletters list|replay <queue>`.

A message in `<queue>.dlq` carries why it is there (`x-dead-reason` when a consumer parked it,
`x-death` when the broker did after the delivery limit). `replay` moves the messages back to
`<queue>` once the cause is fixed, each confirmed before it is taken off the dead-letter queue,
so a crash during a replay duplicates at worst (consumers de-duplicate) and never loses.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aio_pika

from libs.bus import topology
from libs.bus.publisher import broker_user
from libs.bus.topology import ORIGINAL_PUBLISHER


async def run(url: str, action: str, queue: str, limit: int = 10_000) -> int:
    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dlq = await channel.get_queue(topology.dlq_name(queue), ensure=True)
        count = 0
        while count < limit and (message := await dlq.get(fail=False, no_ack=False)):
            headers = dict(message.headers or {})
            if action == "list":
                # Held unacknowledged until the channel closes, which puts them all back.
                print(
                    json.dumps(
                        {
                            "message_id": message.message_id,
                            "reason": headers.get("x-dead-reason")
                            or str(headers.get("x-death", ""))[:300],
                            "body": message.body[:300].decode(errors="replace"),
                        },
                        ensure_ascii=False,
                    )
                )
                count += 1
                continue
            # Who first published it (the runtime recorded it, or the broker kept `user_id`):
            # consumers trust ops to say so, and still refuse what its owner did not publish.
            headers.setdefault(ORIGINAL_PUBLISHER, message.user_id or "")
            for header in (
                "x-dead-reason",
                "x-death",
                "x-original-queue",
                "x-original-routing-key",
            ):
                headers.pop(header, None)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    user_id=broker_user(url),
                ),
                routing_key=queue,
                mandatory=True,
            )
            await message.ack()
            count += 1
        return count
    finally:
        await connection.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("list", "replay"):
        sys.exit("usage: python -m libs.bus.deadletters list|replay <queue>")
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    n = asyncio.run(run(amqp, sys.argv[1], sys.argv[2]))
    print(f"{sys.argv[1]}: {n} message(s)", file=sys.stderr)
