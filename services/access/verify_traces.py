"""Check that no access trace was edited or deleted (ACC_03): ops run it at will.

    python -m services.access.verify_traces [--ins INS ...]

Reads access's schema (DATABASE_URL as the service reads it, or --database-url), walks each
holder's chain (or only the holders named) and prints every break: the holder, the trace's
place in the chain, and whether it was altered or is missing. Exit status 0: every chain
intact; 1: a break. Holders are read a batch at a time, one chain in memory at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from libs.db import Pool, create_pool
from services.access import repository
from services.access.chain import Break, verify
from services.access.main import NAME
from services.access.settings import AccessSettings

BATCH = 500


@dataclass
class Report:
    holders: int = 0
    traces: int = 0
    unchained: int = 0  # written before the chain existed: nothing to check them against
    breaks: list[Break] = field(default_factory=list)


async def _heads(pool: Pool, only: list[str] | None) -> AsyncIterator[tuple[str, int, bytes]]:
    async with pool.acquire() as conn:
        if only is not None:
            for ins in only:
                row = await conn.fetchrow("SELECT seq, hash FROM trace_heads WHERE ins = $1", ins)
                if row is not None:
                    yield ins, row["seq"], row["hash"]
                elif await conn.fetchval("SELECT true FROM traces WHERE ins = $1 LIMIT 1", ins):
                    yield ins, 0, b""  # traces with no head: the head was deleted
            return
        after = ""
        while batch := await repository.chain_holders(conn, after, BATCH):
            for row in batch:
                yield row["ins"], row["seq"], row["hash"]
            after = batch[-1]["ins"]


async def verify_traces(pool: Pool, only: list[str] | None = None) -> Report:
    report = Report()
    async for ins, head_seq, head_hash in _heads(pool, only):
        async with pool.acquire() as conn:
            chain = await repository.chain_of(conn, ins)
        report.holders += 1
        report.traces += len(chain)
        problem = verify(ins, [dict(t) for t in chain], head_seq, head_hash)
        if problem is not None:
            report.breaks.append(problem)
    async with pool.acquire() as conn:
        report.unchained = await conn.fetchval("SELECT count(*) FROM traces WHERE seq IS NULL")
    return report


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.access.verify_traces")
    parser.add_argument("--ins", action="append", help="only this holder (repeatable)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", AccessSettings.model_fields["database_url"].default),
        help="access's database (default: DATABASE_URL, as the service reads it)",
    )
    args = parser.parse_args(argv)
    pool = await create_pool(args.database_url, NAME, max_size=2)
    try:
        report = await verify_traces(pool, args.ins)
    finally:
        await pool.close()
    for problem in report.breaks:
        print(f"BROKEN {problem}")
    print(
        f"{report.holders} holders, {report.traces} traces checked, {len(report.breaks)} broken"
        + (
            f", {report.unchained} written before the chain (not verifiable)"
            if report.unchained
            else ""
        )
    )
    return 1 if report.breaks else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
