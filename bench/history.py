"""A holder's access history among millions of traces (ACC_03), measured on this machine:

    .venv/bin/python -m bench.history                      # 10 million traces, ~10 minutes
    .venv/bin/python -m bench.history --total 1000000      # a quicker look

In a fresh database (dropped afterwards) with access's own migrations: one holder gets
`--holder-traces` traces (100,000), the rest of `--total` (10 million) are spread over 100,000
other holders; all loaded with COPY (the secondary indexes are dropped for the load and made
again after it, as the migrations define them). Then, with `services.access.repository`'s own
query (what `ListAccessHistory` runs), `--repeat` times each: the newest page, a page 1,000 pages
deep by keyset, one actor's traces, and one week of them; and beside them, in the same run, the
database's floor: `SELECT 1` round trips. Percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from libs import db, spaces
from libs.paging import Position
from services.access import repository
from services.access.chain import TRACE_FIELDS

ACCESS_MIGRATIONS = Path(__file__).parents[1] / "services" / "access" / "migrations"
DATABASE = "dmp_bench_history"
START = datetime(2021, 1, 1, tzinfo=UTC)
ACTORS = [f"10{n:09d}" for n in range(5_000)]


def _rows(ins: str, count: int, rng: random.Random, span: timedelta) -> Iterator[tuple[Any, ...]]:
    step = span / count
    for seq in range(1, count + 1):
        granted = rng.random() < 0.9
        yield (
            uuid.uuid4(),
            uuid.uuid4(),
            ins,
            START + step * seq,
            "professional",
            rng.choice(ACTORS),
            "Claire Martin",
            "physician",
            "read",
            None,
            "granted" if granted else "denied",
            "ACC_05",
            "authorized by the holder" if granted else "not authorized",
            "2026-12-06.1",
            False,
            None,
            None,
            seq,
        )


COLUMNS = [*TRACE_FIELDS, "seq"]


async def copy_in_batches(
    conn: asyncpg.Connection,
    schema: str,
    table: str,
    columns: list[str] | tuple[str, ...],
    rows: Iterator[tuple[Any, ...]],
    batch_size: int,
) -> None:
    """COPY `rows` into `schema.table`, `batch_size` at a time, saying how far it got."""
    batch: list[tuple[Any, ...]] = []
    loaded = 0
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            await conn.copy_records_to_table(
                table, schema_name=schema, records=batch, columns=columns
            )
            loaded += len(batch)
            batch.clear()
            print(f"  {loaded:,} {table} loaded", flush=True)
    if batch:
        await conn.copy_records_to_table(table, schema_name=schema, records=batch, columns=columns)


async def seed(conn: asyncpg.Connection, total: int, holder: str, holder_traces: int) -> float:
    """Loads `total` traces with COPY; returns the seconds it took, indexes included."""
    rng = random.Random(6)
    constraints = await conn.fetch(
        """SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
           WHERE conrelid = 'access.traces'::regclass AND contype = 'u'"""
    )
    indexes = await conn.fetch(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = 'access' AND tablename = 'traces'
             AND indexname <> 'traces_pkey'
             AND indexname NOT IN (SELECT conname FROM pg_constraint
                                   WHERE conrelid = 'access.traces'::regclass)"""
    )
    started = time.perf_counter()
    for constraint in constraints:
        await conn.execute(f'ALTER TABLE access.traces DROP CONSTRAINT "{constraint["conname"]}"')
    for index in indexes:
        await conn.execute(f'DROP INDEX access."{index["indexname"]}"')
    await conn.execute("ALTER TABLE access.traces DISABLE TRIGGER USER")
    others = 100_000
    per_other = max(1, (total - holder_traces) // others)
    span = timedelta(days=5 * 365)

    def everything() -> Iterator[tuple[Any, ...]]:
        yield from _rows(holder, holder_traces, rng, span)
        for n in range(others):
            yield from _rows(f"1{n:014d}", per_other, rng, span)

    await copy_in_batches(conn, "access", "traces", COLUMNS, everything(), 200_000)
    await conn.execute("ALTER TABLE access.traces ENABLE TRIGGER USER")
    for index in indexes:
        await conn.execute(index["indexdef"])
    for constraint in constraints:
        await conn.execute(
            f'ALTER TABLE access.traces ADD CONSTRAINT "{constraint["conname"]}"'
            f" {constraint['definition']}"
        )
    await conn.execute("ANALYZE access.traces")
    return time.perf_counter() - started


async def timed(repeat: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    await call()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def line(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return f"{name:<44} p50 {q[49]:7.2f} ms   p99 {q[98]:7.2f} ms   max {max(times):7.2f} ms"


async def run(url: str, total: int, holder_traces: int, repeat: int) -> None:
    admin = await asyncpg.connect(url)
    await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    await admin.execute(f"CREATE DATABASE {DATABASE}")
    bench_url = url.rsplit("/", 1)[0] + f"/{DATABASE}"
    try:
        pool = await db.create_pool(bench_url, "access", max_size=2)
        await db.migrate(
            pool,
            "access",
            {"libs": db.LIBS_MIGRATIONS, **spaces.MIGRATIONS, "access": ACCESS_MIGRATIONS},
        )
        holder = "185057512345678"
        async with pool.acquire() as conn:
            print(f"seeding {total:,} traces ({holder_traces:,} for one holder) with COPY")
            seconds = await seed(conn, total, holder, holder_traces)
            rows = await conn.fetchval("SELECT count(*) FROM traces")
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('access.traces'))"
            )
            print(f"  {rows:,} traces, {size} with indexes, loaded in {seconds:.0f} s\n")
            deep = await conn.fetchrow(
                "SELECT at, n FROM traces WHERE ins = $1 ORDER BY at DESC, n DESC OFFSET 20000"
                " LIMIT 1",
                holder,
            )
            actor = await conn.fetchval(
                "SELECT actor_id FROM traces WHERE ins = $1 LIMIT 1", holder
            )
            week = START + timedelta(days=900)

            async def page(**kw: Any) -> object:
                found = await repository.traces_page(
                    conn,
                    holder,
                    21,
                    kw.get("after"),
                    kw.get("actor_id"),
                    kw.get("since"),
                    kw.get("until"),
                )
                assert found, kw
                return found

            results = [
                (
                    "SELECT 1 (the database's floor)",
                    await timed(repeat, lambda: conn.fetchval("SELECT 1")),
                ),
                ("newest 20 traces", await timed(repeat, page)),
                (
                    "20 traces 1,000 pages deep (keyset)",
                    await timed(repeat, lambda: page(after=Position(deep["at"], deep["n"]))),
                ),
                ("one actor's newest 20", await timed(repeat, lambda: page(actor_id=actor))),
                (
                    "one week's newest 20",
                    await timed(repeat, lambda: page(since=week, until=week + timedelta(days=7))),
                ),
            ]
            plan = await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM traces WHERE ins = $1"
                " ORDER BY at DESC, n DESC LIMIT 21",
                holder,
            )
        await pool.close()
        print(
            f"history of a holder with {holder_traces:,} traces among {rows:,}, {repeat} runs each"
        )
        for name, times in results:
            print("  " + line(name, times))
        print("\nplan of the newest page:")
        for row in plan:
            print("  " + row[0])
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history")
    parser.add_argument("--total", type=int, default=10_000_000)
    parser.add_argument("--holder-traces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.total, args.holder_traces, args.repeat))


if __name__ == "__main__":
    main()
