"""access's use cases. `decide` is the system's only decision point."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from libs import paging, spaces
from libs.bus.authority import SERVICES
from libs.contracts import commands as cmd
from libs.contracts.events import (
    AccessDenied,
    AccessGranted,
    AccessLogged,
    AuthorizationEndDue,
    AuthorizationGiven,
    AuthorizationWithdrawn,
    CareTeamDeclared,
    CareTeamEnded,
    CatalogueServiceDereferenced,
    CatalogueServiceReferenced,
    Grantee,
    HolderDeceased,
    ProxyAppointed,
    ProxyEnded,
    StaffJoined,
    StaffLeft,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
)
from libs.contracts.rpc import ErrorCode
from libs.contracts.vocabulary import DataCategory
from libs.errors import Conflict, Forbidden, NotFound
from libs.runtime import CommandContext, EventContext
from libs.tokens import Claims
from libs.uow import UnitOfWork
from services.access import domain, repository
from services.access.settings import AccessSettings


async def decide(ctx: CommandContext[AccessSettings], c: cmd.Decide) -> cmd.Decision:
    """Decide, trace, and publish, in one transaction; the reply goes out after commit.

    The trace and `AccessLogged` are written for every decision, granted or denied (ACC_03),
    with the rule that took it (ACC_18) and the matrix version (ACC_07). Nothing is granted
    unless this commits. Only services ask, on behalf of the person whose token they pass on:
    a client asking for itself would leave a trace (and an alert) of an access that never
    happened.
    """
    ctx.require_caller(*SERVICES)
    actor = ctx.require_actor()
    async with ctx.unit_of_work() as uow:
        decision_id, decision, version = await _decide_and_trace(
            ctx,
            uow,
            actor,
            c.ins,
            c.action,
            c.document_type,
            c.emergency,
            c.purpose,
            on_behalf_of=c.on_behalf_of,
        )
        reply = uow.answer(
            cmd.Decision(
                decision_id=decision_id,
                granted=decision.granted,
                rule=decision.rule,
                reason=decision.reason,
                document_types=decision.document_types,
                include_masked=decision.include_masked,
                emergency=decision.emergency,
                matrix_version=version,
                include_held_back=decision.include_held_back,
            )
        )
    _count_decision(ctx, decision, c.action)  # committed: counted
    return reply


def _count_decision(
    ctx: CommandContext[AccessSettings], decision: domain.Decision, action: str
) -> None:
    outcome = "granted" if decision.granted else "denied"
    ctx.runtime.meters.access_decisions.labels(
        ctx.runtime.name, decision.rule, outcome, action
    ).inc()


async def _decide_and_trace(
    ctx: CommandContext[AccessSettings],
    uow: UnitOfWork,
    actor: Claims,
    ins: str,
    action: domain.Action,
    document_type: str | None = None,
    emergency: bool = False,
    purpose: str | None = None,
    *,
    traced_as: str | None = None,
    on_behalf_of: str | None = None,
    consent_for: str | None = None,
    consent_reason: str | None = None,
) -> tuple[uuid.UUID, domain.Decision, str]:
    """One decision: its trace chained to the holder's (ACC_03), `AccessGranted` or
    `AccessDenied` and `AccessLogged`, in the caller's unit of work. `consent_for` and
    `consent_reason`: a consent being collected for another professional (ACC_05)."""
    now = ctx.runtime.now()
    matrix = domain.load_matrix(ctx.runtime.settings.access_matrix_file)
    decision_id, trace_id = uuid.uuid4(), uuid.uuid4()
    holder = await repository.holder_settings(
        uow.conn,
        ins,
        now,
        rpps=actor.sub if actor.kind == "professional" else None,
        proxy_id=_proxy_id(actor),
        app_id=actor.sub if actor.kind == "app" else None,
    )
    author = (
        None
        if on_behalf_of is None
        else await repository.holder_settings(uow.conn, ins, now, rpps=on_behalf_of)
    )
    decision = domain.decide(
        actor,
        ins,
        action,
        document_type,
        holder,
        now,
        emergency=emergency,
        purpose=purpose,
        matrix=matrix,
        on_behalf_of=author,
    )
    outcome = "granted" if decision.granted else "denied"
    about: dict[str, Any] = {
        "decision_id": decision_id,
        "ins": ins,
        "actor_kind": actor.kind,
        "actor_id": actor.sub,
        "action": traced_as or action,
        "rule": decision.rule,
    }
    seq, chain_hash = await repository.insert_trace(
        uow.conn,
        {
            **about,
            "trace_id": trace_id,
            "at": now,
            "actor_name": actor.name,
            "actor_profession": actor.profession,
            "document_type": document_type,
            "outcome": outcome,
            "reason": decision.reason
            + ("" if on_behalf_of is None else f" (on behalf of {on_behalf_of})"),
            "matrix_version": matrix.version,
            "emergency": decision.emergency,
            "purpose": purpose,
            "correlation_id": ctx.correlation_id,
        },
    )
    if decision.emergency:
        until = now + domain.EMERGENCY_WINDOW
        await repository.record_emergency_access(
            uow.conn, decision_id, ins, actor.sub, now, until, purpose
        )
    published: AccessGranted | AccessDenied = (
        AccessGranted(
            **about,
            document_types=decision.document_types,
            include_masked=decision.include_masked,
            emergency=decision.emergency,
            matrix_version=matrix.version,
        )
        if decision.granted
        else AccessDenied(**about, reason=decision.reason)
    )
    await uow.emit(published)
    # ACC_05: the holder is told who collected a consent and why (ids and codes only): on the
    # collection, for whom; on an access resting on a consent someone else collected, by whom.
    collected = None if consent_for else domain.collected_consent(actor, holder, decision)
    if collected is not None:
        consent_reason = collected.reason_code
    await uow.emit(
        AccessLogged(
            **about,
            trace_id=trace_id,
            actor_name=actor.name,
            actor_profession=actor.profession,
            outcome=outcome,
            at=now,
            emergency=decision.emergency,
            seq=seq,
            chain_hash=chain_hash.hex(),
            consent_for=consent_for,
            consent_collected_by=collected.collected_by if collected else None,
            consent_reason=consent_reason,
        )
    )
    return decision_id, decision, matrix.version


def _proxy_id(actor: Claims) -> uuid.UUID | None:
    if actor.kind not in ("representative", "requester"):
        return None
    try:
        return uuid.UUID(actor.sub)
    except ValueError:
        return None


async def _require_holder_of(
    ctx: CommandContext, conn: Any, actor: Claims, ins: str, *, delegable: bool = True
) -> None:
    """The holder, their representative while appointed (SPC_04, SPC_05), or, where the holder
    asked for it, their treating physician (ACC_04)."""
    if actor.kind == "holder" and actor.sub == ins:
        return
    proxy_id = _proxy_id(actor)
    if actor.kind == "representative" and proxy_id is not None:
        proxy = await repository.get_proxy(conn, proxy_id)
        if proxy is not None and proxy.acts_for(ins, "representative", ctx.runtime.now()):
            return
    if (
        delegable
        and actor.kind == "professional"
        and await repository.acts_as_holder(conn, ins, actor.sub)
    ):
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


async def on_staff_joined(ctx: EventContext, event: StaffJoined) -> None:
    await repository.staff_changed(ctx.conn, event.finess, event.rpps, True, event.at)


async def on_staff_left(ctx: EventContext, event: StaffLeft) -> None:
    await repository.staff_changed(ctx.conn, event.finess, event.rpps, False, event.at)


async def on_care_team_declared(ctx: EventContext, event: CareTeamDeclared) -> None:
    """ACC_06: each member, by their own identifier, while the episode lasts."""
    await repository.care_team_declared(
        ctx.conn,
        event.episode_id,
        event.ins,
        event.finess,
        event.members,
        event.starts_at,
        event.ends_at,
    )


async def on_care_team_ended(ctx: EventContext, event: CareTeamEnded) -> None:
    await repository.care_team_ended(ctx.conn, event.episode_id, event.ins, event.ended_at)


async def on_catalogue_referenced(ctx: EventContext, event: CatalogueServiceReferenced) -> None:
    await repository.catalogue_changed(ctx.conn, event.service_id, event.categories, True, event.at)


async def on_catalogue_dereferenced(ctx: EventContext, event: CatalogueServiceDereferenced) -> None:
    """ACC_15: an application out of the catalogue is refused, whatever the holder chose."""
    await repository.catalogue_changed(ctx.conn, event.service_id, None, False, event.at)


async def _require_open_space(conn: Any, ins: str) -> None:
    """ACC_17: a closed space takes nothing but its holder's closure and reactivation requests
    (identity's), so none of access's commands, for the holder neither."""
    status = await spaces.status(conn, ins)
    if status is None:
        raise NotFound(f"no space for INS {ins}")
    if status == "closed":
        raise Conflict("the space is closed (ACC_17)", code=ErrorCode.SPACE_CLOSED, rule="ACC_17")


async def _manage(
    ctx: CommandContext[Any], conn: Any, ins: str, *, delegable: bool = True
) -> Claims:
    """The holder or their representative (or the treating physician they delegated to), on a
    space that is not closed."""
    actor = ctx.require_actor()
    await _require_holder_of(ctx, conn, actor, ins, delegable=delegable)
    await _require_open_space(conn, ins)
    return actor


async def _given(
    uow: UnitOfWork,
    ins: str,
    kind: Grantee,
    grantee_id: str,
    now: datetime,
    until: datetime | None,
) -> None:
    """ACC_14: retention keeps the end of a time-limited authorization as a deadline."""
    await uow.emit(
        AuthorizationGiven(
            ins=ins, grantee_kind=kind, grantee_id=grantee_id, given_at=now, until=until
        )
    )


async def _withdrawn(
    uow: UnitOfWork, ins: str, kind: Grantee, grantee_id: str, now: datetime
) -> None:
    await uow.emit(
        AuthorizationWithdrawn(ins=ins, grantee_kind=kind, grantee_id=grantee_id, withdrawn_at=now)
    )


async def on_authorization_end_due(ctx: EventContext, event: AuthorizationEndDue) -> None:
    """ACC_14: decisions stopped honouring it at its end; now it leaves the holder's current
    permissions too (its end stays in the deadlines the holder lists)."""
    await repository.delete_ended_authorization(
        ctx.conn, event.ins, event.grantee_kind, event.grantee_id, event.due_at
    )


def _require_future(ctx: CommandContext[Any], until: datetime | None) -> None:
    if until is not None and until <= ctx.runtime.now():
        raise Conflict("the end of the authorization is already past")


async def authorize_professional(
    ctx: CommandContext, c: cmd.AuthorizeProfessional
) -> cmd.Authorization:
    """ACC_05 / ACC_14: the holder authorizes a professional, permanently or until a date;
    ACC_11: expressly, after information, for those who need it."""
    _require_future(ctx, c.until)
    async with ctx.unit_of_work() as uow:
        actor = await _manage(ctx, uow.conn, c.ins)
        now = ctx.runtime.now()
        await repository.upsert_authorization(
            uow.conn, c.ins, c.rpps, c.until, now, actor.sub, express=c.express
        )
        await _given(uow, c.ins, "professional", c.rpps, now, c.until)
        return uow.answer(
            cmd.Authorization(ins=c.ins, rpps=c.rpps, until=c.until, express=c.express)
        )


async def collect_consent(
    ctx: CommandContext[AccessSettings], c: cmd.CollectConsent
) -> cmd.Authorization:
    """ACC_05: a professional who has access (their own decision, traced) records the holder's
    consent for another, with the reason; the holder sees both in their permissions and in
    their history, and is alerted of it like of any access."""
    _require_future(ctx, c.until)
    actor = ctx.require_actor()
    if actor.kind != "professional":
        raise Forbidden("only a professional collects a consent on the holder's behalf (ACC_05)")
    if c.rpps == actor.sub:
        raise Conflict("a professional does not collect a consent for themselves (ACC_05)")
    async with ctx.unit_of_work() as uow:
        await _require_open_space(uow.conn, c.ins)
        _, decision, _ = await _decide_and_trace(
            ctx,
            uow,
            actor,
            c.ins,
            "read",
            purpose=c.reason,
            traced_as="collect_consent",
            consent_for=c.rpps,
            consent_reason=c.reason_code,
        )
        if not decision.granted or decision.emergency:
            # Nothing was done on the dossier: the refusal rolls the trace back with the rest.
            raise Forbidden(
                "only a professional who has access collects a consent for another"
                f" ({decision.rule}: {decision.reason})",
                code=ErrorCode.ACCESS_DENIED,
                rule="ACC_05",
            )
        await repository.upsert_authorization(
            uow.conn,
            c.ins,
            c.rpps,
            c.until,
            ctx.runtime.now(),
            actor.sub,
            collected_by=actor.sub,
            reason_code=c.reason_code,
            reason=c.reason,
        )
        await _given(uow, c.ins, "professional", c.rpps, ctx.runtime.now(), c.until)
        reply = uow.answer(cmd.Authorization(ins=c.ins, rpps=c.rpps, until=c.until))
    _count_decision(ctx, decision, "collect_consent")  # committed: counted
    return reply


async def revoke_authorization(ctx: CommandContext, c: cmd.RevokeAuthorization) -> cmd.Revocation:
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        if not await repository.delete_authorization(uow.conn, c.ins, c.rpps):
            raise NotFound(f"professional {c.rpps} is not authorized")
        await _withdrawn(uow, c.ins, "professional", c.rpps, ctx.runtime.now())
        return uow.answer(cmd.Revocation(ins=c.ins, rpps=c.rpps, authorized=False))


async def block_professional(ctx: CommandContext, c: cmd.BlockProfessional) -> cmd.BlockStatus:
    """ACC_08: the holder blocks a professional; never the treating physician."""
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        if await repository.is_treating_physician(uow.conn, c.ins, c.rpps):
            raise Conflict("the treating physician cannot be blocked (ACC_04, ACC_08)")
        await repository.insert_block(uow.conn, c.ins, c.rpps, ctx.runtime.now())
        return uow.answer(cmd.BlockStatus(ins=c.ins, rpps=c.rpps, blocked=True))


async def unblock_professional(ctx: CommandContext, c: cmd.UnblockProfessional) -> cmd.BlockStatus:
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        await repository.delete_block(uow.conn, c.ins, c.rpps)
        return uow.answer(cmd.BlockStatus(ins=c.ins, rpps=c.rpps, blocked=False))


async def authorize_establishment(
    ctx: CommandContext, c: cmd.AuthorizeEstablishment
) -> cmd.EstablishmentAuthorization:
    """ACC_14: the establishment's staff, each with their own card, permanently or until a
    date."""
    _require_future(ctx, c.until)
    async with ctx.unit_of_work() as uow:
        actor = await _manage(ctx, uow.conn, c.ins)
        now = ctx.runtime.now()
        await repository.upsert_establishment_authorization(
            uow.conn, c.ins, c.finess, c.until, now, actor.sub
        )
        await _given(uow, c.ins, "establishment", c.finess, now, c.until)
        return uow.answer(
            cmd.EstablishmentAuthorization(
                ins=c.ins, finess=c.finess, authorized=True, until=c.until
            )
        )


async def revoke_establishment_authorization(
    ctx: CommandContext, c: cmd.RevokeEstablishmentAuthorization
) -> cmd.EstablishmentAuthorization:
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        if not await repository.delete_establishment_authorization(uow.conn, c.ins, c.finess):
            raise NotFound(f"establishment {c.finess} is not authorized")
        await _withdrawn(uow, c.ins, "establishment", c.finess, ctx.runtime.now())
        return uow.answer(
            cmd.EstablishmentAuthorization(ins=c.ins, finess=c.finess, authorized=False)
        )


async def block_establishment(
    ctx: CommandContext, c: cmd.BlockEstablishment
) -> cmd.EstablishmentBlock:
    """ACC_08: none of the establishment's staff reads or deposits (the treating physician
    still does: the decision puts ACC_04 first)."""
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        await repository.set_establishment_block(uow.conn, c.ins, c.finess, True, ctx.runtime.now())
        return uow.answer(cmd.EstablishmentBlock(ins=c.ins, finess=c.finess, blocked=True))


async def unblock_establishment(
    ctx: CommandContext, c: cmd.UnblockEstablishment
) -> cmd.EstablishmentBlock:
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        await repository.set_establishment_block(
            uow.conn, c.ins, c.finess, False, ctx.runtime.now()
        )
        return uow.answer(cmd.EstablishmentBlock(ins=c.ins, finess=c.finess, blocked=False))


async def set_app_access(ctx: CommandContext, c: cmd.SetAppAccess) -> cmd.AppAccess:
    """ACC_15: the categories a catalogue service may see; the decision also keeps them within
    what the catalogue references it for."""
    categories = sorted({str(x) for x in c.categories})
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        await repository.set_app_grant(uow.conn, c.ins, c.service_id, categories, ctx.runtime.now())
        return uow.answer(
            cmd.AppAccess(
                ins=c.ins, service_id=c.service_id, categories=[DataCategory(x) for x in categories]
            )
        )


async def set_emergency_objection(
    ctx: CommandContext, c: cmd.SetEmergencyObjection
) -> cmd.EmergencyObjection:
    """ACC_09: set or lift, at any time."""
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins)
        await repository.set_emergency_objection(uow.conn, c.ins, c.objected, ctx.runtime.now())
        return uow.answer(cmd.EmergencyObjection(ins=c.ins, objected=c.objected))


async def delegate_to_treating_physician(
    ctx: CommandContext, c: cmd.DelegateToTreatingPhysician
) -> cmd.TreatingPhysicianDelegation:
    """ACC_04: the holder's own request, never the physician's."""
    async with ctx.unit_of_work() as uow:
        await _manage(ctx, uow.conn, c.ins, delegable=False)
        await repository.set_delegation(uow.conn, c.ins, c.delegated, ctx.runtime.now())
        return uow.answer(cmd.TreatingPhysicianDelegation(ins=c.ins, delegated=c.delegated))


async def list_permissions(ctx: CommandContext, c: cmd.ListPermissions) -> cmd.Permissions:
    """ACC_02: the holder sees who is allowed, who is blocked, which apps see what, and their
    emergency objection."""
    async with ctx.runtime.pool.acquire() as conn:
        await _manage(ctx, conn, c.ins)
        permissions = await repository.list_permissions(conn, c.ins, ctx.runtime.now())
    return cmd.Permissions.model_validate(permissions)


async def list_access_history(ctx: CommandContext, c: cmd.ListAccessHistory) -> cmd.AccessHistory:
    """ACC_03: the holder reads every trace, newest first, a page at a time (by keyset: as fast
    on page 1,000 as on page 1), by actor or period if asked."""
    async with ctx.runtime.pool.acquire() as conn:
        await _manage(ctx, conn, c.ins)
        rows = await repository.traces_page(
            conn,
            c.ins,
            c.page_size + 1,
            paging.decode_cursor(c.cursor) if c.cursor else None,
            c.actor_id,
            c.since,
            c.until,
        )
    more = len(rows) > c.page_size
    rows = rows[: c.page_size]
    last = rows[-1] if rows else None
    return cmd.AccessHistory(
        traces=[
            cmd.AccessTrace.model_validate({k: r[k] for k in r.keys() if k != "n"}) for r in rows
        ],
        next_cursor=paging.encode_cursor(last["at"], last["n"]) if more and last else None,
    )
