"""What one deposit costs the database: statements per deposit, by service, and the commonest.

    .venv/bin/python -m bench.statements                # 200 deposits
    .venv/bin/python -m bench.statements --deposits 500 --log /path/to/postgresql.log

Runs `bench.bench`'s six-service section in a fresh database set to `log_statement = all`, and
reads, from the server's log (`--log`: it must be readable here, as on a developer's machine),
the statements written while the deposits ran (from the first timed deposit until the journey's
last alert is stored), each line naming its role (`<database>_<service>`). It stops after the
deposits. The figures go into docs/benchmarks.md and `bench.journey`'s floor (`FLOOR`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
from pathlib import Path
from typing import Any

import asyncpg

from bench import bench

DEFAULT_LOG = "/var/log/postgresql/postgresql-15-main.log"
_LINE = re.compile(r"\S+ \S+ \S+ \[\d+\] (\S+)@\S+ LOG:  (?:statement|execute [^:]*): (.*)")


class Counted(Exception):
    """Raised once the deposits' statements are read: the rest of the section is not needed."""


async def count(deposits: int, log: Path) -> str:
    """The log's text written while `deposits` deposits went through."""
    real = bench.run_in_flight
    state: dict[str, Any] = {}

    async def run_in_flight(n: int, k: int, call: Any) -> Any:
        # The section times the deposits, waits for their alerts, then starts the sign-ins:
        # what lies between the first two calls is the deposits' journey.
        if call.__name__ == "deposit" and n == deposits:
            state["start"] = log.stat().st_size  # noqa: ASYNC240 (before the timing starts)
        elif "start" in state:
            state["text"] = _read_from(log, state["start"])
            raise Counted
        return await real(n, k, call)

    bench.run_in_flight = run_in_flight  # type: ignore[assignment]
    try:
        async with bench.fresh_infra() as (database_url, amqp_url):
            name = database_url.rsplit("/", 1)[-1]
            admin = await asyncpg.connect(database_url)
            try:
                await admin.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
            finally:
                await admin.close()
            report = bench.Report()
            try:
                await bench.system(
                    report, database_url, amqp_url, 1, deposits, bench.DB_POOL_SIZE, False
                )
            except Counted:
                pass
    finally:
        bench.run_in_flight = real  # type: ignore[assignment]
    text: str = state.get("text", "")
    return text


def _read_from(log: Path, offset: int) -> str:
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def tally(text: str, deposits: int) -> None:
    by_service: collections.Counter[str] = collections.Counter()
    by_statement: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        role, statement = match.groups()
        service = re.sub(r"^dmp_bench_[0-9a-f]+_", "", role)
        by_service[service] += 1
        by_statement[(service, statement[:90])] += 1
    total = sum(by_service.values())
    print(f"\nstatements per deposit ({deposits} deposits): {total / deposits:.1f}")
    for service, n in by_service.most_common():
        print(f"  {service:<10} {n / deposits:5.1f}")
    print("\nthe commonest:")
    for (service, statement), n in by_statement.most_common(40):
        print(f"  {n / deposits:5.2f} {service:<10} {statement}")


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__)
    parser.add_argument("--deposits", type=int, default=200)
    parser.add_argument("--log", type=Path, default=Path(DEFAULT_LOG))
    args = parser.parse_args()
    text = asyncio.run(count(args.deposits, args.log))
    if not text:
        sys.exit(f"nothing read from {args.log}: is it the server's log, and readable?")
    tally(text, args.deposits)


if __name__ == "__main__":
    cli()
