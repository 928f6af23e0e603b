"""access's SQL."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from libs.db import Conn
from libs.paging import Position
from services.access.chain import GENESIS, TRACE_FIELDS, trace_leaf
from services.access.domain import AppGrant, Authorization, HolderSettings, Proxy


async def holder_settings(
    conn: Conn,
    ins: str,
    now: datetime,
    *,
    rpps: str | None = None,
    proxy_id: UUID | None = None,
    app_id: str | None = None,
) -> HolderSettings:
    """Everything a decision about (holder, actor) depends on, in one round trip: the space,
    the professional's consent (their own, or else their establishment's), blocks of them or of
    an establishment they work in, treating physician, care team, emergency, proxy, app."""
    row = await conn.fetchrow(
        """WITH q AS (SELECT $1::text AS ins, $2::text AS rpps, $4::timestamptz AS now),
           staff AS (SELECT finess FROM establishment_staff, q
                     WHERE establishment_staff.rpps = q.rpps AND present)
           SELECT s.status,
                  coalesce(a.rpps, ea.finess) IS NOT NULL AS authorized,
                  CASE WHEN a.rpps IS NOT NULL THEN a.until ELSE ea.until END AS until,
                  coalesce(a.express, false) AS express,
                  a.collected_by, a.reason_code,
                  EXISTS (SELECT 1 FROM blocks b WHERE b.ins = q.ins AND b.rpps = q.rpps)
                      AS blocked,
                  EXISTS (SELECT 1 FROM establishment_blocks eb JOIN staff USING (finess)
                          WHERE eb.ins = q.ins) AS establishment_blocked,
                  EXISTS (SELECT 1 FROM treating_physicians t
                          WHERE t.ins = q.ins AND t.rpps = q.rpps) AS treating,
                  EXISTS (SELECT 1 FROM care_teams c
                          WHERE c.ins = q.ins AND c.members @> ARRAY[q.rpps]
                            AND c.ended_at IS NULL AND c.starts_at <= q.now
                            AND (c.ends_at IS NULL OR q.now < c.ends_at)) AS care_team,
                  EXISTS (SELECT 1 FROM emergency_objections o WHERE o.ins = q.ins)
                      AS emergency_objection,
                  (SELECT max(e.until) FROM emergency_accesses e
                   WHERE e.ins = q.ins AND e.actor_id = q.rpps) AS emergency_until,
                  EXISTS (SELECT 1 FROM deceased_holders d WHERE d.ins = q.ins) AS deceased,
                  p.proxy_id, p.ins AS proxy_ins, p.kind, p.role, p.starts_at, p.ends_at,
                  p.ended_at,
                  cs.referenced AS app_referenced, cs.categories AS app_categories,
                  ag.categories AS app_chosen
           FROM q
           LEFT JOIN space_lifecycle s ON s.ins = q.ins  -- libs.spaces' projection
           LEFT JOIN authorizations a ON a.ins = q.ins AND a.rpps = q.rpps
           LEFT JOIN LATERAL (
               SELECT ea.finess, ea.until FROM establishment_authorizations ea
               JOIN staff USING (finess) WHERE ea.ins = q.ins
               ORDER BY ea.until DESC NULLS FIRST LIMIT 1) ea ON true
           LEFT JOIN proxies p ON p.proxy_id = $3
           LEFT JOIN catalogue_services cs ON cs.service_id = $5
           LEFT JOIN app_grants ag ON ag.ins = q.ins AND ag.service_id = $5""",
        ins,
        rpps,
        proxy_id,
        now,
        app_id,
    )
    assert row is not None
    app = None
    if row["app_referenced"]:
        app = AppGrant(frozenset(row["app_categories"]), frozenset(row["app_chosen"] or ()))
    return HolderSettings(
        space_status=row["status"] or "unknown",
        authorization=(
            Authorization(row["until"], row["express"], row["collected_by"], row["reason_code"])
            if row["authorized"]
            else None
        ),
        blocked=row["blocked"],
        establishment_blocked=row["establishment_blocked"],
        treating_physician=row["treating"],
        care_team=row["care_team"],
        emergency_objection=row["emergency_objection"],
        emergency_until=row["emergency_until"],
        deceased=row["deceased"],
        proxy=_proxy(row) if row["proxy_id"] else None,
        app=app,
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
    *,
    express: bool = False,
    collected_by: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO authorizations (ins, rpps, granted_at, until, granted_by, express,
                                       collected_by, reason_code, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (ins, rpps) DO UPDATE
           SET granted_at = $3, until = $4, granted_by = $5, express = $6, collected_by = $7,
               reason_code = $8, reason = $9""",
        ins,
        rpps,
        now,
        until,
        granted_by,
        express,
        collected_by,
        reason_code,
        reason,
    )


async def delete_authorization(conn: Conn, ins: str, rpps: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM authorizations WHERE ins = $1 AND rpps = $2 RETURNING true", ins, rpps
    )
    return bool(deleted)


async def delete_ended_authorization(
    conn: Conn, ins: str, kind: str, grantee_id: str, ended_by: datetime
) -> None:
    """An authorization whose end has come (a renewed one, ending later, stays)."""
    table, column = (
        ("authorizations", "rpps")
        if kind == "professional"
        else ("establishment_authorizations", "finess")
    )
    await conn.execute(
        f"DELETE FROM {table} WHERE ins = $1 AND {column} = $2 AND until <= $3",
        ins,
        grantee_id,
        ended_by,
    )


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


async def acts_as_holder(conn: Conn, ins: str, rpps: str) -> bool:
    """ACC_04: the treating physician, while the holder delegates to them."""
    found = await conn.fetchval(
        """SELECT true FROM treating_physicians t JOIN treating_delegations d USING (ins)
           WHERE t.ins = $1 AND t.rpps = $2""",
        ins,
        rpps,
    )
    return bool(found)


async def set_delegation(conn: Conn, ins: str, delegated: bool, now: datetime) -> None:
    if delegated:
        await conn.execute(
            """INSERT INTO treating_delegations (ins, delegated_at) VALUES ($1, $2)
               ON CONFLICT DO NOTHING""",
            ins,
            now,
        )
    else:
        await conn.execute("DELETE FROM treating_delegations WHERE ins = $1", ins)


async def upsert_establishment_authorization(
    conn: Conn, ins: str, finess: str, until: datetime | None, now: datetime, granted_by: str
) -> None:
    await conn.execute(
        """INSERT INTO establishment_authorizations (ins, finess, granted_at, until, granted_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (ins, finess) DO UPDATE SET granted_at = $3, until = $4, granted_by = $5""",
        ins,
        finess,
        now,
        until,
        granted_by,
    )


async def delete_establishment_authorization(conn: Conn, ins: str, finess: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM establishment_authorizations WHERE ins = $1 AND finess = $2 RETURNING true",
        ins,
        finess,
    )
    return bool(deleted)


async def set_establishment_block(
    conn: Conn, ins: str, finess: str, blocked: bool, now: datetime
) -> None:
    if blocked:
        await conn.execute(
            """INSERT INTO establishment_blocks (ins, finess, blocked_at) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING""",
            ins,
            finess,
            now,
        )
    else:
        await conn.execute(
            "DELETE FROM establishment_blocks WHERE ins = $1 AND finess = $2", ins, finess
        )


async def set_app_grant(
    conn: Conn, ins: str, service_id: str, categories: list[str], now: datetime
) -> None:
    if categories:
        await conn.execute(
            """INSERT INTO app_grants (ins, service_id, categories, changed_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (ins, service_id) DO UPDATE SET categories = $3, changed_at = $4""",
            ins,
            service_id,
            categories,
            now,
        )
    else:
        await conn.execute(
            "DELETE FROM app_grants WHERE ins = $1 AND service_id = $2", ins, service_id
        )


async def set_emergency_objection(conn: Conn, ins: str, objected: bool, now: datetime) -> None:
    if objected:
        await conn.execute(
            """INSERT INTO emergency_objections (ins, objected_at) VALUES ($1, $2)
               ON CONFLICT DO NOTHING""",
            ins,
            now,
        )
    else:
        await conn.execute("DELETE FROM emergency_objections WHERE ins = $1", ins)


async def record_emergency_access(
    conn: Conn,
    decision_id: UUID,
    ins: str,
    actor_id: str,
    started_at: datetime,
    until: datetime,
    purpose: str | None,
) -> None:
    """A break-the-glass opens 24 hours; a read within them extends nothing."""
    await conn.execute(
        """INSERT INTO emergency_accesses (decision_id, ins, actor_id, started_at, until, purpose)
           SELECT $1, $2, $3, $4, $5, $6
           WHERE NOT EXISTS (SELECT 1 FROM emergency_accesses
                             WHERE ins = $2 AND actor_id = $3 AND until > $4)""",
        decision_id,
        ins,
        actor_id,
        started_at,
        until,
        purpose,
    )


# --- identity's facts: staff, care teams, the catalogue ----------------------------------------


async def staff_changed(conn: Conn, finess: str, rpps: str, present: bool, at: datetime) -> None:
    """The later change wins, whatever order the events arrive in."""
    await conn.execute(
        """INSERT INTO establishment_staff AS s (finess, rpps, present, changed_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (finess, rpps) DO UPDATE SET present = EXCLUDED.present,
                                                   changed_at = EXCLUDED.changed_at
           WHERE EXCLUDED.changed_at > s.changed_at
              OR (EXCLUDED.changed_at = s.changed_at AND NOT EXCLUDED.present)""",
        finess,
        rpps,
        present,
        at,
    )


async def care_team_declared(
    conn: Conn,
    episode_id: UUID,
    ins: str,
    finess: str,
    members: list[str],
    starts_at: datetime,
    ends_at: datetime | None,
) -> None:
    """Idempotent; an end heard before keeps its place."""
    await conn.execute(
        """INSERT INTO care_teams (episode_id, ins, finess, members, starts_at, ends_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (episode_id) DO UPDATE
           SET finess = EXCLUDED.finess, members = EXCLUDED.members,
               starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at""",
        episode_id,
        ins,
        finess,
        members,
        starts_at,
        ends_at,
    )


async def care_team_ended(conn: Conn, episode_id: UUID, ins: str, ended_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO care_teams (episode_id, ins, ended_at) VALUES ($1, $2, $3)
           ON CONFLICT (episode_id) DO UPDATE
           SET ended_at = LEAST(care_teams.ended_at, EXCLUDED.ended_at)""",
        episode_id,
        ins,
        ended_at,
    )


async def catalogue_changed(
    conn: Conn, service_id: str, categories: list[str] | None, referenced: bool, at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO catalogue_services AS c (service_id, categories, referenced, changed_at)
           VALUES ($1, coalesce($2::text[], '{}'), $3, $4)
           ON CONFLICT (service_id) DO UPDATE
           SET categories = coalesce($2::text[], c.categories), referenced = EXCLUDED.referenced,
               changed_at = EXCLUDED.changed_at
           WHERE EXCLUDED.changed_at > c.changed_at
              OR (EXCLUDED.changed_at = c.changed_at AND NOT EXCLUDED.referenced)""",
        service_id,
        categories,
        referenced,
        at,
    )


# --- the holder's view (ACC_02) ----------------------------------------------------------------


async def list_permissions(conn: Conn, ins: str, now: datetime) -> dict[str, object]:
    authorized = await conn.fetch(
        """SELECT rpps, granted_at, until, express, collected_by, reason_code, reason
           FROM authorizations WHERE ins = $1 ORDER BY granted_at""",
        ins,
    )
    blocked = await conn.fetch(
        "SELECT rpps, blocked_at FROM blocks WHERE ins = $1 ORDER BY blocked_at", ins
    )
    establishments = await conn.fetch(
        """SELECT finess, granted_at, until FROM establishment_authorizations
           WHERE ins = $1 ORDER BY granted_at""",
        ins,
    )
    blocked_establishments = await conn.fetch(
        """SELECT finess, blocked_at FROM establishment_blocks
           WHERE ins = $1 ORDER BY blocked_at""",
        ins,
    )
    apps = await conn.fetch(
        """SELECT g.service_id, g.categories, coalesce(c.referenced, false) AS referenced
           FROM app_grants g LEFT JOIN catalogue_services c USING (service_id)
           WHERE g.ins = $1 ORDER BY g.changed_at""",
        ins,
    )
    objection = await conn.fetchval("SELECT true FROM emergency_objections WHERE ins = $1", ins)
    delegated = await conn.fetchval("SELECT true FROM treating_delegations WHERE ins = $1", ins)
    treating = await conn.fetchval("SELECT rpps FROM treating_physicians WHERE ins = $1", ins)
    teams = await conn.fetch(
        """SELECT episode_id, finess, members, starts_at, ends_at FROM care_teams
           WHERE ins = $1 AND ended_at IS NULL AND finess IS NOT NULL
             AND (ends_at IS NULL OR ends_at > $2)
           ORDER BY starts_at""",
        ins,
        now,
    )
    return {
        "authorized": [dict(r) for r in authorized],
        "blocked": [dict(r) for r in blocked],
        "authorized_establishments": [dict(r) for r in establishments],
        "blocked_establishments": [dict(r) for r in blocked_establishments],
        "apps": [dict(r) for r in apps],
        "emergency_objection": bool(objection),
        "treating_physician": treating,
        "treating_physician_delegated": bool(delegated),
        "care_teams": [dict(r) for r in teams],
    }


# --- traces: a chain per holder (ACC_03) -------------------------------------------------------


async def insert_trace(conn: Conn, trace: Mapping[str, Any]) -> tuple[int, bytes]:
    """Appends the trace to its holder's chain; returns its place and the chain's hash there.

    The head's row lock (taken by the upsert) makes concurrent decisions for one holder, on any
    replica, link one after the other: the second waits for the first's commit and chains to
    it. One round trip."""
    leaf = trace_leaf(trace)
    row = await conn.fetchrow(
        f"""WITH head AS (
               INSERT INTO trace_heads AS h (ins, seq, hash, leaf)
               VALUES ($3, 1, sha256($18::bytea || $19::bytea), $19)
               ON CONFLICT (ins) DO UPDATE
               SET seq = h.seq + 1, hash = sha256(h.hash || EXCLUDED.leaf), leaf = EXCLUDED.leaf
               RETURNING seq, hash)
           INSERT INTO traces ({", ".join(TRACE_FIELDS)}, seq, hash)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                  head.seq, head.hash
           FROM head
           RETURNING seq, hash""",
        *(trace[f] for f in TRACE_FIELDS),
        GENESIS,
        leaf,
    )
    assert row is not None
    return row["seq"], row["hash"]


HISTORY_COLUMNS = """n, trace_id, at, actor_kind, actor_id, actor_name, actor_profession, action,
                     document_type, outcome, rule, reason, emergency, purpose"""


async def traces_page(
    conn: Conn,
    ins: str,
    page_size: int,
    after: Position | None,
    actor_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[asyncpg.Record]:
    """Newest first, from a keyset: an index range scan however many traces the holder has.

    Only the conditions asked are written, so that each shape gets its own plan on its index
    (`traces_newest`, or `traces_by_actor` for one actor) instead of a generic plan that
    filters row by row."""
    where, args = ["ins = $1"], [ins, page_size]

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if after is not None:
        where.append(f"(at, n) < ({arg(after.at)}, {arg(after.seq)})")
    if actor_id is not None:
        where.append(f"actor_id = {arg(actor_id)}")
    if since is not None:
        where.append(f"at >= {arg(since)}")
    if until is not None:
        where.append(f"at < {arg(until)}")
    return await conn.fetch(
        f"""SELECT {HISTORY_COLUMNS} FROM traces WHERE {" AND ".join(where)}
            ORDER BY at DESC, n DESC LIMIT $2""",
        *args,
    )


async def chain_holders(conn: Conn, after: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT ins, seq, hash FROM trace_heads WHERE ins > $1 ORDER BY ins LIMIT $2",
        after,
        limit,
    )


async def chain_of(conn: Conn, ins: str) -> list[asyncpg.Record]:
    """A holder's chained traces, in chain order (an index scan on traces_chain)."""
    return await conn.fetch(
        f"SELECT {', '.join(TRACE_FIELDS)}, seq, hash FROM traces"
        " WHERE ins = $1 AND seq IS NOT NULL ORDER BY seq",
        ins,
    )
