"""A service lets go of a message once it has handled it (its memory under large requests), and
of a request's body once parsed when a caller waits for the reply."""

from __future__ import annotations

import asyncio
import gc

import pytest
from faststream.message import StreamMessage

from libs.bus import topology
from libs.bus.publisher import broker_user
from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts.commands import IDENTITY
from libs.runtime import Runtime
from tests.support import infra
from tests.support.bus import dead_letters, publish_as
from tests.support.probe_harness import wait_until

pytestmark = pytest.mark.integration

BIG = 1_000_000


def _bodies_kept() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, StreamMessage) and isinstance(o.body, bytes) and len(o.body) >= BIG
    )


async def test_a_handled_request_and_its_body_are_freed_at_once_not_by_a_later_collection(
    client: Client, identity: Runtime
) -> None:
    # With the collector off, only what nothing refers to any more is freed: a message kept by
    # a reference cycle or by a copied context would still be found.
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            with pytest.raises(RpcError):
                await client.rpc.call(IDENTITY, "NoSuchCommand", {"padding": "x" * BIG})
        await asyncio.sleep(0.2)  # the acks, after the replies
        kept = _bodies_kept()
    finally:
        gc.enable()
    assert kept == 0


async def test_a_request_nobody_waits_for_keeps_its_body_to_be_dead_lettered_whole(
    amqp_url: str, identity: Runtime
) -> None:
    # Without a reply-to, a refusal has nobody to be told to: the request is parked with its
    # reason, its body as it came (only a request with a waiting caller gives its body up).
    body = b'{"command": "NoSuchCommand", "version": 1, "payload": {"padding": "%s"}}' % (
        b"x" * BIG
    )
    url = infra.client_url(amqp_url)
    await publish_as(
        url,
        topology.COMMANDS_EXCHANGE,
        IDENTITY,
        body,
        content_type="application/json",
        user_id=broker_user(url),
    )
    parked: list[bytes] = []

    async def dead_lettered() -> bool:
        parked.extend(m.body for m in await dead_letters(amqp_url, IDENTITY))
        return bool(parked)

    await wait_until(dead_lettered, timeout=15)
    assert parked == [body]
