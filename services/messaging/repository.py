"""messaging's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from libs.db import Conn


async def set_space_status(conn: Conn, ins: str, status: str, at: datetime) -> None:
    """Project a lifecycle event; an event older than the status we hold changes nothing."""
    await conn.execute(
        """INSERT INTO spaces (ins, status, status_at) VALUES ($1, $2, $3)
           ON CONFLICT (ins) DO UPDATE SET status = EXCLUDED.status, status_at = EXCLUDED.status_at
           WHERE spaces.status_at <= EXCLUDED.status_at""",
        ins,
        status,
        at,
    )


async def space_status(conn: Conn, ins: str, *, lock: bool = False) -> str | None:
    query = "SELECT status FROM spaces WHERE ins = $1"
    status: str | None = await conn.fetchval(query + (" FOR SHARE" if lock else ""), ins)
    return status


async def insert_message(
    conn: Conn,
    *,
    message_id: uuid.UUID,
    ins: str,
    sender_kind: str,
    sender_id: str,
    sender_name: str,
    subject: str,
    body: str,
    sent_at: datetime,
    origin: str = "message",
    document_id: uuid.UUID | None = None,
) -> bool:
    """False when the deposit already has its message."""
    inserted = await conn.fetchval(
        """INSERT INTO messages (message_id, ins, sender_kind, sender_id, sender_name, subject,
                                 body, sent_at, origin, document_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (document_id) DO NOTHING RETURNING true""",
        message_id,
        ins,
        sender_kind,
        sender_id,
        sender_name,
        subject,
        body,
        sent_at,
        origin,
        document_id,
    )
    return bool(inserted)


async def box(conn: Conn, ins: str, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT message_id, sender_kind, sender_id, sender_name, subject, body, sent_at,
                  origin, document_id
           FROM messages WHERE ins = $1 ORDER BY sent_at DESC, seq DESC LIMIT $2""",
        ins,
        limit,
    )
    return rows
