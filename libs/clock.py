"""The one clock every service reads time from.

In production it is the system clock. With `clock_mode=adjustable` (tests, demo) it is the system
clock plus an offset kept in PostgreSQL (`dmp_clock.offset`). Moving it (`advance`) notifies every
running service through LISTEN/NOTIFY; each also re-reads it every few seconds in case a
notification was missed. So six weeks or ten years pass in seconds through the real services.

    python -m libs.clock advance 42d      # from outside the services
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger()

CHANNEL = "dmp_clock"
_DDL = """
CREATE SCHEMA IF NOT EXISTS dmp_clock;
CREATE TABLE IF NOT EXISTS dmp_clock.offset (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    offset_seconds double precision NOT NULL
);
INSERT INTO dmp_clock.offset VALUES (true, 0) ON CONFLICT DO NOTHING;
"""


class Clock:
    def __init__(self, adjustable: bool = False) -> None:
        self.adjustable = adjustable
        self._offset = timedelta(0)
        self._conn: asyncpg.Connection | None = None
        self._poll: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    async def start(self, database_url: str) -> None:
        if not self.adjustable:
            return
        self._conn = await asyncpg.connect(database_url)
        await ensure_clock_schema(self._conn)
        await self._refresh()
        await self._conn.add_listener(CHANNEL, self._on_notify)
        self._poll = asyncio.create_task(self._poll_forever(database_url))

    async def stop(self) -> None:
        if self._poll:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        if self._conn:
            await self._conn.close()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        self._offset = timedelta(seconds=float(str(payload)))
        log.info("clock_moved", offset_seconds=self._offset.total_seconds())

    async def _refresh(self) -> None:
        assert self._conn is not None
        seconds = await self._conn.fetchval("SELECT offset_seconds FROM dmp_clock.offset")
        self._offset = timedelta(seconds=float(seconds))

    async def _poll_forever(self, database_url: str) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self._refresh()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("clock_refresh_failed", error=str(exc))
                with contextlib.suppress(Exception):
                    await self._conn.close()  # type: ignore[union-attr]
                with contextlib.suppress(Exception):
                    self._conn = await asyncpg.connect(database_url)
                    await self._conn.add_listener(CHANNEL, self._on_notify)


@contextlib.asynccontextmanager
async def _ddl_lock(conn: asyncpg.Connection):  # type: ignore[no-untyped-def]
    await conn.execute("SELECT pg_advisory_lock(hashtext('dmp_clock'))")
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext('dmp_clock'))")


async def ensure_clock_schema(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Made by the administrator when provisioning; a service's role may only read it."""
    if await conn.fetchval("SELECT to_regclass('dmp_clock.offset') IS NOT NULL"):
        return
    async with _ddl_lock(conn):
        await conn.execute(_DDL)


async def advance(database_url: str, delta: timedelta) -> timedelta:
    """Move the shared clock forward for every running service; returns the new offset."""
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_clock_schema(conn)
        async with conn.transaction():
            seconds = await conn.fetchval(
                "UPDATE dmp_clock.offset SET offset_seconds = offset_seconds + $1"
                " RETURNING offset_seconds",
                delta.total_seconds(),
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(seconds))
        return timedelta(seconds=float(seconds))
    finally:
        await conn.close()


def parse_duration(text: str) -> timedelta:
    """`42d`, `10y`, `6w`, `3h`, `90s`; a year is 365.25 days."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdwy])", text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (try 42d, 6w, 10y)")
    value, unit = float(match[1]), match[2]
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365.25 * 86400}
    return timedelta(seconds=value * seconds[unit])


if __name__ == "__main__":
    import os

    if len(sys.argv) != 3 or sys.argv[1] != "advance":
        sys.exit("usage: python -m libs.clock advance <duration, e.g. 42d>")
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dmp")
    offset = asyncio.run(advance(url, parse_duration(sys.argv[2])))
    print(f"clock offset is now {offset}")
