"""identity's use cases for the people who act for a holder without a professional card.

- Representatives of a living holder (SPC_04: the legal representative of a minor, until the
  eighteenth birthday; SPC_05: the person in charge of an adult's protection measure), appointed
  by the operator. At eighteen the representation ends by itself (retention's `ProxyEndDue`), the
  person takes over and is told (`HolderCameOfAge`).
- After the holder's death (`RecordDeath`), heirs, partners and court-ordered experts file an
  access request that the operator validates (ACC_13).

Each signs in with a one-time code sent to the contact the operator verified (`RequestProxyCode`,
`SignInProxy`); the token acts for one holder (`acts_for`) in one role. `ProxyAppointed` and
`ProxyEnded` tell access who may act for whom; access decides.
"""

from __future__ import annotations

import uuid
from typing import Any

from libs.contracts import commands as cmd
from libs.contracts.events import (
    HolderCameOfAge,
    HolderDeceased,
    ProxyEndDue,
    ProxyEnded,
    SpaceClosed,
)
from libs.contracts.rpc import ErrorCode
from libs.db import Conn
from libs.errors import Conflict, DomainError, Forbidden, NotFound, Unauthenticated
from libs.outbox import add_event
from libs.runtime import CommandContext, EventContext
from services.identity import domain, messages, repository
from services.identity.messages import Sender
from services.identity.service import (
    actor_label,
    contact_changed,
    issue_code,
    new_session,
    proxy_appointed,
    proxy_state,
    require_acting_for,
    sign_in_policy,
    spend_code,
)
from services.identity.settings import IdentitySettings


def _operator(ctx: CommandContext[IdentitySettings]) -> str:
    actor = ctx.require_actor()
    if actor.kind != "operator":
        raise Forbidden("only the operator does this")
    return actor_label(actor)


def _proxy_reply(row: Any) -> cmd.Proxy:
    return cmd.Proxy.model_validate({name: row[name] for name in cmd.Proxy.model_fields})


async def appoint_representative(
    ctx: CommandContext[IdentitySettings], c: cmd.AppointRepresentative, sender: Sender
) -> cmd.Proxy:
    """SPC_04 / SPC_05: the operator records who represents the holder; they are told their
    identifier at the address given."""
    by = _operator(ctx)
    now = ctx.runtime.now()
    if c.email is None and c.phone is None:
        raise Conflict("a representative needs an e-mail or a phone to sign in with")
    async with ctx.unit_of_work() as uow:
        person = await repository.lock_person(uow.conn, c.ins)
        if person is None:
            raise NotFound(f"no person with INS {c.ins}")
        if person["died_on"] is not None:
            raise Conflict("the holder has died: no representative can be appointed")
        ends_at = domain.representative_term(
            c.role, person["birth_date"], c.until, c.measure_reference, now
        )
        row = await repository.insert_proxy(
            uow.conn,
            proxy_id=uuid.uuid4(),
            ins=c.ins,
            kind="representative",
            role=c.role,
            first_name=c.first_name,
            last_name=c.last_name,
            email=c.email,
            phone=c.phone,
            measure_reference=c.measure_reference,
            starts_at=now,
            ends_at=ends_at,
            appointed_by=by,
        )
        await uow.emit(proxy_appointed(row))
        await uow.emit(await contact_changed(uow.conn, c.ins, now))
        outgoing = messages.appointed(row, person)
        reply = uow.answer(_proxy_reply(row))
    messages.send(sender, outgoing)
    return reply


async def end_representation(
    ctx: CommandContext[IdentitySettings], c: cmd.EndRepresentation
) -> cmd.Proxy:
    by = _operator(ctx)
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        row = await repository.get_proxy(uow.conn, c.proxy_id, lock=True)
        if row is None:
            raise NotFound(f"no proxy {c.proxy_id}")
        if row["ended_at"] is not None:
            raise Conflict("this appointment has already ended")
        await _end(uow.conn, uow.emit, row, now, f"revoked by {by}")
        ended = await repository.get_proxy(uow.conn, c.proxy_id)
        return uow.answer(_proxy_reply(ended))


async def _end(conn: Conn, emit: Any, row: Any, now: Any, reason: str) -> None:
    await repository.end_proxy(conn, row["proxy_id"], now, reason)
    await emit(ProxyEnded(proxy_id=row["proxy_id"], ins=row["ins"], ended_at=now, reason=reason))
    await emit(await contact_changed(conn, row["ins"], now))


async def list_proxies(ctx: CommandContext[IdentitySettings], c: cmd.ListProxies) -> cmd.Proxies:
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn:
        await require_acting_for(conn, actor, c.ins, now, operator=True)
        rows = await repository.proxies_of(conn, c.ins)
    return cmd.Proxies(proxies=[_proxy_reply(r) for r in rows])


async def on_proxy_end_due(ctx: EventContext[IdentitySettings], event: ProxyEndDue) -> None:
    """SPC_04: at eighteen the legal representative's authority ends and the person takes over
    (told by the notifier, `HolderCameOfAge`); SPC_05: a measure ends at its end date."""
    row = await repository.get_proxy(ctx.conn, event.proxy_id, lock=True)
    if row is None or row["ended_at"] is not None:
        return
    now = ctx.runtime.now()
    came_of_age = row["role"] == "legal_representative"
    reason = "came_of_age" if came_of_age else "measure_ended"

    async def emit(event: Any) -> None:
        await add_event(
            ctx.conn,
            event,
            holder_key=row["ins"],
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )

    await _end(ctx.conn, emit, row, now, reason)
    if came_of_age:
        await emit(HolderCameOfAge(ins=row["ins"], at=now))


# --- sign-in ------------------------------------------------------------------------------------


def _subject(proxy_id: uuid.UUID) -> str:
    return f"proxy:{proxy_id}"


async def request_proxy_code(
    ctx: CommandContext[IdentitySettings], c: cmd.RequestProxyCode, sender: Sender
) -> cmd.CodeRequested:
    async def recipient(conn: Conn, now: Any) -> tuple[domain.Channel, str] | None:
        row = await repository.get_proxy(conn, c.proxy_id)
        return domain.proxy_code_recipient(
            proxy_state(row) if row else None,
            row["email"] if row else None,
            row["phone"] if row else None,
            now,
        )

    return await issue_code(ctx, _subject(c.proxy_id), recipient, sender)


async def sign_in_proxy(ctx: CommandContext[IdentitySettings], c: cmd.SignInProxy) -> cmd.Session:
    """A token acting for one holder, in one role, while the appointment lasts."""
    if not await spend_code(ctx, _subject(c.proxy_id), c.code):
        raise Unauthenticated("the code is wrong, used or expired")
    async with ctx.runtime.pool.acquire() as conn:
        row = await repository.get_proxy(conn, c.proxy_id)
    if row is None or not proxy_state(row).active(ctx.runtime.now()):
        raise Unauthenticated("this appointment has ended")
    name = (
        " ".join(p for p in (row["first_name"], row["last_name"]) if p)
        or messages.ROLE_LABELS[row["role"]]
    )
    return new_session(
        ctx,
        sub=str(row["proxy_id"]),
        kind=row["kind"],
        name=name,
        acts_for=row["ins"],
        role=row["role"],
    )


# --- death and access after it (ACC_13) -----------------------------------------------------


async def record_death(ctx: CommandContext[IdentitySettings], c: cmd.RecordDeath) -> cmd.Death:
    """The operator records the death: representatives end, no code goes any more, and the
    space is closed (archived ten years, RET_01, RET_03), unless no space was ever opened."""
    by = _operator(ctx)
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        person = await repository.lock_person(uow.conn, c.ins)
        if person is None:
            raise NotFound(f"no person with INS {c.ins}")
        domain.check_death(c.died_on, person["birth_date"], person["died_on"], now.date())
        await repository.record_death(uow.conn, c.ins, c.died_on, now)
        await repository.revoke_code(uow.conn, c.ins)
        for row in await repository.active_representatives(uow.conn, c.ins, now):
            await _end(uow.conn, uow.emit, row, now, "holder_deceased")
        space = await repository.lock_space(uow.conn, c.ins)
        assert space is not None
        status = space["status"]
        if status in ("announced", "open"):
            # An announced space is closed too: it must never open for someone who died.
            await repository.set_space_status(uow.conn, c.ins, "closed", now)
            await uow.emit(SpaceClosed(ins=c.ins, closed_at=now, requested_by=by))
            status = "closed"
        await uow.emit(HolderDeceased(ins=c.ins, died_on=c.died_on, recorded_at=now))
        return uow.answer(cmd.Death(ins=c.ins, died_on=c.died_on, space_status=status))


async def file_access_request(
    ctx: CommandContext[IdentitySettings], c: cmd.FileAccessRequest
) -> cmd.AccessRequestReceipt:
    """ACC_13: anyone may file (there is no account yet); the operator checks. The answer is the
    same whatever the INS, dead or alive, known or not; filings are rate-limited per caller."""
    if c.email is None and c.phone is None:
        raise Conflict("give an e-mail or a phone: the answer and the codes go there")
    policy = sign_in_policy(ctx.runtime.settings)
    now = ctx.runtime.now()
    window = domain.rate_window_start(now, policy.rate_window)
    request_id = uuid.uuid4()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        filed = await repository.count_request(conn, f"requests:{ctx.caller or '-'}", window)
        if filed <= policy.codes_per_caller:
            await repository.insert_access_request(
                conn,
                request_id=request_id,
                ins=c.ins,
                relation=c.relation,
                first_name=c.first_name,
                last_name=c.last_name,
                email=c.email,
                phone=c.phone,
                reason=c.reason,
                filed_at=now,
            )
    if filed > policy.codes_per_caller:
        raise DomainError(
            "too many requests: wait before filing again", code=ErrorCode.RATE_LIMITED
        )
    return cmd.AccessRequestReceipt(
        request_id=request_id,
        status="pending",
        message="the request was received; the health insurance checks it and answers you",
    )


def _request_reply(row: Any) -> cmd.AccessRequest:
    return cmd.AccessRequest.model_validate({k: row[k] for k in cmd.AccessRequest.model_fields})


async def list_access_requests(
    ctx: CommandContext[IdentitySettings], c: cmd.ListAccessRequests
) -> cmd.AccessRequests:
    _operator(ctx)
    async with ctx.runtime.pool.acquire() as conn:
        rows = await repository.access_requests(conn, c.status, c.limit)
    return cmd.AccessRequests(requests=[_request_reply(r) for r in rows])


async def decide_access_request(
    ctx: CommandContext[IdentitySettings], c: cmd.DecideAccessRequest, sender: Sender
) -> cmd.AccessRequest:
    """ACC_13: validated, the requester becomes a proxy of the deceased holder (told their
    identifier at the contact the operator checked); refused, nothing else changes."""
    by = _operator(ctx)
    now = ctx.runtime.now()
    outgoing: list[messages.Outgoing] = []
    async with ctx.unit_of_work() as uow:
        request = await repository.lock_access_request(uow.conn, c.request_id)
        if request is None:
            raise NotFound(f"no access request {c.request_id}")
        person = await repository.get_person(uow.conn, request["ins"])
        domain.check_request_decision(
            request["status"],
            person is not None and person["died_on"] is not None,
            c.validate_request,
            bool(request["email"] or request["phone"]),
        )
        proxy_id = None
        if c.validate_request:
            row = await repository.insert_proxy(
                uow.conn,
                proxy_id=uuid.uuid4(),
                ins=request["ins"],
                kind="requester",
                role=request["relation"],
                first_name=request["first_name"],
                last_name=request["last_name"],
                email=request["email"],
                phone=request["phone"],
                measure_reference=None,
                starts_at=now,
                ends_at=None,
                appointed_by=by,
            )
            proxy_id = row["proxy_id"]
            await uow.emit(proxy_appointed(row))
            outgoing = messages.appointed(row, person)
        decided = await repository.decide_access_request(
            uow.conn,
            c.request_id,
            "validated" if c.validate_request else "refused",
            now,
            by,
            c.note,
            proxy_id,
        )
        reply = uow.answer(_request_reply(decided))
    messages.send(sender, outgoing)
    return reply
