"""dossier's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from libs.db import Conn
from libs.paging import Position


async def space_status(conn: Conn, ins: str, *, lock: bool = False) -> str | None:
    """The space's status as last heard from identity; None when nothing was heard.

    With `lock`, the row is share-locked until the transaction ends, so a closure being recorded
    concurrently waits for this transaction (or this transaction sees it).
    """
    sql = "SELECT status FROM spaces WHERE ins = $1" + (" FOR SHARE" if lock else "")
    status: str | None = await conn.fetchval(sql, ins)
    return status


async def record_space_status(conn: Conn, ins: str, status: str, changed_at: datetime) -> bool:
    """Apply a lifecycle change unless a later one is already recorded; True if applied.

    Events may arrive out of order (a requeue reorders): the change that happened last at
    identity wins, and at the same instant a closure wins over an opening.
    """
    applied = await conn.fetchval(
        """INSERT INTO spaces (ins, status, changed_at) VALUES ($1, $2, $3)
           ON CONFLICT (ins) DO UPDATE SET status = EXCLUDED.status,
                                           changed_at = EXCLUDED.changed_at
           WHERE spaces.changed_at < EXCLUDED.changed_at
              OR (spaces.changed_at = EXCLUDED.changed_at AND EXCLUDED.status = 'closed')
           RETURNING true""",
        ins,
        status,
        changed_at,
    )
    return bool(applied)


async def insert_document(
    conn: Conn,
    *,
    document_id: UUID,
    ins: str,
    document_type: str,
    title_nonce: bytes,
    title_sealed: bytes,
    media_type: str,
    author_kind: str,
    author_id: str,
    author_name: str,
    decision_id: UUID,
    decision_rule: str,
    deposited_at: datetime,
    nonce: bytes,
    content: bytes,
) -> None:
    await conn.execute(
        """INSERT INTO documents (document_id, ins, document_type, title_nonce, title_sealed,
                                  media_type, author_kind, author_id, author_name, decision_id,
                                  decision_rule, deposited_at, nonce, content)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        document_id,
        ins,
        document_type,
        title_nonce,
        title_sealed,
        media_type,
        author_kind,
        author_id,
        author_name,
        decision_id,
        decision_rule,
        deposited_at,
        nonce,
        content,
    )


async def page_candidates(
    conn: Conn,
    ins: str,
    *,
    document_types: list[str] | None,
    include_masked: bool,
    after: Position | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` of the holder's documents within a scope (None: every type), newest first,
    strictly after `after`: their order, scope fields and stored sizes, no content.

    The scope is applied here so that content outside it is never even loaded; the caller
    applies it again with the domain's rule.
    """
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT document_id, seq, deposited_at, document_type, masked,
                  octet_length(content) AS content_bytes,
                  coalesce(octet_length(title_sealed), 0) AS title_bytes,
                  octet_length(author_id) + octet_length(author_name)
                      + octet_length(media_type) AS text_bytes
           FROM documents
           WHERE ins = $1
             AND ($2::text[] IS NULL OR document_type = ANY($2::text[]))
             AND ($3 OR NOT masked)
             AND ($4::timestamptz IS NULL OR (deposited_at, seq) < ($4, $5))
           ORDER BY deposited_at DESC, seq DESC
           LIMIT $6""",
        ins,
        document_types,
        include_masked,
        None if after is None else after.at,
        None if after is None else after.seq,
        limit,
    )
    return rows


async def documents_by_id(conn: Conn, ins: str, document_ids: list[UUID]) -> list[asyncpg.Record]:
    """The holder's documents among these ids, with their sealed title and content."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT document_id, document_type, masked, media_type, author_id, author_name,
                  deposited_at, title_nonce, title_sealed, nonce, content
           FROM documents
           WHERE ins = $1 AND document_id = ANY($2::uuid[])""",
        ins,
        document_ids,
    )
    return rows
