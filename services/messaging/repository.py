"""messaging's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from libs.db import Conn
from libs.paging import Position


async def insert_message(
    conn: Conn,
    *,
    message_id: uuid.UUID,
    ins: str,
    sender_kind: str,
    sender_id: str,
    sender_name: str,
    subject_nonce: bytes,
    subject_sealed: bytes,
    body_nonce: bytes,
    body_sealed: bytes,
    sent_at: datetime,
    origin: str = "message",
    document_id: uuid.UUID | None = None,
) -> bool:
    """False when the deposit already has its message."""
    inserted = await conn.fetchval(
        """INSERT INTO messages (message_id, ins, sender_kind, sender_id, sender_name,
                                 subject_nonce, subject_sealed, body_nonce, body_sealed,
                                 sent_at, origin, document_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (document_id) DO NOTHING RETURNING true""",
        message_id,
        ins,
        sender_kind,
        sender_id,
        sender_name,
        subject_nonce,
        subject_sealed,
        body_nonce,
        body_sealed,
        sent_at,
        origin,
        document_id,
    )
    return bool(inserted)


async def page_candidates(
    conn: Conn, ins: str, *, after: Position | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` of the box's messages, newest first, strictly after `after`: their order
    and stored sizes, no text."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT message_id, seq, sent_at,
                  coalesce(octet_length(subject_sealed), 0) AS subject_bytes,
                  coalesce(octet_length(body_sealed), 0) AS body_bytes,
                  octet_length(sender_id) + octet_length(sender_name) AS text_bytes
           FROM messages
           WHERE ins = $1 AND ($2::timestamptz IS NULL OR (sent_at, seq) < ($2, $3))
           ORDER BY sent_at DESC, seq DESC
           LIMIT $4""",
        ins,
        None if after is None else after.at,
        None if after is None else after.seq,
        limit,
    )
    return rows


async def messages_by_id(
    conn: Conn, ins: str, message_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT message_id, sender_kind, sender_id, sender_name, subject_nonce, subject_sealed,
                  body_nonce, body_sealed, sent_at, origin, document_id
           FROM messages WHERE ins = $1 AND message_id = ANY($2::uuid[])""",
        ins,
        message_ids,
    )
    return rows
