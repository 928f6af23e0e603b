"""retention's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

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


async def try_sweep_lock(conn: Conn, key: int) -> bool:
    """Within the caller's transaction: True if this replica is the one sweeping now."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", key))


async def claim_due(conn: Conn, now: datetime, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT deadline_id, ins, kind, subject, due_at, cause_event_id, correlation_id
           FROM deadlines
           WHERE due_at <= $1 AND fired_at IS NULL AND cancelled_at IS NULL
           ORDER BY due_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return rows


async def mark_fired(conn: Conn, deadline_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE deadlines SET fired_at = $2 WHERE deadline_id = $1", deadline_id, now
    )


async def deadlines_of(conn: Conn, ins: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM deadlines WHERE ins = $1 ORDER BY created_at, due_at", ins
    )
    return rows
