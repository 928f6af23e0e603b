"""Master key rotation without downtime (DOC_11): every document key is re-wrapped under the
current master key in the background, while the former key stays readable.

Each replica runs `Rewrapper`: a batch at a time (rows locked with SKIP LOCKED, so replicas share
the work and a deposit is never blocked), it unwraps a document's key with the master key that
wrapped it and wraps it again with the current one; the documents themselves are not touched.
Rows wrapped by a key the settings do not hold are left alone and counted (a mistake ops must
see, not a loop). Ops watch the progress, and know when the former key can go:

    python -m services.dossier.keys              # documents by master key id; exit 1 while any
                                                 # still uses a key other than the current one
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import structlog

from libs.db import Conn, Pool, create_pool
from libs.maintenance import Periodic
from libs.runtime import Runtime
from services.dossier import domain
from services.dossier.settings import DossierSettings

log = structlog.get_logger()

BATCH = 500


async def rewrap_batch(pool: Pool, masters: dict[str, bytes], current_id: str) -> int:
    """Re-wraps up to BATCH document keys; returns how many."""
    readable = [key_id for key_id in masters if key_id != current_id]
    if not readable:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT document_id, ins, key_id, key_nonce, wrapped_key FROM documents
               WHERE key_id = ANY($1::text[])
               LIMIT $2 FOR UPDATE SKIP LOCKED""",
            readable,
            BATCH,
        )
        moved = []
        for row in rows:
            wrapped = domain.rewrap(
                masters,
                current_id,
                domain.WrappedKey(row["key_id"], row["key_nonce"], row["wrapped_key"]),
                row["document_id"],
                row["ins"],
            )
            moved.append((row["document_id"], wrapped.key_id, wrapped.nonce, wrapped.wrapped))
        await conn.executemany(
            "UPDATE documents SET key_id = $2, key_nonce = $3, wrapped_key = $4"
            " WHERE document_id = $1",
            moved,
        )
    return len(moved)


async def keys_in_use(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT key_id, count(*) AS n FROM documents GROUP BY key_id")
    return {row["key_id"]: row["n"] for row in rows}


async def keys_in_use_of(conn: Conn, ins: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT key_id, count(*) AS n FROM dossier.documents WHERE ins = $1 GROUP BY key_id", ins
    )
    return {row["key_id"]: row["n"] for row in rows}


def rewrapper(runtime: Runtime[DossierSettings], masters: dict[str, bytes]) -> Periodic:
    """The background pass of one replica: batches until none is left, then a pause (it keeps
    looking: a replica still on the old settings may wrap with the old key meanwhile)."""
    current = runtime.settings.dossier_content_key_id

    async def rewrap_all() -> None:
        if len(masters) < 2:  # nothing to do without another key
            return
        done = 0
        while moved := await rewrap_batch(runtime.pool, masters, current):
            done += moved
        if done:
            log.info("rewrap_done", documents=done, key_id=current)

    return Periodic("dossier-rewrap", runtime.settings.rewrap_idle_seconds, rewrap_all)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.dossier.keys")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "DATABASE_URL", DossierSettings.model_fields["database_url"].default
        ),
    )
    parser.add_argument(
        "--current",
        default=os.environ.get("DOSSIER_CONTENT_KEY_ID", "k1"),
        help="the current master key's id (default: DOSSIER_CONTENT_KEY_ID, as the service)",
    )
    args = parser.parse_args(argv)
    pool = await create_pool(args.database_url, "dossier", max_size=1)
    try:
        async with pool.acquire() as conn:
            in_use = await keys_in_use(conn)
    finally:
        await pool.close()
    for key_id, count in sorted(in_use.items()):
        mark = "current" if key_id == args.current else "to re-wrap"
        print(f"{key_id:<32} {count:>10} documents  ({mark})")
    left = sum(n for key_id, n in in_use.items() if key_id != args.current)
    print(f"{left} documents still use a key other than {args.current}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
