"""dossier's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
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
    held_back: bool = False,
) -> None:
    await conn.execute(
        """INSERT INTO documents (document_id, ins, document_type, title_nonce, title_sealed,
                                  media_type, author_kind, author_id, author_name, decision_id,
                                  decision_rule, deposited_at, nonce, content, key_id, key_nonce,
                                  wrapped_key, content_sha256, size, legacy_id, legacy_export,
                                  staged, held_back)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21, $22, $23)""",
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
        held_back,
    )


@dataclass(frozen=True)
class Filters:
    """What a reader asked to narrow a listing to (within their scope)."""

    document_types: list[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    author_id: str | None = None
    document_id: UUID | None = None


NO_FILTERS = Filters()


async def page_candidates(
    conn: Conn,
    ins: str,
    *,
    document_types: list[str] | None,
    include_masked: bool,
    after: Position | None,
    limit: int,
    author: str | None = None,
    filters: Filters = NO_FILTERS,
    include_held_back: bool = True,
) -> list[asyncpg.Record]:
    """Up to `limit` of the holder's documents within a scope (None: every type) and the
    filters, newest first, strictly after `after`: their order, scope fields and stored sizes,
    no content.

    The scope is applied here so that content outside it is never even loaded; the caller
    applies it again with the domain's rule. Only the conditions that apply are written, so
    each shape of listing gets a plan on the holder's index, never a generic one.
    """
    where = ["ins = $1", "NOT staged"]  # a legacy record waits for activation (SPC_08)
    args: list[object] = [ins, limit]

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if document_types is not None:
        where.append(f"document_type = ANY({arg(document_types)}::text[])")
    if filters.document_types is not None:
        where.append(f"document_type = ANY({arg(filters.document_types)}::text[])")
    if not include_masked:
        where.append(f"(NOT masked OR author_id = {arg(author)})" if author else "NOT masked")
    if not include_held_back:
        where.append("(NOT held_back OR released_at IS NOT NULL)")
    if after is not None:
        where.append(f"(deposited_at, seq) < ({arg(after.at)}, {arg(after.seq)})")
    if filters.since is not None:
        where.append(f"deposited_at >= {arg(filters.since)}")
    if filters.until is not None:
        where.append(f"deposited_at < {arg(filters.until)}")
    if filters.author_id is not None:
        where.append(f"author_id = {arg(filters.author_id)}")
    if filters.document_id is not None:
        where.append(f"document_id = {arg(filters.document_id)}")
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT document_id, seq, deposited_at, document_type, masked,
                   octet_length(content) AS content_bytes,
                   coalesce(octet_length(title_sealed), 0) AS title_bytes,
                   octet_length(author_id) + octet_length(author_name)
                       + octet_length(media_type) AS text_bytes
            FROM documents
            WHERE {" AND ".join(where)}
            ORDER BY deposited_at DESC, seq DESC
            LIMIT $2""",
        *args,
    )
    return rows


async def release(
    conn: Conn, ins: str, document_id: UUID, at: datetime, reason: str
) -> tuple[bool, bool]:
    """DOC_07: (the document exists, it was released now); releasing twice changes nothing."""
    released = await conn.fetchval(
        """UPDATE documents SET released_at = $3, release_reason = $4
           WHERE ins = $1 AND document_id = $2 AND held_back AND released_at IS NULL
           RETURNING true""",
        ins,
        document_id,
        at,
        reason,
    )
    if released:
        return True, True
    exists = await conn.fetchval(
        "SELECT true FROM documents WHERE ins = $1 AND document_id = $2", ins, document_id
    )
    return bool(exists), False


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
                  wrapped_key, content_sha256, held_back, released_at
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
