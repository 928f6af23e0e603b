"""Readiness an orchestrator can probe over HTTP, and that turns false by itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import pytest

from libs.bus.rpc import RpcClient
from libs.contracts.commands import Ping
from tests.support import infra
from tests.support.system import build_service

pytestmark = pytest.mark.integration


async def _get_raw(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    status, body = await _get_raw(port, path)
    return status, json.loads(body)


async def test_http_probes_say_live_and_ready_then_not_ready_when_a_consumer_is_lost(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    runtime = build_service(
        "retention",
        {**settings_values, "amqp_url": own_amqp_url, "database_url": own_database_url},
        health_port=0,
    )
    await runtime.start()
    try:
        assert runtime._health_server is not None
        port = runtime._health_server.port
        assert await _get(port, "/livez") == (200, {"live": True})
        status, ready = await _get(port, "/readyz")
        assert status == 200 and ready["ready"] and ready["database"] and ready["broker"]
        # The broker cancels a consumer when its queue goes: readiness must notice.
        connection = await aio_pika.connect(own_amqp_url)
        try:
            channel = await connection.channel()
            queue = next(q for q in ready["consuming"] if not q.endswith(".commands"))
            await channel.queue_delete(queue)
        finally:
            await connection.close()
        async with asyncio.timeout(10):
            while (await _get(port, "/readyz"))[0] != 503:
                await asyncio.sleep(0.1)
        status, not_ready = await _get(port, "/readyz")
        assert not_ready["consuming"][queue] is False
        assert (await _get(port, "/nowhere"))[0] == 404
    finally:
        await runtime.stop()


async def test_metrics_count_every_message_by_queue_and_outcome(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    values = {**settings_values, "amqp_url": own_amqp_url, "database_url": own_database_url}
    runtime = build_service("retention", values, health_port=0)
    await runtime.start()
    try:
        assert runtime._health_server is not None
        port = runtime._health_server.port
        client = RpcClient(infra.client_url(own_amqp_url), name="metrics-test")
        await client.connect()
        try:
            for _ in range(3):
                await client.send(Ping(), queue="retention.commands")
        finally:
            await client.close()
        status, text = await _get_raw(port, "/metrics")
        assert status == 200
        received = [
            line
            for line in text.decode().splitlines()
            if line.startswith("faststream_received_messages_total")
            and 'handler="dmp.commands.retention.commands"' in line
        ]
        assert received and float(received[0].rsplit(" ", 1)[1]) >= 3, text.decode()[:2000]
    finally:
        await runtime.stop()
