"""Is this replica of a service fit to take work? What `Ping` and the HTTP probes answer.

Ready means: started; every queue has its consumer; the database answers now; the broker
connection is open; and no queue is stalled (deliveries in hand, none finished for
`stall_seconds`). It turns false during an outage and comes back by itself after it.

The HTTP probes are for orchestrators, which cannot speak AMQP: `GET /livez` (the process's loop
answers) and `GET /readyz` (200 when ready, 503 otherwise, the details as JSON either way).
`GET /metrics` is for Prometheus (libs/metrics.py): the gauges that cost a query (outbox backlog,
dead-letter queues, readiness) are sampled when it is asked, so an unscraped service pays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger()


class Progress:
    """Deliveries in hand and the last one finished, per queue."""

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._in_hand: dict[str, int] = {}
        self._last_done: dict[str, float] = {}
        self.last_infrastructure_error: str | None = None

    def began(self, queue: str) -> None:
        if self._in_hand.get(queue, 0) == 0:
            # Idle until now: the stall clock starts with this delivery.
            self._last_done[queue] = time.monotonic()
        self._in_hand[queue] = self._in_hand.get(queue, 0) + 1

    def ended(self, queue: str) -> None:
        self._in_hand[queue] = max(0, self._in_hand.get(queue, 0) - 1)

    def progressed(self, queue: str) -> None:
        self._last_done[queue] = time.monotonic()

    def infrastructure_failed(self, exc: BaseException) -> None:
        self.last_infrastructure_error = repr(exc)[:300]

    def stalled(self) -> list[str]:
        now = time.monotonic()
        return sorted(
            queue
            for queue, n in self._in_hand.items()
            if n > 0 and now - self._last_done.get(queue, now) > self.stall_seconds
        )


Check = Callable[[], Awaitable[dict[str, Any]]]
Metrics = Callable[[], Awaitable[bytes]]


class HealthServer:
    """A minimal HTTP/1.1 server for the two probes and the Prometheus metrics (no framework:
    three GETs)."""

    def __init__(self, host: str, port: int, readiness: Check, metrics: Metrics) -> None:
        self._host = host
        self._port = port
        self._readiness = readiness
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers: none matter here
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            body: dict[str, Any]
            content_type = "application/json"
            if path == "/livez":
                status, body = 200, {"live": True}
            elif path == "/readyz":
                body = await self._readiness()
                status = 200 if body.get("ready") else 503
            else:
                status, body = 404, {"error": "GET /livez, /readyz or /metrics"}
            payload = json.dumps(body).encode()
            if path == "/metrics":
                status, payload = 200, await self._metrics()
                content_type = "text/plain; version=0.0.4; charset=utf-8"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except Exception as exc:
            log.debug("health_request_failed", error=repr(exc))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
