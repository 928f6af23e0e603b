"""A service lets go of a message once it has handled it (its memory under large requests)."""

from __future__ import annotations

import asyncio
import gc

import pytest
from faststream.message import StreamMessage

from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts.commands import IDENTITY
from libs.runtime import Runtime

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
