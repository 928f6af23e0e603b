"""access's SQL."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import asyncpg

from libs.contracts.events import AccessLogged
from libs.db import Conn
from services.access.domain import Authorization, HolderSettings, Proxy


async def holder_settings(
    conn: Conn, ins: str, rpps: str | None, proxy_id: UUID | None = None
) -> HolderSettings:
    """Everything a decision about (holder, professional or proxy) depends on, in one round
    trip."""
    row = await conn.fetchrow(
        """SELECT s.status,
                  a.rpps IS NOT NULL AS authorized, a.until,
                  b.rpps IS NOT NULL AS blocked,
                  t.rpps IS NOT NULL AS treating,
                  d.ins IS NOT NULL AS deceased,
                  p.proxy_id, p.ins AS proxy_ins, p.kind, p.role, p.starts_at, p.ends_at,
                  p.ended_at
           FROM (SELECT $1::text AS ins) q
           LEFT JOIN space_lifecycle s ON s.ins = q.ins  -- libs.spaces' projection
           LEFT JOIN authorizations a ON a.ins = q.ins AND a.rpps = $2
           LEFT JOIN blocks b ON b.ins = q.ins AND b.rpps = $2
           LEFT JOIN treating_physicians t ON t.ins = q.ins AND t.rpps = $2
           LEFT JOIN deceased_holders d ON d.ins = q.ins
           LEFT JOIN proxies p ON p.proxy_id = $3""",
        ins,
        rpps,
        proxy_id,
    )
    assert row is not None
    return HolderSettings(
        space_status=row["status"] or "unknown",
        authorization=Authorization(row["until"]) if row["authorized"] else None,
        blocked=row["blocked"],
        treating_physician=row["treating"],
        deceased=row["deceased"],
        proxy=_proxy(row) if row["proxy_id"] else None,
    )


def _proxy(row: asyncpg.Record) -> Proxy:
    return Proxy(
        ins=row["proxy_ins"],
        kind=row["kind"],
        role=row["role"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        ended_at=row["ended_at"],
    )


async def get_proxy(conn: Conn, proxy_id: UUID) -> Proxy | None:
    row = await conn.fetchrow(
        "SELECT *, ins AS proxy_ins FROM proxies WHERE proxy_id = $1", proxy_id
    )
    return _proxy(row) if row else None


async def appoint_proxy(
    conn: Conn,
    proxy_id: UUID,
    ins: str,
    kind: str,
    role: str,
    starts_at: datetime,
    ends_at: datetime | None,
) -> None:
    """Idempotent; an end heard before keeps its place."""
    await conn.execute(
        """INSERT INTO proxies (proxy_id, ins, kind, role, starts_at, ends_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (proxy_id) DO UPDATE
           SET kind = EXCLUDED.kind, role = EXCLUDED.role, starts_at = EXCLUDED.starts_at,
               ends_at = EXCLUDED.ends_at""",
        proxy_id,
        ins,
        kind,
        role,
        starts_at,
        ends_at,
    )


async def end_proxy(conn: Conn, proxy_id: UUID, ins: str, ended_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO proxies (proxy_id, ins, ended_at) VALUES ($1, $2, $3)
           ON CONFLICT (proxy_id) DO UPDATE
           SET ended_at = LEAST(proxies.ended_at, EXCLUDED.ended_at)""",
        proxy_id,
        ins,
        ended_at,
    )


async def record_death(conn: Conn, ins: str, died_on: date) -> None:
    await conn.execute(
        "INSERT INTO deceased_holders (ins, died_on) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        ins,
        died_on,
    )


async def set_treating_physician(conn: Conn, ins: str, rpps: str, since: datetime) -> None:
    """ACC_04: the later declaration wins, whatever order the events arrive in."""
    await conn.execute(
        """INSERT INTO treating_physicians AS held (ins, rpps, declared_at) VALUES ($1, $2, $3)
           ON CONFLICT (ins) DO UPDATE SET rpps = EXCLUDED.rpps,
                                           declared_at = EXCLUDED.declared_at
           WHERE EXCLUDED.declared_at > held.declared_at""",
        ins,
        rpps,
        since,
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
