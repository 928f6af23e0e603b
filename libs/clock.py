"""The one clock every service reads time from.

In production it is the system clock. With `clock_mode=adjustable` (tests, demo) it is the system
clock plus an offset kept in PostgreSQL (`dmp_clock.offset`). Moving it (`advance`) notifies every
running service through LISTEN/NOTIFY; each also re-reads it every few seconds in case a
notification was missed. So six weeks or ten years pass in seconds through the real services.

    python -m libs.clock advance 42d      # from outside the services (also 6w, 3mo, 10y)
    python -m libs.clock reset            # back to the system clock
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

from libs.periods import add_calendar_month, add_calendar_years

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


# `y` and `mo` are calendar units, as the rules count them (libs.periods): ten years from a date
# is the same date ten years on, which a fixed 365.25-day year can miss by up to a day.
_FIXED = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, now: datetime | None = None) -> timedelta:
    """`90s`, `30m`, `3h`, `42d`, `6w` (fixed lengths); `10y`, `3mo` (calendar years and months
    from `now`, the shared clock's time: `10y` reaches any ten-year deadline counted from a moment
    up to now)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(mo|[smhdwy])", text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (try 42d, 6w, 3mo, 10y)")
    value, unit = match[1], match[2]
    if unit in _FIXED:
        return timedelta(seconds=float(value) * _FIXED[unit])
    if not value.isdigit():
        raise ValueError(f"years and months are whole: {text!r}")
    start = now or datetime.now(UTC)
    end = start
    if unit == "y":
        end = add_calendar_years(start, int(value))
    else:
        for _ in range(int(value)):
            end = add_calendar_month(end)
    return end - start


async def offset(database_url: str) -> timedelta:
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_clock_schema(conn)
        return timedelta(
            seconds=float(await conn.fetchval("SELECT offset_seconds FROM dmp_clock.offset"))
        )
    finally:
        await conn.close()


async def reset(database_url: str) -> None:
    """Back to the system clock (a demo starting over). Deadlines already fired stay fired."""
    current = await offset(database_url)
    await advance(database_url, -current)


def _reads(moved: timedelta) -> str:
    reads = datetime.now(UTC) + moved
    return f"clock offset {moved}: the shared clock reads {reads:%Y-%m-%d %H:%M} UTC"


async def _main(argv: list[str], database_url: str) -> str:
    if argv[:1] == ["advance"] and len(argv) == 2:
        now = datetime.now(UTC) + await offset(database_url)
        moved = await advance(database_url, parse_duration(argv[1], now))
        return _reads(moved)
    if argv == ["reset"]:
        await reset(database_url)
        return "clock reset to the system clock"
    if argv == ["show"]:
        return _reads(await offset(database_url))
    raise SystemExit(
        "usage: python -m libs.clock advance <duration: 42d, 6w, 3mo, 10y> | reset | show"
    )


if __name__ == "__main__":
    import os

    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/dmp")
    print(asyncio.run(_main(sys.argv[1:], url)))
