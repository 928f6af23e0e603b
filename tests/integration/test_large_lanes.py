"""Documents come by a lane of their own, a couple at a time, on the real broker: RabbitMQ's
prefetch counts messages, not bytes, so what a burst of documents can take of a service's memory
is bounded by its large lane's prefetch, while small requests keep their many in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from libs.bus import topology
from libs.bus.publisher import broker_user
from libs.bus.rpc import RpcClient, RpcError
from libs.contracts.envelope import Contract
from libs.contracts.rpc import SMALL_REQUEST_BYTES, Command, ErrorCode, large_lane
from libs.runtime import CommandContext, Runtime
from tests.support import infra
from tests.support.bus import dead_letters, publish_as
from tests.support.probe_harness import probe_serving, wait_until

pytestmark = pytest.mark.integration

DOCUMENTS = "probe.documents"  # serves a command that may carry a document: it has a lane
SMALL_ONLY = "probe.small"  # serves none
DOCUMENT = "x" * (SMALL_REQUEST_BYTES + 512 * 1024)
LARGEST = 4 * SMALL_REQUEST_BYTES  # this service's `max_message_bytes`: its large lane's limit


class Held(Contract):
    size: int


class Hold(Command[Held]):
    """Waits for the test to let it go: what is in the service's hands stays there."""

    QUEUE = DOCUMENTS
    LARGE = True
    AUTHENTICATED = False

    content: str


class Note(Command[Held]):
    QUEUE = SMALL_ONLY
    AUTHENTICATED = False

    content: str


class Gate:
    def __init__(self) -> None:
        self.entered = 0
        self.open = asyncio.Event()


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
async def rpc(settings_values: dict[str, Any], gate: Gate) -> AsyncIterator[RpcClient]:
    async def hold(_ctx: CommandContext, c: Hold) -> Held:
        gate.entered += 1
        await gate.open.wait()
        return Held(size=len(c.content))

    async def note(_ctx: CommandContext, c: Note) -> Held:
        return Held(size=len(c.content))

    def register(runtime: Runtime) -> None:
        runtime.handle(Hold, hold)
        runtime.handle(Note, note)

    try:
        async with probe_serving(
            settings_values, register, name="lanes", timeout=30, max_message_bytes=LARGEST
        ) as client:
            yield client
    finally:
        gate.open.set()


async def _ready(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)
    finally:
        await connection.close()


async def test_documents_go_by_their_queues_large_lane_a_couple_at_a_time(
    rpc: RpcClient, gate: Gate, amqp_url: str
) -> None:
    gate.entered, gate.open = 0, asyncio.Event()
    sent = [asyncio.create_task(rpc.send(Hold(content=DOCUMENT))) for _ in range(5)]
    await wait_until(lambda: gate.entered == 2)
    await wait_until(lambda: _ready(amqp_url, large_lane(DOCUMENTS)), timeout=5)
    await asyncio.sleep(0.5)
    # Two in the service's hands (`large_prefetch`), the other three still in the broker.
    assert gate.entered == 2
    assert await _ready(amqp_url, large_lane(DOCUMENTS)) == 3
    gate.open.set()
    assert [held.size for held in await asyncio.gather(*sent)] == [len(DOCUMENT)] * 5


async def test_small_requests_pass_while_the_large_lane_is_full(rpc: RpcClient, gate: Gate) -> None:
    gate.entered, gate.open = 0, asyncio.Event()
    sent = [asyncio.create_task(rpc.send(Hold(content=DOCUMENT))) for _ in range(3)]
    await wait_until(lambda: gate.entered == 2)
    # The small ones take the queue's own lane: served though two documents are held.
    small = [asyncio.create_task(rpc.send(Hold(content="x"))) for _ in range(10)]
    await wait_until(lambda: gate.entered == 12)
    gate.open.set()
    await asyncio.gather(*sent, *small)


async def test_a_document_sent_to_the_small_lane_is_refused_pointing_to_the_large_one(
    rpc: RpcClient, amqp_url: str
) -> None:
    # Published as a client that ignores the contract would; with no reply-to, the refusal is
    # parked with its reason.
    url = infra.party_url(amqp_url, "bench")
    body = b'{"command": "Hold", "correlation_id": "c", "payload": {"content": "%s"}}' % (
        DOCUMENT.encode()
    )
    await publish_as(url, topology.INTERNAL_EXCHANGE, DOCUMENTS, body, user_id=broker_user(url))
    reasons: list[str] = []

    async def parked() -> bool:
        for message in await dead_letters(amqp_url, DOCUMENTS):
            reasons.append(str((message.headers or {}).get("x-dead-reason")))
        return bool(reasons)

    await wait_until(parked)
    assert reasons[0].startswith(f"{ErrorCode.TOO_LARGE}: ")
    assert large_lane(DOCUMENTS) in reasons[0]


async def test_a_queue_without_a_large_lane_refuses_a_document_with_too_large(
    rpc: RpcClient,
) -> None:
    with pytest.raises(RpcError) as refused:
        await rpc.send(Note(content=DOCUMENT))
    assert refused.value.code == ErrorCode.TOO_LARGE
    assert await rpc.send(Note(content="x" * 1000)) == Held(size=1000)


async def test_a_request_over_the_services_largest_is_refused_on_the_large_lane_too(
    rpc: RpcClient,
) -> None:
    with pytest.raises(RpcError) as refused:
        await rpc.send(Hold(content="x" * (LARGEST + 1)))
    assert refused.value.code == ErrorCode.TOO_LARGE
    assert f"limited to {LARGEST} bytes" in refused.value.message
