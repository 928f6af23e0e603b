"""notifier's SQL. Every function takes the connection of the caller's transaction (or the pool)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from libs import outbox
from libs.contracts.envelope import Envelope
from libs.db import Conn, Pool
from libs.paging import Position

MAIL_CHANNEL_PREFIX = "mail_"


def mail_channel(schema: str) -> str:
    return f"{MAIL_CHANNEL_PREFIX}{schema}"


# --- contacts -------------------------------------------------------------------------------


async def lock_holder(conn: Conn, ins: str) -> asyncpg.Record:
    """The holder's row, created if need be and locked until the transaction ends.

    Alerts and contact changes for one holder go through this lock, so an alert raised while
    the contact arrives is either mailed at once or picked up by the contact change.
    """
    lock = "SELECT * FROM contacts WHERE ins = $1 FOR UPDATE"
    row = await conn.fetchrow(lock, ins)
    if row is None:  # the holder's first: two at once meet on the key, then both lock it
        await conn.execute("INSERT INTO contacts (ins) VALUES ($1) ON CONFLICT DO NOTHING", ins)
        row = await conn.fetchrow(lock, ins)
    assert row is not None
    return row


async def set_channels(
    conn: Conn, *, ins: str, channels: Sequence[str], time_zone: str, changed_at: datetime
) -> None:
    """Which channels the holder has (no address: identity keeps those), and their zone."""
    await conn.execute(
        "UPDATE contacts SET channels = $2, time_zone = $3, changed_at = $4 WHERE ins = $1",
        ins,
        list(channels),
        time_zone,
        changed_at,
    )


async def burst_of(conn: Conn, ins: str) -> asyncpg.Record:
    """The holder's current window of access alerts (the row is locked by `lock_holder`)."""
    row = await conn.fetchrow(
        "SELECT burst_started_at, burst_sent, burst_digest_id FROM contacts WHERE ins = $1", ins
    )
    assert row is not None
    return row


async def set_burst(
    conn: Conn, ins: str, started_at: datetime | None, sent: int, digest_id: UUID | None
) -> None:
    await conn.execute(
        """UPDATE contacts SET burst_started_at = $2, burst_sent = $3, burst_digest_id = $4
           WHERE ins = $1""",
        ins,
        started_at,
        sent,
        digest_id,
    )


async def set_opened(conn: Conn, ins: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE contacts SET opened_at = COALESCE(opened_at, $2) WHERE ins = $1", ins, at
    )


async def set_closed(conn: Conn, ins: str, at: datetime) -> None:
    await conn.execute("UPDATE contacts SET closed_at = $2 WHERE ins = $1", ins, at)


# --- alerts ---------------------------------------------------------------------------------


async def insert_alert(
    conn: Conn,
    *,
    alert_id: UUID,
    ins: str,
    kind: str,
    cause_event_id: UUID,
    text: str,
    created_at: datetime,
    awaiting_contact: bool,
    occurred_at: datetime | None,
    time_zone: str,
    sms_text: str,
    foldable: bool,
) -> bool:
    """False if this cause already has its alert (NTF_01: never two)."""
    inserted = await conn.fetchval(
        """INSERT INTO alerts (alert_id, ins, kind, cause_event_id, text, created_at,
                               awaiting_contact, occurred_at, time_zone, sms_text, foldable)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT DO NOTHING RETURNING true""",
        alert_id,
        ins,
        kind,
        cause_event_id,
        text,
        created_at,
        awaiting_contact,
        occurred_at,
        time_zone,
        sms_text,
        foldable,
    )
    return bool(inserted)


async def take_alerts_awaiting_contact(conn: Conn, ins: str) -> list[asyncpg.Record]:
    """In the order they were raised (a burst's first few go out on their own)."""
    return list(
        await conn.fetch(
            """WITH taken AS (
                   UPDATE alerts SET awaiting_contact = false
                   WHERE ins = $1 AND awaiting_contact
                   RETURNING alert_id, kind, text, seq, foldable)
               SELECT * FROM taken ORDER BY seq""",
            ins,
        )
    )


async def fold_alert(conn: Conn, alert_id: UUID, digest_id: UUID) -> None:
    """The alert is told by its burst's digest, not on its own (it stays in the inbox)."""
    await conn.execute(
        "UPDATE alerts SET delivery = 'in_digest', digest_id = $2 WHERE alert_id = $1",
        alert_id,
        digest_id,
    )


async def list_alerts(
    conn: Conn | Pool, ins: str, after: Position | None, limit: int, unread_only: bool
) -> list[asyncpg.Record]:
    """Newest first, from a keyset (libs.paging's position: time, then insertion order)."""
    where, args = ["ins = $1"], [ins, limit]
    if after is not None:
        args += [after.at, after.seq]
        where.append("(created_at, seq) < ($3, $4)")
    if unread_only:
        where.append("read_at IS NULL")
    return list(
        await conn.fetch(
            f"""SELECT alert_id, seq, kind, text, created_at, read_at, delivery, time_zone,
                       coalesce(occurred_at, created_at) AS told_at
                FROM alerts
                WHERE {" AND ".join(where)} ORDER BY created_at DESC, seq DESC LIMIT $2""",
            *args,
        )
    )


async def mark_read(conn: Conn | Pool, ins: str, alert_ids: list[UUID], at: datetime) -> int:
    status: str = await conn.execute(
        """UPDATE alerts SET read_at = $3
           WHERE ins = $1 AND alert_id = ANY($2::uuid[]) AND read_at IS NULL""",
        ins,
        alert_ids,
        at,
    )
    return int(status.split()[-1])


# --- digests (bursts told together) --------------------------------------------------------


async def insert_digest(
    conn: Conn, *, digest_id: UUID, ins: str, due_at: datetime, created_at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO digests (digest_id, ins, due_at, created_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""",
        digest_id,
        ins,
        due_at,
        created_at,
    )


async def due_digests(pool: Pool, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            """SELECT digest_id, ins FROM digests WHERE queued_at IS NULL AND due_at <= $1
               ORDER BY due_at LIMIT $2""",
            now,
            limit,
        )
    )


async def lock_unqueued_digest(conn: Conn, digest_id: UUID) -> asyncpg.Record | None:
    """The digest, locked, if no one has queued it yet (another replica may have)."""
    return await conn.fetchrow(
        "SELECT * FROM digests WHERE digest_id = $1 AND queued_at IS NULL FOR UPDATE", digest_id
    )


async def folded_into(conn: Conn, digest_id: UUID) -> asyncpg.Record:
    """How many alerts the digest tells, and the first and last instants they tell of."""
    row = await conn.fetchrow(
        """SELECT count(*) AS accesses, min(coalesce(occurred_at, created_at)) AS first_at,
                  max(coalesce(occurred_at, created_at)) AS last_at
           FROM alerts WHERE digest_id = $1""",
        digest_id,
    )
    assert row is not None
    return row


async def mark_digest_queued(
    conn: Conn, *, ins: str, digest_id: UUID, text: str, sms_text: str, at: datetime
) -> None:
    """Its words written, once; an alert folding later starts a digest of its own."""
    await conn.execute(
        "UPDATE digests SET text = $2, sms_text = $3, queued_at = $4 WHERE digest_id = $1",
        digest_id,
        text,
        sms_text,
        at,
    )
    await conn.execute(
        "UPDATE contacts SET burst_digest_id = NULL WHERE ins = $1 AND burst_digest_id = $2",
        ins,
        digest_id,
    )


# --- the mail outbox ------------------------------------------------------------------------


def _mail_queued(p: int) -> str:
    """A pending mail for $p (an alert's or a digest's id), its alert marked pending, and, when
    $p+5, the holder $p+1's burst set to ($p+2, $p+3, $p+4); the NOTIFY wakes the worker at
    commit. Written as `name AS (...)` parts so an outbox statement can carry them
    (`outbox.add_many(also=...)`); a data-modifying part runs once whether or not it is read."""
    return f"""
    queued AS (
        INSERT INTO mails (alert_id) VALUES (${p}) ON CONFLICT DO NOTHING
        RETURNING pg_notify('{MAIL_CHANNEL_PREFIX}' || current_schema(), '')),
    pending AS (
        UPDATE alerts SET delivery = 'pending' WHERE alert_id = ${p} RETURNING 1),
    burst AS (
        UPDATE contacts SET burst_started_at = ${p + 2}::timestamptz, burst_sent = ${p + 3}::int,
                            burst_digest_id = ${p + 4}::uuid
        WHERE ins = ${p + 1}::text AND ${p + 5}::boolean RETURNING 1)"""


async def insert_mail(
    conn: Conn,
    *,
    alert_id: UUID,
    burst: tuple[str, datetime | None, int, UUID | None] | None = None,
    event: tuple[Envelope, str] | None = None,
) -> None:
    """A pending mail, in the alert's (or digest's) transaction, in one round trip with
    the holder's new `burst` (ins, started at, sent, digest id) and the outbox row of `event`
    (an envelope and its routing key), if given.

    No address, subject or body: the worker builds them when it sends, from the alert (or the
    digest) and the contact identity gives it then.
    """
    ins, started_at, sent, digest_id = burst if burst is not None else (None, None, 0, None)
    args = (alert_id, ins, started_at, sent, digest_id, burst is not None)
    if event is not None:  # the outbox statement's own parameters are $1 to $5
        await outbox.add_many(conn, [event], also=_mail_queued(6), also_args=args)
    else:
        await conn.execute(f"WITH {_mail_queued(1)} SELECT 1", *args)


async def claim_mails(
    pool: Pool, lease: timedelta, limit: int, digest_kind: str
) -> list[asyncpg.Record]:
    """Due pending mails, leased to this worker: another replica skips them until it expires.
    A mail is an alert's or a digest's (then of kind `digest_kind`), by its id."""
    return list(
        await pool.fetch(
            """
            WITH claimed AS (
                UPDATE mails SET claimed_until = clock_timestamp() + $1, attempts = attempts + 1
                WHERE alert_id IN (
                    SELECT alert_id FROM mails
                    WHERE sent_at IS NULL
                      AND next_attempt_at <= clock_timestamp()
                      AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
                    ORDER BY next_attempt_at LIMIT $2
                    FOR UPDATE SKIP LOCKED)
                RETURNING alert_id, attempts)
            SELECT c.alert_id, c.attempts, m.email_outcome, m.sms_outcome,
                   coalesce(a.ins, d.ins) AS ins, coalesce(a.kind, $3) AS kind,
                   coalesce(a.text, d.text) AS text, coalesce(a.sms_text, d.sms_text) AS sms_text
            FROM claimed c JOIN mails m USING (alert_id)
            LEFT JOIN alerts a USING (alert_id)
            LEFT JOIN digests d ON d.digest_id = c.alert_id
            """,
            lease,
            limit,
            digest_kind,
        )
    )


async def mark_done(
    pool: Pool, alert_id: UUID, outcome: str, at: datetime, *, sent: str | None = None
) -> None:
    """Finished: `sent`, or `no_address` (the holder has no e-mail now; the alert is in the
    space, SPC_06). `at` is the shared clock's, which the pruning schedule counts from.
    `sent`: a channel sent with this attempt and not marked yet (`mark_channel_done`)."""
    # One statement, so one round trip and atomic without BEGIN and COMMIT of its own.
    await pool.execute(
        """WITH finished AS (
               UPDATE mails SET sent_at = $3, outcome = $2, claimed_until = NULL,
                                last_error = NULL,
                                email_outcome = CASE WHEN $4 = 'email' THEN 'sent'
                                                     ELSE email_outcome END,
                                sms_outcome = CASE WHEN $4 = 'sms' THEN 'sent'
                                                   ELSE sms_outcome END
               WHERE alert_id = $1 RETURNING 1)
           UPDATE alerts SET delivery = $2 WHERE alert_id = $1""",
        alert_id,
        outcome,
        at,
        sent,
    )


async def mark_channel_done(pool: Pool, alert_id: UUID, channel: str, outcome: str) -> None:
    """This channel is done for the alert (`sent`, or `given_up`): a retry skips it."""
    column = {"email": "email_outcome", "sms": "sms_outcome"}[channel]
    await pool.execute(f"UPDATE mails SET {column} = $2 WHERE alert_id = $1", alert_id, outcome)


async def mark_failed(pool: Pool, alert_id: UUID, error: str, retry_in: timedelta) -> None:
    await pool.execute(
        """UPDATE mails SET last_error = $2, claimed_until = NULL,
                            next_attempt_at = clock_timestamp() + $3
           WHERE alert_id = $1""",
        alert_id,
        error[:1000],
        retry_in,
    )


async def prune_mails(pool: Pool, finished_before: datetime) -> int:
    """Delete mail rows finished before the given time (the alerts themselves stay)."""
    status = await pool.execute(
        "DELETE FROM mails WHERE sent_at IS NOT NULL AND sent_at < $1", finished_before
    )
    return int(status.split()[-1])
