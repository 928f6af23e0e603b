"""identity's SQL. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from libs.db import Conn


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
    used = await conn.fetchval(
        """UPDATE challenges SET used_at = $4
           WHERE challenge = $1 AND kind = $2 AND subject = $3
             AND used_at IS NULL AND expires_at > $4
           RETURNING true""",
        challenge,
        kind,
        subject,
        now,
    )
    return bool(used)


async def insert_holder_code(conn: Conn, ins: str, code_hash: str, expires_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO holder_codes (ins, code_hash, expires_at) VALUES ($1, $2, $3)",
        ins,
        code_hash,
        expires_at,
    )


async def use_holder_code(
    conn: Conn, ins: str, code_hash: str, now: datetime, max_attempts: int
) -> bool:
    """Spend a matching live code; otherwise count a failed attempt against the live ones."""
    used = await conn.fetchval(
        """UPDATE holder_codes SET used_at = $3
           WHERE ins = $1 AND code_hash = $2 AND used_at IS NULL AND expires_at > $3
             AND attempts < $4
           RETURNING true""",
        ins,
        code_hash,
        now,
        max_attempts,
    )
    if not used:
        await conn.execute(
            "UPDATE holder_codes SET attempts = attempts + 1"
            " WHERE ins = $1 AND used_at IS NULL AND expires_at > $2",
            ins,
            now,
        )
    return bool(used)
