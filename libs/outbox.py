"""Transactional outbox: events are written with the change that causes them, then relayed.

`add` inserts the event in the caller's transaction and NOTIFYs the relay (delivered at commit).
The relay claims unsent rows with `FOR UPDATE SKIP LOCKED` and a lease (never "id greater than
the last seen": sequences are taken before commit, so a late commit would be skipped forever),
publishes them with confirms, then marks them sent. A crash between confirm and mark republishes:
consumers de-duplicate by event id (inbox). LISTEN/NOTIFY is not durable, so it also polls.

Each row keeps the trace it was written in (`trace_context`, a W3C `traceparent`, NULL when not
tracing): the relay publishes it as the message's `traceparent` header, so the consumer's span
continues the writer's trace (libs/telemetry.py). The relay also counts what it publishes and
how long rows waited (libs/metrics.py), and `backlog` measures what is still unsent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy
from opentelemetry import trace

from libs import telemetry
from libs.bus.publisher import ConfirmingPublisher
from libs.bus.topology import EVENTS_EXCHANGE
from libs.contracts.envelope import Envelope, Event, envelope_for
from libs.db import Conn, Pool
from libs.metrics import ServiceMetrics

log = structlog.get_logger()


def channel_for(schema: str) -> str:
    return f"outbox_{schema}"


async def add(conn: Conn, envelope: Envelope, routing_key: str) -> None:
    # One round trip: the insert, and the wake-up the relay gets when this transaction commits.
    await conn.execute(
        """WITH written AS (
               INSERT INTO outbox (event_id, routing_key, body, correlation_id, trace_context)
               VALUES ($1, $2, $3, $4, $5) RETURNING 1)
           SELECT pg_notify('outbox_' || current_schema(), '') FROM written""",
        envelope.event_id,
        routing_key,
        envelope.model_dump_json().encode(),
        envelope.correlation_id,
        telemetry.current_traceparent(),
    )


async def add_many(
    conn: Conn,
    events: list[tuple[Envelope, str]],
    *,
    also: str = "",
    also_args: tuple[Any, ...] = (),
) -> None:
    """`add` for many events (a batch of deadlines, a unit of work's): one statement, one
    wake-up. `also`: one more data-modifying `name AS (...)` run in the same statement, its
    parameters `also_args` numbered from $6 (a unit of work stores its reply so)."""
    if not events:
        return
    await conn.execute(
        f"""WITH written AS (
               INSERT INTO outbox (event_id, routing_key, body, correlation_id, trace_context)
               SELECT e, r, b, c, $5::text
               FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[]) AS u(e, r, b, c)
               RETURNING 1){f", {also}" if also else ""}
           SELECT pg_notify('outbox_' || current_schema(), '') FROM written LIMIT 1""",
        [envelope.event_id for envelope, _ in events],
        [routing_key for _, routing_key in events],
        [envelope.model_dump_json().encode() for envelope, _ in events],
        [envelope.correlation_id for envelope, _ in events],
        telemetry.current_traceparent(),
        *also_args,
    )


async def add_event(
    conn: Conn,
    event: Event,
    *,
    holder_key: str,
    occurred_at: Any,
    correlation_id: str,
    causation_id: str | None = None,
) -> Envelope:
    envelope = envelope_for(
        event,
        holder_key=holder_key,
        occurred_at=occurred_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    await add(conn, envelope, event.routing_key())
    return envelope


class OutboxRelay:
    def __init__(
        self,
        pool: Pool,
        publisher: ConfirmingPublisher,
        schema: str,
        *,
        batch_size: int = 256,
        lease: timedelta = timedelta(seconds=30),
        poll_interval: float = 1.0,
        tracer: trace.Tracer | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._tracer = tracer
        self._metrics = metrics
        self._publisher = publisher
        self._schema = schema
        self._batch_size = batch_size
        self._lease = lease
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: PoolConnectionProxy[asyncpg.Record] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._release_listener()

    async def _release_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.remove_listener(channel_for(self._schema), self._on_notify)
            with contextlib.suppress(Exception):
                await self._pool.release(listener)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await self._pool.acquire()
            await self._listener.add_listener(channel_for(self._schema), self._on_notify)

    async def run_forever(self) -> None:
        while True:
            try:
                await self._listen()
                # A batch short of full took every row there was: rows committed since have
                # woken the relay (NOTIFY), so it waits rather than claim nothing once more.
                while await self.relay_once() >= self._batch_size:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the relay must outlive a broker or database outage
                log.warning("outbox_relay_failed", schema=self._schema, error=repr(exc))
                await self._release_listener()
                await asyncio.sleep(self._poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()

    async def claim(self) -> list[asyncpg.Record]:
        return await self._pool.fetch(
            """
            UPDATE outbox SET claimed_until = clock_timestamp() + $1, attempts = attempts + 1
            WHERE event_id IN (
                SELECT event_id FROM outbox
                WHERE sent_at IS NULL
                  AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
                ORDER BY seq LIMIT $2
                FOR UPDATE SKIP LOCKED)
            RETURNING event_id, seq, routing_key, body, correlation_id, trace_context,
                extract(epoch FROM clock_timestamp() - created_at)::float8 AS waited
            """,
            self._lease,
            self._batch_size,
        )

    async def relay_once(self) -> int:
        """Publish one batch; returns how many were published."""
        rows = sorted(await self.claim(), key=lambda r: r["seq"])
        if not rows:
            return 0
        started = time.monotonic()
        results = await asyncio.gather(
            *(self._publish(r) for r in rows),
            return_exceptions=True,
        )
        sent = [r["event_id"] for r, res in zip(rows, results, strict=True) if res is None]
        failed = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
        await self.mark_sent(sent)
        if self._metrics is not None:
            service, took = self._metrics.service, time.monotonic() - started
            self._metrics.outbox_published.labels(service).inc(len(sent))
            if failed:
                self._metrics.outbox_publish_failures.labels(service).inc(len(failed))
            delay = self._metrics.outbox_delay.labels(service)
            for r, res in zip(rows, results, strict=True):
                if res is None and r["waited"] is not None:
                    delay.observe(r["waited"] + took)
        for row, error in failed:
            log.warning("outbox_publish_failed", event_id=str(row["event_id"]), error=repr(error))
            await self._pool.execute(
                "UPDATE outbox SET last_error = $2, claimed_until = clock_timestamp() + $3"
                " WHERE event_id = $1",
                row["event_id"],
                repr(error)[:1000],
                timedelta(seconds=5),
            )
        return len(sent)

    async def _publish(self, row: asyncpg.Record) -> None:
        """Publish one row, continuing the trace it was written in (if it was)."""
        saved = row["trace_context"]
        parent = telemetry.context_of(saved) if self._tracer is not None else None
        if parent is None:
            # Not tracing here (or nothing saved): a saved context still goes on unchanged.
            await self._publisher.publish(
                EVENTS_EXCHANGE,
                row["routing_key"],
                row["body"],
                message_id=str(row["event_id"]),
                correlation_id=row["correlation_id"],
                headers={telemetry.TRACEPARENT: saved} if saved else None,
            )
            return
        assert self._tracer is not None
        with self._tracer.start_as_current_span(
            f"{EVENTS_EXCHANGE}.{row['routing_key']} publish",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": EVENTS_EXCHANGE,
                "messaging.rabbitmq.destination.routing_key": row["routing_key"],
                "messaging.message.id": str(row["event_id"]),
            },
        ):
            headers: dict[str, Any] = {}
            telemetry.inject(headers)
            await self._publisher.publish(
                EVENTS_EXCHANGE,
                row["routing_key"],
                row["body"],
                message_id=str(row["event_id"]),
                correlation_id=row["correlation_id"],
                headers=headers,
            )

    async def mark_sent(self, event_ids: list[Any]) -> None:
        if event_ids:
            await self._pool.execute(
                "UPDATE outbox SET sent_at = clock_timestamp(), claimed_until = NULL,"
                " last_error = NULL WHERE event_id = ANY($1::uuid[])",
                event_ids,
            )


async def backlog(conn: Conn | Pool) -> tuple[int, float]:
    """What is still unsent: how many rows, and the age in seconds of the oldest (0 if none).

    Both read the partial index of unsent rows; the count stops at a million (a backlog that
    large is an incident whatever its exact size)."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE sent_at IS NULL
                                         LIMIT 1000000) AS unsent) AS unsent,
                  coalesce(extract(epoch FROM clock_timestamp() - (
                      SELECT created_at FROM outbox WHERE sent_at IS NULL
                      ORDER BY seq LIMIT 1))::float8, 0) AS oldest"""
    )
    assert row is not None
    return int(row["unsent"]), max(0.0, float(row["oldest"]))
