"""messaging's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
    thread_id: uuid.UUID,
    origin: str = "message",
    document_id: uuid.UUID | None = None,
) -> bool:
    """False when the thread already has this deposit's notice. A message posted moves its
    thread's last activity, in the same statement."""
    inserted = await conn.fetchval(
        """WITH posted AS (
               INSERT INTO messages (message_id, ins, sender_kind, sender_id, sender_name,
                                     subject_nonce, subject_sealed, body_nonce, body_sealed,
                                     sent_at, origin, document_id, thread_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               ON CONFLICT (thread_id, document_id) DO NOTHING RETURNING true AS posted),
           touched AS (
               UPDATE threads SET last_message_at = greatest(last_message_at, $10)
               WHERE thread_id = $13 AND EXISTS (SELECT FROM posted) RETURNING 1)
           SELECT posted FROM posted""",
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
        thread_id,
    )
    return bool(inserted)


async def page_candidates(
    conn: Conn,
    ins: str,
    *,
    after: Position | None,
    limit: int,
    thread_id: uuid.UUID | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` messages, newest first, strictly after `after`: their order and stored
    sizes, no text. Those of one thread, or else the holder's box (every thread the holder's
    side takes part in)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT m.message_id, m.seq, m.sent_at,
                  coalesce(octet_length(m.subject_sealed), 0) AS subject_bytes,
                  coalesce(octet_length(m.body_sealed), 0) AS body_bytes,
                  octet_length(m.sender_id) + octet_length(m.sender_name) AS text_bytes,
                  (SELECT count(*) FROM attachments a WHERE a.message_id = m.message_id)::int
                      AS attachments
           FROM messages m
           WHERE m.ins = $1
             AND CASE WHEN $5::uuid IS NULL
                      THEN EXISTS (SELECT 1 FROM thread_participants p
                                   WHERE p.thread_id = m.thread_id AND p.kind = 'holder'
                                     AND p.id = $1)
                      ELSE m.thread_id = $5 END
             AND ($2::timestamptz IS NULL OR (m.sent_at, m.seq) < ($2, $3))
           ORDER BY m.sent_at DESC, m.seq DESC
           LIMIT $4""",
        ins,
        None if after is None else after.at,
        None if after is None else after.seq,
        limit,
        thread_id,
    )
    return rows


async def messages_by_id(
    conn: Conn, ins: str, message_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT message_id, sender_kind, sender_id, sender_name, subject_nonce, subject_sealed,
                  body_nonce, body_sealed, sent_at, origin, document_id, thread_id
           FROM messages WHERE ins = $1 AND message_id = ANY($2::uuid[])""",
        ins,
        message_ids,
    )
    return rows


# --- threads --------------------------------------------------------------------------------


async def insert_thread(
    conn: Conn,
    *,
    thread_id: uuid.UUID,
    ins: str,
    participants: Sequence[tuple[str, str]],
    at: datetime,
) -> None:
    """A conversation and who takes part, in the order they were named."""
    await conn.execute(
        """INSERT INTO threads (thread_id, ins, kind, started_at, last_message_at)
           VALUES ($1, $2, 'conversation', $3, $3)""",
        thread_id,
        ins,
        at,
    )
    await conn.executemany(
        """INSERT INTO thread_participants (thread_id, ins, kind, id, position)
           VALUES ($1, $2, $3, $4, $5)""",
        [(thread_id, ins, side, id_, i) for i, (side, id_) in enumerate(participants)],
    )


async def notices_thread(
    conn: Conn, *, ins: str, side: str, reader: str, at: datetime
) -> uuid.UUID:
    """The thread of the deposits told to `reader` about this space, made the first time."""
    notices_for = f"{side}:{reader}"
    find = "SELECT thread_id FROM threads WHERE ins = $1 AND notices_for = $2"
    found: uuid.UUID | None = await conn.fetchval(find, ins, notices_for)
    if found is not None:  # made, with its reader, in the transaction that made it
        return found
    await conn.execute(
        """INSERT INTO threads (thread_id, ins, kind, notices_for, started_at, last_message_at)
           VALUES ($1, $2, 'notices', $3, $4, $4)
           ON CONFLICT (ins, notices_for) DO NOTHING""",
        uuid.uuid4(),
        ins,
        notices_for,
        at,
    )
    thread_id: uuid.UUID = await conn.fetchval(find, ins, notices_for)
    await conn.execute(
        """INSERT INTO thread_participants (thread_id, ins, kind, id, position)
           VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING""",
        thread_id,
        ins,
        side,
        reader,
    )
    return thread_id


async def thread(
    conn: Conn, ins: str, thread_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    """With `lock`, held until the transaction ends: the messages of one thread are written one
    after the other, its latest activity with them."""
    found: asyncpg.Record | None = await conn.fetchrow(
        "SELECT thread_id, seq, ins, kind, started_at, last_message_at FROM threads"
        " WHERE ins = $1 AND thread_id = $2" + (" FOR UPDATE" if lock else ""),
        ins,
        thread_id,
    )
    return found


async def participants(
    conn: Conn, thread_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    rows = await conn.fetch(
        """SELECT thread_id, kind, id FROM thread_participants
           WHERE thread_id = ANY($1::uuid[]) ORDER BY thread_id, position""",
        list(thread_ids),
    )
    found: dict[uuid.UUID, list[tuple[str, str]]] = {t: [] for t in thread_ids}
    for row in rows:
        found[row["thread_id"]].append((row["kind"], row["id"]))
    return found


async def thread_candidates(
    conn: Conn,
    *,
    side: str,
    party: str,
    establishments: Sequence[str] = (),
    ins: str | None,
    after: Position | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` of the threads `party` takes part in (about `ins` only, if given), latest
    activity first, strictly after `after`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT t.thread_id, t.seq, t.ins, t.kind, t.started_at, t.last_message_at
           FROM threads t
           WHERE t.thread_id IN (
                   SELECT p.thread_id FROM thread_participants p
                   WHERE (p.kind = $1 AND p.id = $2)
                      OR (p.kind = 'establishment' AND p.id = ANY($7::text[])))
             AND ($3::text IS NULL OR t.ins = $3)
             AND ($4::timestamptz IS NULL OR (t.last_message_at, t.seq) < ($4, $5))
           ORDER BY t.last_message_at DESC, t.seq DESC
           LIMIT $6""",
        side,
        party,
        ins,
        None if after is None else after.at,
        None if after is None else after.seq,
        limit,
        establishments,
    )
    return rows


async def first_subjects(conn: Conn, thread_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    """Each thread's first message: its subject is the thread's."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT DISTINCT ON (thread_id) thread_id, message_id, ins, subject_nonce,
                  subject_sealed
           FROM messages WHERE thread_id = ANY($1::uuid[])
           ORDER BY thread_id, sent_at, seq""",
        list(thread_ids),
    )
    return rows


# --- attachments ----------------------------------------------------------------------------


async def insert_attachment(conn: Conn, attachment: dict[str, object]) -> None:
    columns = ", ".join(attachment)
    values = ", ".join(f"${i}" for i in range(1, len(attachment) + 1))
    await conn.execute(
        f"INSERT INTO attachments ({columns}) VALUES ({values})", *attachment.values()
    )


async def attachments_of(conn: Conn, message_ids: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
    """What a listing says of the messages' attachments: never their bytes."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT attachment_id, message_id, ins, position, media_type, size, sha256,
                  name_nonce, name_sealed
           FROM attachments WHERE message_id = ANY($1::uuid[]) ORDER BY message_id, position""",
        list(message_ids),
    )
    return rows


async def attachment(conn: Conn, ins: str, attachment_id: uuid.UUID) -> asyncpg.Record | None:
    found: asyncpg.Record | None = await conn.fetchrow(
        """SELECT a.*, m.thread_id FROM attachments a JOIN messages m USING (message_id)
           WHERE a.ins = $1 AND a.attachment_id = $2""",
        ins,
        attachment_id,
    )
    return found


# --- treating physicians (MSG_02) -----------------------------------------------------------


async def set_treating_physician(conn: Conn, ins: str, rpps: str, since: datetime) -> bool:
    """Record the holder's treating physician unless a later one is held; True when recorded."""
    recorded = await conn.fetchval(
        """INSERT INTO treating_physicians AS held (ins, rpps, since) VALUES ($1, $2, $3)
           ON CONFLICT (ins) DO UPDATE SET rpps = EXCLUDED.rpps, since = EXCLUDED.since
           WHERE EXCLUDED.since > held.since
           RETURNING true""",
        ins,
        rpps,
        since,
    )
    return bool(recorded)


async def treating_physician(conn: Conn, ins: str) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT rpps FROM treating_physicians WHERE ins = $1", ins
    )
    return found


# --- establishments' staff (MSG_01) ---------------------------------------------------------


async def set_staff(conn: Conn, finess: str, rpps: str, present: bool, at: datetime) -> None:
    """The latest change identity made wins, whatever the order they arrive in."""
    await conn.execute(
        """INSERT INTO establishment_staff AS s (finess, rpps, present, changed_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (finess, rpps) DO UPDATE SET present = EXCLUDED.present,
                                                    changed_at = EXCLUDED.changed_at
           WHERE EXCLUDED.changed_at > s.changed_at""",
        finess,
        rpps,
        present,
        at,
    )


async def establishments_of(conn: Conn, rpps: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT finess FROM establishment_staff WHERE rpps = $1 AND present", rpps
    )
    return [r["finess"] for r in rows]
