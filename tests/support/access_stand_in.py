"""The access service played by a stand-in, for tests of the services that ask it.

It answers `access.decide` on the real broker, as the `access` broker user (so the services'
check of who answers holds), with what the test says: one policy for every request, or one per
holder. It records every request it took, and drops those whose caller has given up, as the real
server does. A module that uses it runs no real access service in the same vhost.

    access = AccessStandIn(amqp_url)            # grants everything (ACC_06) until told otherwise
    access.policy = deny(rule="ACC_08")
    access.by_holder[ins] = silent()            # no answer at all: the caller's timeout decides
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from libs.bus import topology
from libs.bus.rpc import DEADLINE_HEADER
from libs.contracts.commands import ACCESS_DECIDE, Decide, Decision
from libs.contracts.rpc import Reply, Request
from tests.support import infra

# What the stand-in answers a request with; None: it does not answer.
Policy = Callable[[Decide], Decision | None]


def grant(
    types: list[str] | None = None, include_masked: bool = False, rule: str = "ACC_06"
) -> Policy:
    def decide(_: Decide) -> Decision:
        return Decision(
            decision_id=uuid.uuid4(),
            granted=True,
            rule=rule,
            reason="member of the care team",
            document_types=["*"] if types is None else types,
            include_masked=include_masked,
        )

    return decide


def deny(rule: str = "ACC_08", reason: str = "the holder blocked this professional") -> Policy:
    def decide(_: Decide) -> Decision:
        return Decision(decision_id=uuid.uuid4(), granted=False, rule=rule, reason=reason)

    return decide


def silent() -> Policy:
    def decide(_: Decide) -> None:
        return None

    return decide


class AccessStandIn:
    def __init__(self, amqp_url: str, policy: Policy | None = None) -> None:
        self.amqp_url = amqp_url
        self.policy: Policy = policy or grant()
        self.by_holder: dict[str, Policy] = {}
        self.requests: list[Request] = []
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(infra.party_url(self.amqp_url, "access"))
        self._channel = await self._connection.channel()
        await topology.declare_queue(self._channel, ACCESS_DECIDE, commands=True)
        queue = await self._channel.get_queue(ACCESS_DECIDE, ensure=False)
        await queue.consume(self._on_request)

    async def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def delete_queue(self) -> None:
        """As if access had never been deployed: a request has nowhere to go."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        try:
            channel = await connection.channel()
            await channel.queue_delete(ACCESS_DECIDE)
        finally:
            await connection.close()

    def for_holder(self, ins: str) -> list[Request]:
        return [r for r in self.requests if r.payload.get("ins") == ins]

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        assert self._channel is not None
        async with message.process():
            deadline = (message.headers or {}).get(DEADLINE_HEADER)
            if isinstance(deadline, int) and time.time() * 1000 > deadline:
                return  # the caller gave up long ago
            request = Request.model_validate_json(message.body)
            self.requests.append(request)
            asked = Decide.model_validate(request.payload)
            decision = self.by_holder.get(asked.ins, self.policy)(asked)
            if decision is None or not message.reply_to:
                return
            reply = Reply(ok=True, result=decision.model_dump(mode="json"))
            await self._channel.default_exchange.publish(
                aio_pika.Message(
                    reply.model_dump_json().encode(),
                    correlation_id=message.correlation_id,
                    content_type="application/json",
                ),
                routing_key=message.reply_to,
                mandatory=False,
            )
