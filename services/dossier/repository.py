"""dossier's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from libs.db import Conn
from libs.paging import Position
from services.dossier.domain import SealedDocument


async def insert_document(
    conn: Conn,
    *,
    document_id: UUID,
    ins: str,
    document_type: str,
    sealed: SealedDocument,
    media_type: str,
    author_kind: str,
    author_id: str,
    author_name: str,
    decision_id: UUID,
    decision_rule: str,
    deposited_at: datetime,
    legacy_id: str | None = None,
    legacy_export: str | None = None,
    staged: bool = False,
) -> None:
    await conn.execute(
        """INSERT INTO documents (document_id, ins, document_type, title_nonce, title_sealed,
                                  media_type, author_kind, author_id, author_name, decision_id,
                                  decision_rule, deposited_at, nonce, content, key_id, key_nonce,
                                  wrapped_key, content_sha256, size, legacy_id, legacy_export,
                                  staged)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21, $22)""",
        document_id,
        ins,
        document_type,
        sealed.title_nonce,
        sealed.title,
        media_type,
        author_kind,
        author_id,
        author_name,
        decision_id,
        decision_rule,
        deposited_at,
        sealed.nonce,
        sealed.content,
        sealed.key.key_id,
        sealed.key.nonce,
        sealed.key.wrapped,
        sealed.sha256,
        sealed.size,
        legacy_id,
        legacy_export,
        staged,
    )


async def page_candidates(
    conn: Conn,
    ins: str,
    *,
    document_types: list[str] | None,
    include_masked: bool,
    after: Position | None,
    limit: int,
    author: str | None = None,
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
           WHERE ins = $1 AND NOT staged  -- a legacy record waits for activation (SPC_08)
             AND ($2::text[] IS NULL OR document_type = ANY($2::text[]))
             AND ($3 OR NOT masked OR author_id = $7)
             AND ($4::timestamptz IS NULL OR (deposited_at, seq) < ($4, $5))
           ORDER BY deposited_at DESC, seq DESC
           LIMIT $6""",
        ins,
        document_types,
        include_masked,
        None if after is None else after.at,
        None if after is None else after.seq,
        limit,
        author,
    )
    return rows


async def set_masked(conn: Conn, ins: str, document_id: UUID, masked: bool) -> bool:
    """DOC_06; False if the holder has no such document."""
    found = await conn.fetchval(
        "UPDATE documents SET masked = $3 WHERE ins = $1 AND document_id = $2 AND NOT staged"
        " RETURNING true",
        ins,
        document_id,
        masked,
    )
    return bool(found)


async def documents_by_id(conn: Conn, ins: str, document_ids: list[UUID]) -> list[asyncpg.Record]:
    """The holder's documents among these ids, with their sealed title and content."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT document_id, document_type, masked, media_type, author_id, author_name,
                  deposited_at, title_nonce, title_sealed, nonce, content, key_id, key_nonce,
                  wrapped_key, content_sha256
           FROM documents
           WHERE ins = $1 AND document_id = ANY($2::uuid[])""",
        ins,
        document_ids,
    )
    return rows


# --- the legacy record (SPC_08) -----------------------------------------------------------------


async def legacy_hash(conn: Conn, ins: str, legacy_id: str) -> bytes | None:
    """The content hash of a legacy document already imported, None if it is not."""
    found: bytes | None = await conn.fetchval(
        "SELECT content_sha256 FROM documents WHERE ins = $1 AND legacy_id = $2",
        ins,
        legacy_id,
    )
    return found


async def is_activated(conn: Conn, ins: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM activated_spaces WHERE ins = $1", ins))


async def record_activation(conn: Conn, ins: str, at: datetime) -> int:
    """The space is activated: its staged legacy documents are served from now on."""
    await conn.execute(
        "INSERT INTO activated_spaces (ins, activated_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ins,
        at,
    )
    status: str = await conn.execute(
        "UPDATE documents SET staged = false WHERE ins = $1 AND staged", ins
    )
    return int(status.split()[-1])
