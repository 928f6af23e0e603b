"""identity's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime

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
    column = {"open": "opened_at", "objected": "objected_at", "closed": "closed_at"}[status]
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
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO professionals (rpps, first_name, last_name, profession, specialty,
                                      card_public_key, registered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true""",
        rpps,
        first_name,
        last_name,
        profession,
        specialty,
        card_public_key,
        now,
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


async def replace_holder_code(
    conn: Conn, ins: str, code_hash: str, issued_at: datetime, expires_at: datetime
) -> None:
    """The holder's one live code: any previous one is revoked by this one."""
    await conn.execute(
        """INSERT INTO holder_codes (ins, code_hash, issued_at, expires_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (ins) DO UPDATE
           SET code_hash = EXCLUDED.code_hash, issued_at = EXCLUDED.issued_at,
               expires_at = EXCLUDED.expires_at""",
        ins,
        code_hash,
        issued_at,
        expires_at,
    )


async def revoke_holder_code(conn: Conn, ins: str) -> None:
    await conn.execute("DELETE FROM holder_codes WHERE ins = $1", ins)


async def get_holder_code(conn: Conn, ins: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM holder_codes WHERE ins = $1", ins)


async def lock_sign_in(conn: Conn, ins: str) -> None:
    """Sign-in attempts for one INS, one at a time (until the transaction ends), whether or not
    a person or a guard row exists for it."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sign-in:' || $1))", ins)


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
        "holder_codes": await delete("DELETE FROM holder_codes WHERE expires_at <= $1", now),
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
