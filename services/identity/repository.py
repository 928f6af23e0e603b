"""identity's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.db import Conn, Pool
from services.identity.domain import Guard, SignInPolicy


async def insert_person(
    conn: Conn,
    *,
    ins: str,
    first_name: str,
    last_name: str,
    birth_date: date,
    email: str | None,
    phone: str | None,
    legal_representative_email: str | None,
    now: datetime,
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO persons (ins, first_name, last_name, birth_date, email, phone,
                                legal_representative_email, registered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true""",
        ins,
        first_name,
        last_name,
        birth_date,
        email,
        phone,
        legal_representative_email,
        now,
    )
    return bool(inserted)


async def get_person(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM persons WHERE ins = $1", ins)


async def insert_space(conn: Conn, ins: str, announced_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO spaces (ins, status, announced_at) VALUES ($1, 'announced', $2)",
        ins,
        announced_at,
    )


async def get_space(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM spaces WHERE ins = $1", ins)


async def lock_space(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM spaces WHERE ins = $1 FOR UPDATE", ins)


async def set_space_status(conn: Conn, ins: str, status: str, at: datetime) -> None:
    column = {
        "open": "opened_at",
        "objected": "objected_at",
        "closed": "closed_at",
        "reactivated": "reactivated_at",
    }[status]
    status = "open" if status == "reactivated" else status
    await conn.execute(
        f"UPDATE spaces SET status = $2, {column} = $3 WHERE ins = $1", ins, status, at
    )


async def insert_professional(
    conn: Conn,
    *,
    rpps: str,
    first_name: str,
    last_name: str,
    profession: str,
    specialty: str | None,
    card_public_key: str,
    now: datetime,
    country: str | None = None,
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO professionals (rpps, first_name, last_name, profession, specialty,
                                      card_public_key, registered_at, country)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true""",
        rpps,
        first_name,
        last_name,
        profession,
        specialty,
        card_public_key,
        now,
        country,
    )
    return bool(inserted)


async def get_professional(conn: Conn, rpps: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM professionals WHERE rpps = $1", rpps)


async def insert_challenge(
    conn: Conn, challenge: str, kind: str, subject: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO challenges (challenge, kind, subject, expires_at) VALUES ($1, $2, $3, $4)",
        challenge,
        kind,
        subject,
        expires_at,
    )


async def use_challenge(conn: Conn, challenge: str, kind: str, subject: str, now: datetime) -> bool:
    """Spend a live challenge: it is deleted, so it can never be used twice."""
    used = await conn.fetchval(
        """DELETE FROM challenges
           WHERE challenge = $1 AND kind = $2 AND subject = $3 AND expires_at > $4
           RETURNING true""",
        challenge,
        kind,
        subject,
        now,
    )
    return bool(used)


# --- holder sign-in -------------------------------------------------------------------------


async def count_request(conn: Conn, key: str, window_start: datetime) -> int:
    """One more request for `key` in this window; the count so far, this one included."""
    count = await conn.fetchval(
        """INSERT INTO rate_windows (key, window_start, count) VALUES ($1, $2, 1)
           ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
           RETURNING count""",
        key,
        window_start,
    )
    return int(count)


async def replace_code(
    conn: Conn, subject: str, code_hash: str, issued_at: datetime, expires_at: datetime
) -> None:
    """The subject's one live code (a holder's INS, `proxy:<id>`): it revokes any previous one."""
    await conn.execute(
        """INSERT INTO sign_in_codes (subject, code_hash, issued_at, expires_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (subject) DO UPDATE
           SET code_hash = EXCLUDED.code_hash, issued_at = EXCLUDED.issued_at,
               expires_at = EXCLUDED.expires_at""",
        subject,
        code_hash,
        issued_at,
        expires_at,
    )


async def revoke_code(conn: Conn, subject: str) -> None:
    await conn.execute("DELETE FROM sign_in_codes WHERE subject = $1", subject)


async def get_code(conn: Conn, subject: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sign_in_codes WHERE subject = $1", subject)


async def lock_sign_in(conn: Conn, subject: str) -> None:
    """Sign-in attempts for one subject, one at a time (until the transaction ends), whether or
    not a person, a proxy or a guard row exists for it."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sign-in:' || $1))", subject)


async def get_guard(conn: Conn, ins: str) -> Guard:
    row = await conn.fetchrow(
        "SELECT failures, first_failure_at, locked_until FROM sign_in_guards WHERE ins = $1", ins
    )
    if row is None:
        return Guard()
    return Guard(row["failures"], row["first_failure_at"], row["locked_until"])


async def save_guard(conn: Conn, ins: str, guard: Guard) -> None:
    await conn.execute(
        """INSERT INTO sign_in_guards (ins, failures, first_failure_at, locked_until)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (ins) DO UPDATE
           SET failures = EXCLUDED.failures, first_failure_at = EXCLUDED.first_failure_at,
               locked_until = EXCLUDED.locked_until""",
        ins,
        guard.failures,
        guard.first_failure_at,
        guard.locked_until,
    )


async def delete_guard(conn: Conn, ins: str) -> None:
    await conn.execute("DELETE FROM sign_in_guards WHERE ins = $1", ins)


async def prune(conn: Conn | Pool, now: datetime, policy: SignInPolicy) -> dict[str, int]:
    """Delete what sign-in no longer needs; how many rows of each kind went."""

    async def delete(sql: str, *args: object) -> int:
        status = await conn.execute(sql, *args)
        return int(status.split()[-1])  # "DELETE <n>"

    return {
        "sign_in_codes": await delete("DELETE FROM sign_in_codes WHERE expires_at <= $1", now),
        "challenges": await delete("DELETE FROM challenges WHERE expires_at <= $1", now),
        "rate_windows": await delete(
            "DELETE FROM rate_windows WHERE window_start <= $1", now - policy.rate_window
        ),
        "sign_in_guards": await delete(
            """DELETE FROM sign_in_guards
               WHERE (locked_until IS NULL OR locked_until <= $1) AND first_failure_at <= $2""",
            now,
            now - policy.failure_window,
        ),
    }


# --- activation -------------------------------------------------------------------------------


async def set_activation_code(conn: Conn, ins: str, code_hash: str, expires_at: datetime) -> None:
    """A new activation code: the previous one is void (and the space may be activated again
    only if it never was)."""
    await conn.execute(
        """UPDATE spaces SET activation_code_hash = $2, activation_expires_at = $3
           WHERE ins = $1""",
        ins,
        code_hash,
        expires_at,
    )


async def mark_activated(conn: Conn, ins: str, at: datetime) -> None:
    await conn.execute("UPDATE spaces SET activated_at = $2 WHERE ins = $1", ins, at)


# --- persons: death, preferences ----------------------------------------------------------------


async def lock_person(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM persons WHERE ins = $1 FOR UPDATE", ins)


async def record_death(conn: Conn, ins: str, died_on: date, at: datetime) -> None:
    await conn.execute(
        "UPDATE persons SET died_on = $2, death_recorded_at = $3 WHERE ins = $1",
        ins,
        died_on,
        at,
    )


async def set_contact_preferences(
    conn: Conn,
    ins: str,
    email: str | None,
    phone: str | None,
    code_channel: str,
    alert_channels: Sequence[str],
    time_zone: str | None,
) -> str:
    """The holder's choices; the time zone is left as it was when `time_zone` is None.
    Returns the time zone in effect."""
    zone: str = await conn.fetchval(
        """UPDATE persons SET email = $2, phone = $3, code_channel = $4, alert_channels = $5,
                              time_zone = coalesce($6, time_zone)
           WHERE ins = $1 RETURNING time_zone""",
        ins,
        email,
        phone,
        code_channel,
        list(alert_channels),
        time_zone,
    )
    return zone


async def persons_by_email(conn: Conn, email: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM persons WHERE lower(email) = lower($1) AND died_on IS NULL", email
    )
    return rows


# --- proxies ------------------------------------------------------------------------------------


async def insert_proxy(
    conn: Conn,
    *,
    proxy_id: UUID,
    ins: str,
    kind: str,
    role: str,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
    measure_reference: str | None,
    starts_at: datetime,
    ends_at: datetime | None,
    appointed_by: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO proxies (proxy_id, ins, kind, role, first_name, last_name, email, phone,
                                measure_reference, starts_at, ends_at, appointed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *""",
        proxy_id,
        ins,
        kind,
        role,
        first_name,
        last_name,
        email,
        phone,
        measure_reference,
        starts_at,
        ends_at,
        appointed_by,
    )
    assert row is not None
    return row


async def get_proxy(conn: Conn, proxy_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    sql = "SELECT * FROM proxies WHERE proxy_id = $1" + (" FOR UPDATE" if lock else "")
    return await conn.fetchrow(sql, proxy_id)


async def proxies_of(conn: Conn, ins: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM proxies WHERE ins = $1 ORDER BY starts_at, proxy_id", ins
    )
    return rows


async def active_representatives(conn: Conn, ins: str, now: datetime) -> list[asyncpg.Record]:
    """The holder's representatives acting now, the first appointed first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT * FROM proxies
           WHERE ins = $1 AND kind = 'representative' AND ended_at IS NULL
             AND starts_at <= $2 AND (ends_at IS NULL OR ends_at > $2)
           ORDER BY starts_at, proxy_id""",
        ins,
        now,
    )
    return rows


async def end_proxy(conn: Conn, proxy_id: UUID, at: datetime, reason: str) -> None:
    await conn.execute(
        "UPDATE proxies SET ended_at = $2, end_reason = $3 WHERE proxy_id = $1",
        proxy_id,
        at,
        reason,
    )


async def proxies_by_email(conn: Conn, email: str, now: datetime) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT * FROM proxies
           WHERE lower(email) = lower($1) AND ended_at IS NULL
             AND (ends_at IS NULL OR ends_at > $2)""",
        email,
        now,
    )
    return rows


# --- personal contacts and the treating physician -----------------------------------------------


async def replace_personal_contacts(
    conn: Conn, ins: str, contacts: list[tuple[int, dict[str, Any]]]
) -> None:
    await conn.execute("DELETE FROM personal_contacts WHERE ins = $1", ins)
    await conn.executemany(
        """INSERT INTO personal_contacts
               (ins, position, first_name, last_name, relation, phone, email)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [
            (
                ins,
                position,
                c["first_name"],
                c["last_name"],
                c.get("relation"),
                c.get("phone"),
                c.get("email"),
            )
            for position, c in contacts
        ],
    )


async def personal_contacts(conn: Conn, ins: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM personal_contacts WHERE ins = $1 ORDER BY position", ins
    )
    return rows


async def treating_physicians(conn: Conn, ins: str) -> dict[str, str]:
    """{'current': rpps, 'pending': rpps}, each when there is one."""
    rows = await conn.fetch(
        """SELECT status, rpps FROM treating_physicians
           WHERE ins = $1 AND status IN ('current', 'pending')""",
        ins,
    )
    return {r["status"]: r["rpps"] for r in rows}


async def set_pending_treating_physician(
    conn: Conn, ins: str, rpps: str, declared_by: str, at: datetime
) -> None:
    """The holder's nomination, waiting for the physician; it replaces an earlier one."""
    await conn.execute("DELETE FROM treating_physicians WHERE ins = $1 AND status = 'pending'", ins)
    await conn.execute(
        """INSERT INTO treating_physicians (ins, rpps, status, declared_by, declared_at)
           VALUES ($1, $2, 'pending', $3, $4)""",
        ins,
        rpps,
        declared_by,
        at,
    )


async def make_treating_physician(
    conn: Conn, ins: str, rpps: str, declared_by: str, declared_at: datetime, at: datetime
) -> None:
    """`rpps` becomes the current treating physician: the former one is ended, a pending
    nomination (of anyone) is settled."""
    await conn.execute(
        """UPDATE treating_physicians SET status = 'former', ended_at = $2
           WHERE ins = $1 AND status = 'current'""",
        ins,
        at,
    )
    await conn.execute("DELETE FROM treating_physicians WHERE ins = $1 AND status = 'pending'", ins)
    await conn.execute(
        """INSERT INTO treating_physicians
               (ins, rpps, status, declared_by, declared_at, accepted_at)
           VALUES ($1, $2, 'current', $3, $4, $5)""",
        ins,
        rpps,
        declared_by,
        declared_at,
        at,
    )


async def pending_treating_physician(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM treating_physicians WHERE ins = $1 AND status = 'pending'", ins
    )


# --- access requests after death (ACC_13) -------------------------------------------------------


async def insert_access_request(
    conn: Conn,
    *,
    request_id: UUID,
    ins: str,
    relation: str,
    first_name: str,
    last_name: str,
    email: str | None,
    phone: str | None,
    reason: str,
    filed_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO access_requests (request_id, ins, relation, first_name, last_name, email,
                                        phone, reason, filed_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')""",
        request_id,
        ins,
        relation,
        first_name,
        last_name,
        email,
        phone,
        reason,
        filed_at,
    )


async def lock_access_request(conn: Conn, request_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM access_requests WHERE request_id = $1 FOR UPDATE", request_id
    )


async def decide_access_request(
    conn: Conn,
    request_id: UUID,
    status: str,
    at: datetime,
    by: str,
    note: str | None,
    proxy_id: UUID | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """UPDATE access_requests
           SET status = $2, decided_at = $3, decided_by = $4, decision_note = $5, proxy_id = $6
           WHERE request_id = $1 RETURNING *""",
        request_id,
        status,
        at,
        by,
        note,
        proxy_id,
    )
    assert row is not None
    return row


async def access_requests(conn: Conn, status: str, limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT * FROM access_requests WHERE status = $1
           ORDER BY filed_at, request_id LIMIT $2""",
        status,
        limit,
    )
    return rows


# --- the directory (ACC_06, ACC_15, ACC_16) -----------------------------------------------------


async def insert_establishment(
    conn: Conn, finess: str, name: str, category: str, now: datetime
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO establishments (finess, name, category, registered_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
        finess,
        name,
        category,
        now,
    )
    return bool(inserted)


async def get_establishment(conn: Conn, finess: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM establishments WHERE finess = $1", finess)


async def add_staff(conn: Conn, finess: str, rpps: str, now: datetime) -> bool:
    added = await conn.fetchval(
        """INSERT INTO establishment_staff (finess, rpps, joined_at) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING true""",
        finess,
        rpps,
        now,
    )
    return bool(added)


async def remove_staff(conn: Conn, finess: str, rpps: str) -> bool:
    removed = await conn.fetchval(
        "DELETE FROM establishment_staff WHERE finess = $1 AND rpps = $2 RETURNING true",
        finess,
        rpps,
    )
    return bool(removed)


async def is_staff(conn: Conn, finess: str, rpps: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM establishment_staff WHERE finess = $1 AND rpps = $2", finess, rpps
    )
    return bool(found)


async def unknown_professionals(conn: Conn, ids: list[str]) -> list[str]:
    rows = await conn.fetch(
        """SELECT id FROM unnest($1::text[]) AS id
           WHERE NOT EXISTS (SELECT 1 FROM professionals p WHERE p.rpps = id)""",
        ids,
    )
    return [r["id"] for r in rows]


async def insert_care_team(
    conn: Conn,
    *,
    episode_id: UUID,
    ins: str,
    finess: str,
    members: list[str],
    starts_at: datetime,
    ends_at: datetime | None,
    declared_by: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """INSERT INTO care_teams (episode_id, ins, finess, members, starts_at, ends_at,
                                   declared_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        episode_id,
        ins,
        finess,
        members,
        starts_at,
        ends_at,
        declared_by,
    )
    assert row is not None
    return row


async def lock_care_team(conn: Conn, episode_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM care_teams WHERE episode_id = $1 FOR UPDATE", episode_id
    )


async def end_care_team(conn: Conn, episode_id: UUID, at: datetime) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE care_teams SET ended_at = $2 WHERE episode_id = $1 RETURNING *", episode_id, at
    )
    assert row is not None
    return row


async def upsert_catalogue_service(
    conn: Conn, service_id: str, name: str, categories: list[str], public_key: str, now: datetime
) -> asyncpg.Record:
    """Referenced (again): its categories and key as given now."""
    row = await conn.fetchrow(
        """INSERT INTO catalogue_services (service_id, name, categories, public_key,
                                          referenced_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (service_id) DO UPDATE
           SET name = $2, categories = $3, public_key = $4, referenced_at = $5,
               dereferenced_at = NULL
           RETURNING *""",
        service_id,
        name,
        categories,
        public_key,
        now,
    )
    assert row is not None
    return row


async def dereference_catalogue_service(
    conn: Conn, service_id: str, now: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE catalogue_services SET dereferenced_at = $2
           WHERE service_id = $1 AND dereferenced_at IS NULL RETURNING *""",
        service_id,
        now,
    )


async def referenced_service(conn: Conn, service_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM catalogue_services WHERE service_id = $1 AND dereferenced_at IS NULL",
        service_id,
    )
