"""One million deadlines due at once (RET_04), fired by the real retention service:

    .venv/bin/python -m bench.retention                  # 1,000,000 deadlines
    .venv/bin/python -m bench.retention --count 100000   # a quicker look

In a fresh database and virtual host (dropped afterwards): retention's own migrations, `--count`
deadlines loaded with COPY (due long ago, spread over 100,000 holders), then retention started
as its own process (its own role and broker user, as deployed), timed until every deadline is
fired, and until its outbox relay has published them all. Its resident memory is sampled all
along (peak reported). Beside it, the same run's floor: the same number of rows written by bare
asyncpg (an UPDATE of the deadlines and an INSERT of as many outbox rows, in batches of the same
size) and the COPY itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from libs.tokens import key_set, new_signing_key, public_jwks
from scripts import processes
from tests.support import infra

ROOT = Path(__file__).parents[1]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
HOLDERS = 100_000


def _records(count: int) -> list[tuple[Any, ...]]:
    ins = [f"1850575{n:08d}" for n in range(HOLDERS)]
    return [
        (
            *(uuid.uuid4(), ins[n % HOLDERS], "proxy_end", LONG_AGO, LONG_AGO, LONG_AGO),
            *(str(uuid.uuid4()), uuid.uuid4(), "bench-retention"),
        )
        for n in range(count)
    ]


COLUMNS = [
    *("deadline_id", "ins", "kind", "due_at", "created_at", "starts_at", "subject"),
    *("cause_event_id", "correlation_id"),
]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


async def _wait(conn: asyncpg.Connection, sql: str, count: int, pid: int) -> tuple[float, float]:
    """Seconds until `sql` counts `count`, and the process's peak RSS meanwhile (MB)."""
    started, peak = time.perf_counter(), 0.0
    while await conn.fetchval(sql) < count:
        peak = max(peak, _rss_mb(pid))
        await asyncio.sleep(0.2)
    return time.perf_counter() - started, peak


async def _floor(conn: asyncpg.Connection, count: int, batch: int) -> float:
    """The same writes with bare asyncpg: per batch, mark the deadlines fired and insert as many
    outbox rows of the same size, one transaction each."""
    await conn.execute("UPDATE retention.deadlines SET fired_at = NULL")
    ids = [
        r["deadline_id"] for r in await conn.fetch("SELECT deadline_id FROM retention.deadlines")
    ]
    body = b"x" * 420  # an envelope of a ProxyEndDue is about this size
    started = time.perf_counter()
    for start in range(0, count, batch):
        chunk = ids[start : start + batch]
        async with conn.transaction():
            await conn.execute(
                "UPDATE retention.deadlines SET fired_at = now() WHERE deadline_id = ANY($1)", chunk
            )
            await conn.execute(
                """INSERT INTO retention.outbox (event_id, routing_key, body, correlation_id)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::text[])""",
                [uuid.uuid4() for _ in chunk],
                ["bench.floor.v1"] * len(chunk),
                [body] * len(chunk),
                ["bench"] * len(chunk),
            )
    return time.perf_counter() - started


async def main(count: int, batch: int) -> None:
    with infra.servers() as servers:
        async with (
            infra.fresh_database(servers.database_url, "dmp_bench") as database_url,
            infra.fresh_vhost(servers) as amqp_url,
        ):
            values = {
                "database_url": database_url,
                "amqp_url": amqp_url,
                "identity_jwks": public_jwks(key_set(new_signing_key())),
                "purge_proof_key": "pUrG3pr00fK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
                "sweep_batch_size": batch,
                "sweep_interval_seconds": 0.5,
                "log_level": "WARNING",
            }
            env = {
                **os.environ,
                **processes.environment(infra.service_values(values, "retention")),
                "PYTHONPATH": str(ROOT),
            }
            conn = await asyncpg.connect(database_url)
            try:
                # Migrate, with no deadline yet: start and stop the service once.
                await _run_until_ready(env, conn)
                rows = _records(count)
                started = time.perf_counter()
                await conn.copy_records_to_table(
                    "deadlines", schema_name="retention", columns=COLUMNS, records=rows
                )
                copy_s = time.perf_counter() - started
                del rows
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "services.retention", env=env, cwd=ROOT
                )
                try:
                    fired_s, fired_peak = await _wait(
                        conn,
                        "SELECT count(*) FROM retention.deadlines WHERE fired_at IS NOT NULL",
                        count,
                        process.pid,
                    )
                    sent_s, sent_peak = await _wait(
                        conn,
                        "SELECT count(*) FROM retention.outbox WHERE sent_at IS NOT NULL",
                        count,
                        process.pid,
                    )
                finally:
                    process.terminate()
                    await process.wait()
                floor_s = await _floor(conn, count, batch)
            finally:
                await conn.close()
    print(f"retention: {count:,} deadlines due at once, batches of {batch}")
    print(
        f"  COPY of the deadlines (raw)           {copy_s:8.1f} s  {count / copy_s:10,.0f} rows/s"
    )
    print(f"  fired (marked, events in the outbox)  {fired_s:8.1f} s  {count / fired_s:10,.0f} /s")
    print(
        f"  ... and published by the relay        {fired_s + sent_s:8.1f} s  "
        f"{count / (fired_s + sent_s):10,.0f} /s"
    )
    print(f"  floor: same writes, bare asyncpg      {floor_s:8.1f} s  {count / floor_s:10,.0f} /s")
    print(f"  ours / floor (firing)                 {floor_s / fired_s:8.2f}")
    print(f"  retention peak RSS                    {max(fired_peak, sent_peak):8.0f} MB")


async def _run_until_ready(env: dict[str, str], conn: asyncpg.Connection) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.retention", env=env, cwd=ROOT
    )
    try:
        for _ in range(300):
            if await conn.fetchval("SELECT to_regclass('retention.deadlines') IS NOT NULL"):
                version = await conn.fetchval(
                    "SELECT max(version) FROM retention.schema_migrations"
                )
                if version and version.startswith("retention/"):
                    await asyncio.sleep(1)
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError("retention did not migrate")
    finally:
        process.terminate()
        await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.batch))
