"""Test side of the probe service (`tests.support.probe_service`): start it in a subprocess,
kill it, look into its tables and queues.

This module does not import the probe service: its event type stays out of the test process's
contract registry. Envelopes for it are built here by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from libs.bus import topology
from libs.bus.rpc import RpcClient
from libs.runtime import Runtime
from libs.settings import ServiceSettings
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPE = "EffectRequested"
ROUTING_KEY = "probe.effect_requested.v1"
READY_LINE = "probe_ready"


def new_probe_name(purpose: str) -> str:
    return f"probe_{purpose}_{uuid.uuid4().hex[:6]}"


def envelope(key: str, n: int = 1, **override: Any) -> dict[str, Any]:
    """An `EffectRequested` envelope as the outbox would write it (JSON-ready)."""
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": EVENT_TYPE,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "correlation_id": uuid.uuid4().hex,
        "causation_id": None,
        "holder_key": key,
        "payload": {"key": key, "n": n},
    }
    body.update(override)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


@dataclass
class Probe:
    """One probe process. `start` waits until it serves; `kill` is SIGKILL."""

    name: str
    base_env: dict[str, str]
    log_path: Path
    consume: bool = True
    commands: bool = False
    crash: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def effects_queue(self) -> str:
        return f"{self.name}.effects"

    @property
    def commands_queue(self) -> str:
        return f"{self.name}.commands"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    async def start(self, *, crash: str | None = None, timeout: float = 30.0) -> None:
        assert self.process is None or self.process.returncode is not None, "already running"
        env = {
            **os.environ,
            **self.base_env,
            "PROBE_NAME": self.name,
            "PROBE_CONSUME": "1" if self.consume else "0",
            "PROBE_COMMANDS": "1" if self.commands else "0",
            "PROBE_CRASH": self.crash if crash is None else crash,
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        self.starts += 1
        offset = len(self.log())
        with self.log_path.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.probe_service",
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        async with asyncio.timeout(timeout):
            while READY_LINE not in self.log()[offset:]:
                if self.process.returncode is not None:
                    raise RuntimeError(f"probe {self.name} died on start:\n{self.log()[-4000:]}")
                await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        """Graceful stop (SIGTERM); SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await self.wait_exit(15)
            except TimeoutError:
                await self.kill()


class ProbeDb:
    """Read-only views of a probe's schema."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def effects(self, event_id: str) -> int:
        return int(
            await self.conn.fetchval(
                f'SELECT count(*) FROM "{self.schema}".effects WHERE event_id = $1::uuid', event_id
            )
        )

    async def deliveries(self, message_id: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            f'SELECT * FROM "{self.schema}".deliveries WHERE message_id = $1 ORDER BY seq',
            message_id,
        )

    async def inbox(self, event_id: str) -> int:
        return int(
            await self.conn.fetchval(
                f'SELECT count(*) FROM "{self.schema}".inbox WHERE message_id = $1', event_id
            )
        )

    async def outbox_row(self, event_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            f'SELECT * FROM "{self.schema}".outbox WHERE event_id = $1::uuid', event_id
        )


async def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> None:
    """Await `predicate()` (sync or async) until it is truthy."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


async def queue_depth(amqp_url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue, as the broker sees it."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return result.message_count or 0, result.consumer_count or 0
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def publish_to_queue(amqp_url: str, queue: str, body: bytes, message_id: str) -> None:
    """Straight into one queue (default exchange), confirmed: only that consumer sees it."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id, delivery_mode=2), routing_key=queue
        )
    finally:
        await connection.close()


# --- a probe runtime in this process, for commands of a test's own ------------------------------

PROBE_MIGRATIONS = ROOT / "tests" / "support" / "probe" / "migrations"


@contextlib.asynccontextmanager
async def probe_serving(
    settings_values: dict[str, Any],
    register: Callable[[Runtime], None],
    *,
    name: str,
    timeout: float = 5.0,
    **settings: Any,
) -> AsyncIterator[RpcClient]:
    """The real runtime as `probe`, in this process, serving what `register` registers (with
    `settings` over the test's), and a client calling it as another service would: the probe's
    command queues are bound to dmp.internal only."""
    values = {**infra.service_values(settings_values, "probe"), **settings}
    runtime = Runtime("probe", ServiceSettings(**values), PROBE_MIGRATIONS)
    register(runtime)
    await runtime.start()
    client = RpcClient(
        infra.party_url(settings_values["amqp_url"], "bench"),
        name=name,
        exchange=topology.INTERNAL_EXCHANGE,
        timeout=timeout,
    )
    try:
        await client.connect()
        yield client
    finally:
        await client.close()
        await runtime.stop()
