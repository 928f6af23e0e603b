"""Technical rows do not grow for ever: every service prunes its outbox, inbox and requests.

- outbox, sent rows: `outbox_retention_days` (7), enough to investigate what was published;
  unsent rows are never pruned;
- inbox: `inbox_retention_days` (30): a redelivery comes within minutes (a crash, an outage held,
  a replay), 30 days is far past any;
- requests (idempotent replies): `request_retention_days` (7): a client retries within minutes.

Ages are wall-clock (PostgreSQL's `clock_timestamp()`), not the demo's adjustable clock: these
are technical records, not deadlines of the law. Deletion goes in batches so no prune holds
locks for long; replicas pruning at once only share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from libs.db import Pool

log = structlog.get_logger()

BATCH = 5_000

_PRUNES = {
    "outbox": "DELETE FROM outbox WHERE event_id IN (SELECT event_id FROM outbox"
    " WHERE sent_at < clock_timestamp() - $1::interval LIMIT $2)",
    "inbox": "DELETE FROM inbox WHERE (consumer, message_id) IN (SELECT consumer, message_id"
    " FROM inbox WHERE received_at < clock_timestamp() - $1::interval LIMIT $2)",
    "requests": "DELETE FROM requests WHERE request_key IN (SELECT request_key FROM requests"
    " WHERE created_at < clock_timestamp() - $1::interval LIMIT $2)",
}


async def prune(pool: Pool, retention: dict[str, timedelta]) -> dict[str, int]:
    """Delete what is past its retention; returns how many rows, by table."""
    deleted: dict[str, int] = {}
    for table, statement in _PRUNES.items():
        total = 0
        while True:
            status = await pool.execute(statement, retention[table], BATCH)
            n = int(status.split()[-1])
            total += n
            if n < BATCH:
                break
        deleted[table] = total
    return deleted


class Periodic:
    """Runs `step` every `interval` seconds until stopped; a failure (an outage) waits for the
    next round. The one shape of every service's housekeeping loop."""

    def __init__(self, name: str, interval: float, step: Callable[[], Awaitable[object]]) -> None:
        self._name = name
        self._interval = interval
        self._step = step
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception as exc:  # an outage: try again next round
                log.warning("periodic_failed", task=self._name, error=repr(exc))
            await asyncio.sleep(self._interval)
