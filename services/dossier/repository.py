"""dossier's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from libs.db import Conn


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
    title: str,
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
        """INSERT INTO documents (document_id, ins, document_type, title, media_type,
                                  author_kind, author_id, author_name, decision_id,
                                  decision_rule, deposited_at, nonce, content)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        document_id,
        ins,
        document_type,
        title,
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


async def list_documents(
    conn: Conn,
    ins: str,
    *,
    document_types: list[str] | None,
    include_masked: bool,
) -> list[asyncpg.Record]:
    """The holder's documents within a scope (None: every type), newest first.

    The scope is applied here so that content outside it is never even loaded; the caller
    applies it again with the domain's rule.
    """
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT document_id, ins, document_type, title, media_type, author_id, author_name,
                  deposited_at, masked, nonce, content
           FROM documents
           WHERE ins = $1
             AND ($2::text[] IS NULL OR document_type = ANY($2::text[]))
             AND ($3 OR NOT masked)
           ORDER BY deposited_at DESC, seq DESC""",
        ins,
        document_types,
        include_masked,
    )
    return rows
