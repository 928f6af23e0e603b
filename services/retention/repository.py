"""retention's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import asyncpg

from libs.db import Conn


async def insert_deadline(
    conn: Conn,
    *,
    ins: str,
    kind: str,
    starts_at: datetime,
    due_at: datetime,
    now: datetime,
    cause_event_id: uuid.UUID,
    correlation_id: str,
    subject: str = "",
) -> uuid.UUID | None:
    """A new pending deadline; None when one of that kind (and subject) is already pending for
    the space."""
    deadline_id: uuid.UUID | None = await conn.fetchval(
        """INSERT INTO deadlines (deadline_id, ins, kind, due_at, created_at, cause_event_id,
                                  correlation_id, starts_at, subject)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (ins, kind, subject) WHERE fired_at IS NULL AND cancelled_at IS NULL
           DO NOTHING
           RETURNING deadline_id""",
        uuid.uuid4(),
        ins,
        kind,
        due_at,
        now,
        cause_event_id,
        correlation_id,
        starts_at,
        subject,
    )
    return deadline_id


async def cancel_pending(
    conn: Conn,
    ins: str,
    kinds: tuple[str, ...],
    *,
    started_by: datetime,
    now: datetime,
    subject: str | None = None,
) -> int:
    """Cancel the space's pending deadlines of these kinds whose period started by then (only
    those of `subject` when one is named)."""
    result: str = await conn.execute(
        """UPDATE deadlines SET cancelled_at = $4
           WHERE ins = $1 AND kind = ANY($2::text[]) AND starts_at <= $3
             AND ($5::text IS NULL OR subject = $5)
             AND fired_at IS NULL AND cancelled_at IS NULL""",
        ins,
        list(kinds),
        started_by,
        now,
        subject,
    )
    return int(result.split()[-1])


async def cancel_purges_due_after(conn: Conn, ins: str, due_at: datetime, now: datetime) -> int:
    result: str = await conn.execute(
        """UPDATE deadlines SET cancelled_at = $3
           WHERE ins = $1 AND kind = 'space_purge' AND due_at > $2
             AND fired_at IS NULL AND cancelled_at IS NULL""",
        ins,
        due_at,
        now,
    )
    return int(result.split()[-1])


async def lock_holder(conn: Conn, ins: str) -> None:
    """Until the transaction ends: one lifecycle change of a space at a time. Deliveries are
    applied concurrently, and a closure and a deletion request (or a reopening) decide together
    which purge stays pending."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('retention:' || $1, 0))", ins)


async def try_sweep_lock(conn: Conn, key: int) -> bool:
    """Within the caller's transaction: True if this replica is the one sweeping now."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", key))


async def claim_due(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT deadline_id, ins, kind, subject, starts_at, due_at, cause_event_id,
                  correlation_id
           FROM deadlines
           WHERE due_at <= $1 AND fired_at IS NULL AND cancelled_at IS NULL
           ORDER BY due_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return rows


async def mark_fired(conn: Conn, deadline_ids: list[uuid.UUID], now: datetime) -> None:
    await conn.execute(
        "UPDATE deadlines SET fired_at = $2 WHERE deadline_id = ANY($1::uuid[])",
        deadline_ids,
        now,
    )


async def deadlines_of(conn: Conn, ins: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM deadlines WHERE ins = $1 ORDER BY created_at, due_at", ins
    )
    return rows


# --- purges (RET_01) ------------------------------------------------------------------------


async def delete_deadlines_of(conn: Conn, ins: str) -> int:
    """Retention's own part of a purge: every deadline of the holder, fired or not."""
    return int((await conn.execute("DELETE FROM deadlines WHERE ins = $1", ins)).split()[-1])


async def insert_purge(
    conn: Conn,
    *,
    purge_id: uuid.UUID,
    ins: str,
    ins_key: str,
    closed_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO purges (purge_id, ins, ins_key, closed_at, requested_at, last_requested_at)
           VALUES ($1, $2, $3, $4, $5, $5)""",
        purge_id,
        ins,
        ins_key,
        closed_at,
        now,
    )


async def insert_answer(
    conn: Conn,
    *,
    purge_id: uuid.UUID,
    service: str,
    rows: dict[str, int],
    skipped: str | None,
    purged_at: datetime,
    now: datetime,
) -> bool:
    """The first answer of a service to a purge; False for another one (a retry answered)."""
    recorded = await conn.fetchval(
        """INSERT INTO purge_answers (purge_id, service, rows, skipped, purged_at, received_at)
           SELECT $1, $2, $3::jsonb, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM purges
                                                              WHERE purge_id = $1)
           ON CONFLICT (purge_id, service) DO NOTHING
           RETURNING true""",
        purge_id,
        service,
        json.dumps(rows),
        skipped,
        purged_at,
        now,
    )
    return bool(recorded)


async def add_to_answer(
    conn: Conn, purge_id: uuid.UUID, service: str, rows: dict[str, int]
) -> None:
    await conn.execute(
        "UPDATE purge_answers SET rows = rows || $3::jsonb WHERE purge_id = $1 AND service = $2",
        purge_id,
        service,
        json.dumps(rows),
    )


async def lock_purge(conn: Conn, purge_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM purges WHERE purge_id = $1 FOR UPDATE", purge_id
    )
    return row


async def answered(conn: Conn, purge_id: uuid.UUID) -> list[str]:
    found: list[str] = [
        r["service"]
        for r in await conn.fetch("SELECT service FROM purge_answers WHERE purge_id = $1", purge_id)
    ]
    return found


async def complete_purge(conn: Conn, purge_id: uuid.UUID, now: datetime) -> None:
    """Every service has answered: the proof keeps no INS."""
    await conn.execute(
        "UPDATE purges SET completed_at = $2, ins = NULL WHERE purge_id = $1", purge_id, now
    )


async def claim_unanswered(conn: Conn, before: datetime, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT * FROM purges
           WHERE completed_at IS NULL AND last_requested_at <= $1
           ORDER BY last_requested_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        before,
        limit,
    )
    return rows


async def mark_requested_again(conn: Conn, purge_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        """UPDATE purges SET last_requested_at = $2, requests = requests + 1
           WHERE purge_id = $1""",
        purge_id,
        now,
    )


async def purges_by(
    conn: Conn, *, purge_id: uuid.UUID | None, ins_key: str | None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT * FROM purges
           WHERE ($1::uuid IS NULL OR purge_id = $1) AND ($2::text IS NULL OR ins_key = $2)
           ORDER BY requested_at DESC
           LIMIT 20""",
        purge_id,
        ins_key,
    )
    return rows


async def answers_of(conn: Conn, purge_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM purge_answers WHERE purge_id = $1 ORDER BY service", purge_id
    )
    return rows
