"""access's use cases. `decide` is the system's only decision point."""

from __future__ import annotations

import uuid
from typing import Any

from libs import spaces
from libs.bus.authority import SERVICES
from libs.contracts import commands as cmd
from libs.contracts.events import (
    AccessDenied,
    AccessGranted,
    AccessLogged,
    HolderDeceased,
    ProxyAppointed,
    ProxyEnded,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
)
from libs.contracts.rpc import ErrorCode
from libs.errors import Conflict, Forbidden, NotFound
from libs.runtime import CommandContext, EventContext
from libs.tokens import Claims
from services.access import domain, repository


async def decide(ctx: CommandContext, c: cmd.Decide) -> cmd.Decision:
    """Decide, trace, and publish, in one transaction; the reply goes out after commit.

    The trace and `AccessLogged` are written for every decision, granted or denied (ACC_03),
    with the rule that took it (ACC_18). Nothing is granted unless this commits. Only services
    ask, on behalf of the person whose token they pass on: a client asking for itself would
    leave a trace (and an alert) of an access that never happened.
    """
    ctx.require_caller(*SERVICES)
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    decision_id, trace_id = uuid.uuid4(), uuid.uuid4()
    rpps = actor.sub if actor.kind == "professional" else None
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
        holder = await repository.holder_settings(conn, c.ins, rpps, _proxy_id(actor))
        decision = domain.decide(actor, c.ins, c.action, c.document_type, holder, now)
        about: dict[str, Any] = {
            "decision_id": decision_id,
            "ins": c.ins,
            "actor_kind": actor.kind,
            "actor_id": actor.sub,
            "action": c.action,
            "rule": decision.rule,
        }
        logged = AccessLogged(
            **about,
            trace_id=trace_id,
            actor_name=actor.name,
            actor_profession=actor.profession,
            outcome="granted" if decision.granted else "denied",
            at=now,
        )
        await repository.insert_trace(
            conn,
            logged,
            document_type=c.document_type,
            reason=decision.reason,
            correlation_id=ctx.correlation_id,
        )
        outcome: AccessGranted | AccessDenied = (
            AccessGranted(
                **about,
                document_types=decision.document_types,
                include_masked=decision.include_masked,
            )
            if decision.granted
            else AccessDenied(**about, reason=decision.reason)
        )
        await uow.emit(outcome)
        await uow.emit(logged)
        return uow.answer(
            cmd.Decision(
                decision_id=decision_id,
                granted=decision.granted,
                rule=decision.rule,
                reason=decision.reason,
                document_types=decision.document_types,
                include_masked=decision.include_masked,
            )
        )


def _proxy_id(actor: Claims) -> uuid.UUID | None:
    if actor.kind not in ("representative", "requester"):
        return None
    try:
        return uuid.UUID(actor.sub)
    except ValueError:
        return None


async def _require_holder_of(ctx: CommandContext, conn: Any, actor: Claims, ins: str) -> None:
    """The holder, or their representative while appointed (SPC_04, SPC_05)."""
    if actor.kind == "holder" and actor.sub == ins:
        return
    proxy_id = _proxy_id(actor)
    if actor.kind == "representative" and proxy_id is not None:
        proxy = await repository.get_proxy(conn, proxy_id)
        if proxy is not None and proxy.acts_for(ins, "representative", ctx.runtime.now()):
            return
    raise Forbidden("only the holder (or their representative) manages this (ACC_02)")


# --- what identity tells: who acts for whom, deaths, treating physicians ----------------------


async def on_proxy_appointed(ctx: EventContext, event: ProxyAppointed) -> None:
    await repository.appoint_proxy(
        ctx.conn, event.proxy_id, event.ins, event.kind, event.role, event.starts_at, event.ends_at
    )


async def on_proxy_ended(ctx: EventContext, event: ProxyEnded) -> None:
    await repository.end_proxy(ctx.conn, event.proxy_id, event.ins, event.ended_at)


async def on_holder_deceased(ctx: EventContext, event: HolderDeceased) -> None:
    await repository.record_death(ctx.conn, event.ins, event.died_on)


async def on_treating_physician(
    ctx: EventContext, event: TreatingPhysicianDeclared | TreatingPhysicianChanged
) -> None:
    """ACC_04: from now on, this physician is the holder's treating physician."""
    await repository.set_treating_physician(ctx.conn, event.ins, event.rpps, event.since)


async def _require_open_space(conn: Any, ins: str) -> None:
    status = await spaces.status(conn, ins)
    if status is None:
        raise NotFound(f"no space for INS {ins}")
    if status == "closed":
        raise Conflict("the space is closed (ACC_17)", code=ErrorCode.SPACE_CLOSED, rule="ACC_17")


async def authorize_professional(
    ctx: CommandContext, c: cmd.AuthorizeProfessional
) -> cmd.Authorization:
    """ACC_05 / ACC_14: the holder authorizes a professional, permanently or until a date."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    if c.until is not None and c.until <= now:
        raise Conflict("the end of the authorization is already past")
    async with ctx.unit_of_work() as uow:
        await _require_holder_of(ctx, uow.conn, actor, c.ins)
        await _require_open_space(uow.conn, c.ins)
        await repository.upsert_authorization(uow.conn, c.ins, c.rpps, c.until, now, actor.sub)
        return uow.answer(cmd.Authorization(ins=c.ins, rpps=c.rpps, until=c.until))


async def revoke_authorization(ctx: CommandContext, c: cmd.RevokeAuthorization) -> cmd.Revocation:
    async with ctx.unit_of_work() as uow:
        await _require_holder_of(ctx, uow.conn, ctx.require_actor(), c.ins)
        if not await repository.delete_authorization(uow.conn, c.ins, c.rpps):
            raise NotFound(f"professional {c.rpps} is not authorized")
        return uow.answer(cmd.Revocation(ins=c.ins, rpps=c.rpps, authorized=False))


async def block_professional(ctx: CommandContext, c: cmd.BlockProfessional) -> cmd.BlockStatus:
    """ACC_08: the holder blocks a professional; never the treating physician."""
    async with ctx.unit_of_work() as uow:
        await _require_holder_of(ctx, uow.conn, ctx.require_actor(), c.ins)
        await _require_open_space(uow.conn, c.ins)
        if await repository.is_treating_physician(uow.conn, c.ins, c.rpps):
            raise Conflict("the treating physician cannot be blocked (ACC_04, ACC_08)")
        await repository.insert_block(uow.conn, c.ins, c.rpps, ctx.runtime.now())
        return uow.answer(cmd.BlockStatus(ins=c.ins, rpps=c.rpps, blocked=True))


async def unblock_professional(ctx: CommandContext, c: cmd.UnblockProfessional) -> cmd.BlockStatus:
    async with ctx.unit_of_work() as uow:
        await _require_holder_of(ctx, uow.conn, ctx.require_actor(), c.ins)
        await repository.delete_block(uow.conn, c.ins, c.rpps)
        return uow.answer(cmd.BlockStatus(ins=c.ins, rpps=c.rpps, blocked=False))


async def list_permissions(ctx: CommandContext, c: cmd.ListPermissions) -> cmd.Permissions:
    """ACC_02: the holder sees who is allowed and who is blocked."""
    async with ctx.runtime.pool.acquire() as conn:
        await _require_holder_of(ctx, conn, ctx.require_actor(), c.ins)
        permissions = await repository.list_permissions(conn, c.ins)
    return cmd.Permissions.model_validate(permissions)


async def list_access_history(ctx: CommandContext, c: cmd.ListAccessHistory) -> cmd.AccessHistory:
    """ACC_03: the holder reads every trace, newest first, a page at a time."""
    async with ctx.runtime.pool.acquire() as conn:
        await _require_holder_of(ctx, conn, ctx.require_actor(), c.ins)
        total, rows = await repository.traces_page(conn, c.ins, c.page, c.page_size)
    traces = [cmd.AccessTrace.model_validate(dict(r)) for r in rows]
    return cmd.AccessHistory(page=c.page, page_size=c.page_size, total=total, traces=traces)
