"""access's SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from libs.contracts.events import AccessLogged
from libs.db import Conn
from services.access.domain import Authorization, HolderSettings


async def holder_settings(conn: Conn, ins: str, rpps: str | None) -> HolderSettings:
    """Everything a decision about (holder, professional) depends on, in one round trip."""
    row = await conn.fetchrow(
        """SELECT s.status,
                  a.rpps IS NOT NULL AS authorized, a.until,
                  b.rpps IS NOT NULL AS blocked,
                  t.rpps IS NOT NULL AS treating
           FROM (SELECT $1::text AS ins) q
           LEFT JOIN space_lifecycle s ON s.ins = q.ins  -- libs.spaces' projection
           LEFT JOIN authorizations a ON a.ins = q.ins AND a.rpps = $2
           LEFT JOIN blocks b ON b.ins = q.ins AND b.rpps = $2
           LEFT JOIN treating_physicians t ON t.ins = q.ins AND t.rpps = $2""",
        ins,
        rpps,
    )
    assert row is not None
    return HolderSettings(
        space_status=row["status"] or "unknown",
        authorization=Authorization(row["until"]) if row["authorized"] else None,
        blocked=row["blocked"],
        treating_physician=row["treating"],
    )


async def upsert_authorization(
    conn: Conn,
    ins: str,
    rpps: str,
    until: datetime | None,
    now: datetime,
    granted_by: str,
) -> None:
    await conn.execute(
        """INSERT INTO authorizations (ins, rpps, granted_at, until, granted_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (ins, rpps) DO UPDATE SET granted_at = $3, until = $4, granted_by = $5""",
        ins,
        rpps,
        now,
        until,
        granted_by,
    )


async def delete_authorization(conn: Conn, ins: str, rpps: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM authorizations WHERE ins = $1 AND rpps = $2 RETURNING true", ins, rpps
    )
    return bool(deleted)


async def insert_block(conn: Conn, ins: str, rpps: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO blocks (ins, rpps, blocked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        ins,
        rpps,
        now,
    )


async def delete_block(conn: Conn, ins: str, rpps: str) -> None:
    await conn.execute("DELETE FROM blocks WHERE ins = $1 AND rpps = $2", ins, rpps)


async def is_treating_physician(conn: Conn, ins: str, rpps: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM treating_physicians WHERE ins = $1 AND rpps = $2", ins, rpps
    )
    return bool(found)


async def list_permissions(conn: Conn, ins: str) -> dict[str, list[dict[str, object]]]:
    authorized = await conn.fetch(
        "SELECT rpps, granted_at, until FROM authorizations WHERE ins = $1 ORDER BY granted_at",
        ins,
    )
    blocked = await conn.fetch(
        "SELECT rpps, blocked_at FROM blocks WHERE ins = $1 ORDER BY blocked_at", ins
    )
    return {
        "authorized": [dict(r) for r in authorized],
        "blocked": [dict(r) for r in blocked],
    }


async def insert_trace(
    conn: Conn,
    logged: AccessLogged,
    *,
    document_type: str | None,
    reason: str,
    correlation_id: str,
) -> None:
    await conn.execute(
        """INSERT INTO traces (trace_id, decision_id, ins, at, actor_kind, actor_id, actor_name,
                               actor_profession, action, document_type, outcome, rule, reason,
                               correlation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        logged.trace_id,
        logged.decision_id,
        logged.ins,
        logged.at,
        logged.actor_kind,
        logged.actor_id,
        logged.actor_name,
        logged.actor_profession,
        logged.action,
        document_type,
        logged.outcome,
        logged.rule,
        reason,
        correlation_id,
    )


async def traces_page(
    conn: Conn, ins: str, page: int, page_size: int
) -> tuple[int, list[asyncpg.Record]]:
    total = await conn.fetchval("SELECT count(*) FROM traces WHERE ins = $1", ins)
    rows = await conn.fetch(
        """SELECT trace_id, at, actor_kind, actor_id, actor_name, actor_profession, action,
                  outcome, rule
           FROM traces WHERE ins = $1
           ORDER BY at DESC, trace_id DESC
           LIMIT $2 OFFSET $3""",
        ins,
        page_size,
        (page - 1) * page_size,
    )
    return int(total), rows
