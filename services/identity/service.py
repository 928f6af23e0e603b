"""identity's use cases: each one transaction, its events written to the outbox in it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from libs import outbox
from libs.contracts import commands as cmd
from libs.contracts.events import ContactChanged, SpaceAnnounced, SpaceClosed, SpaceOpened
from libs.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from libs.mail import send_mail
from libs.runtime import CommandContext, EventContext
from libs.tokens import issue_for, private_key, public_key, verify_bytes
from services.identity import domain, repository
from services.identity.settings import IdentitySettings

CHALLENGE_TTL = timedelta(minutes=2)
CODE_TTL = timedelta(minutes=10)
CODE_ATTEMPTS = 5
TOKEN_TTL = {
    "holder": timedelta(hours=1),
    "professional": timedelta(hours=12),  # a card session
    "operator": timedelta(hours=1),
}


def _settings(ctx: CommandContext) -> IdentitySettings:
    settings = ctx.runtime.settings
    assert isinstance(settings, IdentitySettings)
    return settings


def _require_operator(ctx: CommandContext) -> None:
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator registers persons and professionals")


def _code_hash(ins: str, code: str) -> str:
    return hashlib.sha256(f"{ins}:{code}".encode()).hexdigest()


async def register_holder(ctx: CommandContext, c: cmd.RegisterHolder) -> dict[str, Any]:
    """SPC_01/SPC_02: a person is registered and their space announced (opens in six weeks)."""
    _require_operator(ctx)
    ins = domain.validate_nir(c.nir)
    now = ctx.runtime.now()
    minor = domain.is_minor(c.birth_date, now.date())
    if minor and not c.legal_representative_email:
        raise InvalidInput("a minor's space needs the legal representative's contact (SPC_04)")
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        if not await repository.insert_person(
            conn,
            ins=ins,
            first_name=c.first_name,
            last_name=c.last_name,
            birth_date=c.birth_date,
            email=c.email,
            phone=c.phone,
            legal_representative_email=c.legal_representative_email,
            now=now,
        ):
            raise Conflict(f"a person with INS {ins} is already registered")
        await repository.insert_space(conn, ins, now)
        common = {"holder_key": ins, "occurred_at": now, "correlation_id": ctx.correlation_id}
        await outbox.add_event(
            conn, SpaceAnnounced(ins=ins, announced_at=now, minor=minor), **common
        )
        await outbox.add_event(
            conn,
            ContactChanged(
                ins=ins,
                display_name=f"{c.first_name} {c.last_name}",
                email=domain.alert_contact(minor, c.email, c.legal_representative_email),
                phone=None if minor else c.phone,
            ),
            **common,
        )
    return {
        "ins": ins,
        "status": "announced",
        "minor": minor,
        "opens_at": (now + domain.OPENING_PERIOD).isoformat(),
    }


async def object_to_space(ctx: CommandContext, c: cmd.ObjectToSpace) -> dict[str, Any]:
    _require_operator(ctx)
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        space = await repository.lock_space(conn, c.ins)
        if space is None:
            raise NotFound(f"no space for INS {c.ins}")
        domain.check_objection(space["status"], space["announced_at"], now)
        await repository.set_space_status(conn, c.ins, "objected", now)
    return {"ins": c.ins, "status": "objected"}


async def open_space_when_due(ctx: EventContext, event: Any) -> None:
    """SPC_01 / RET_04: retention says six weeks have passed; open unless objected."""
    space = await repository.lock_space(ctx.conn, event.ins)
    if space is None or not domain.can_open(space["status"]):
        return
    now = ctx.runtime.now()
    await repository.set_space_status(ctx.conn, event.ins, "open", now)
    await outbox.add_event(
        ctx.conn,
        SpaceOpened(ins=event.ins, opened_at=now),
        holder_key=event.ins,
        occurred_at=now,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )


async def register_professional(ctx: CommandContext, c: cmd.RegisterProfessional) -> dict[str, Any]:
    _require_operator(ctx)
    try:
        public_key(c.card_public_key)
    except ValueError:
        raise InvalidInput("card_public_key is not an Ed25519 public key") from None
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        if not await repository.insert_professional(
            conn,
            rpps=c.rpps,
            first_name=c.first_name,
            last_name=c.last_name,
            profession=c.profession,
            specialty=c.specialty,
            card_public_key=c.card_public_key,
            now=ctx.runtime.now(),
        ):
            raise Conflict(f"professional {c.rpps} is already registered")
    return {"rpps": c.rpps}


async def request_challenge(ctx: CommandContext, c: cmd.RequestChallenge) -> dict[str, Any]:
    now = ctx.runtime.now()
    challenge = secrets.token_urlsafe(32)
    async with ctx.runtime.pool.acquire() as conn:
        await repository.insert_challenge(conn, challenge, c.kind, c.subject, now + CHALLENGE_TTL)
    return {"challenge": challenge, "expires_at": (now + CHALLENGE_TTL).isoformat()}


async def sign_in_with_card(ctx: CommandContext, c: cmd.SignInWithCard) -> dict[str, Any]:
    """A professional (CPS card) or an operator proves the key by signing a fresh challenge."""
    now = ctx.runtime.now()
    settings = _settings(ctx)
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        if c.kind == "professional":
            pro = await repository.get_professional(conn, c.subject)
            if pro is None:
                raise Unauthenticated(f"unknown professional {c.subject}")
            key, name = pro["card_public_key"], f"{pro['first_name']} {pro['last_name']}"
            profession, specialty = pro["profession"], pro["specialty"]
        else:
            key = settings.operator_public_keys.get(c.subject)
            if key is None:
                raise Unauthenticated(f"unknown operator {c.subject}")
            name, profession, specialty = f"operator {c.subject}", None, None
        if not await repository.use_challenge(conn, c.challenge, c.kind, c.subject, now):
            raise Unauthenticated("the challenge is unknown, used or expired: ask a new one")
    if not verify_bytes(public_key(key), c.challenge.encode(), c.signature):
        raise Unauthenticated("the card's signature does not match")
    ttl = TOKEN_TTL[c.kind]
    token = issue_for(
        private_key(settings.identity_private_key),
        sub=c.subject,
        kind=c.kind,
        name=name,
        profession=profession,
        specialty=specialty,
        now=now,
        ttl=ttl,
    )
    return {"token": token, "expires_at": (now + ttl).isoformat()}


async def request_holder_code(ctx: CommandContext, c: cmd.RequestHolderCode) -> dict[str, Any]:
    """SPC_03: a one-time code, sent to the holder's e-mail."""
    settings = _settings(ctx)
    now = ctx.runtime.now()
    code = f"{secrets.randbelow(10**6):06d}"
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        person = await repository.get_person(conn, c.ins)
        space = await repository.lock_space(conn, c.ins)
        if person is None or space is None:
            raise NotFound(f"no space for INS {c.ins}")
        if space["status"] not in ("open", "closed"):
            raise Conflict(f"the space is {space['status']}: it cannot be signed into yet")
        if domain.is_minor(person["birth_date"], now.date()):
            raise Forbidden(
                "a minor has no access codes of their own: the legal representative acts (SPC_04)"
            )
        if not person["email"]:
            raise Conflict("no e-mail on file: sign-in online is not possible (SPC_06)")
        await repository.insert_holder_code(conn, c.ins, _code_hash(c.ins, code), now + CODE_TTL)
    await send_mail(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        to=person["email"],
        subject="Mon espace santé : votre code de connexion",
        body=f"Votre code de connexion à usage unique : {code}\nIl expire dans 10 minutes.",
        message_id=f"code-{secrets.token_hex(8)}",
    )
    return {"sent_to": _mask(person["email"])}


def _mask(email: str) -> str:
    local, _, domain_ = email.partition("@")
    return f"{local[:1]}***@{domain_}"


async def sign_in_holder(ctx: CommandContext, c: cmd.SignInHolder) -> dict[str, Any]:
    settings = _settings(ctx)
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        person = await repository.get_person(conn, c.ins)
        ok = person is not None and await repository.use_holder_code(
            conn, c.ins, _code_hash(c.ins, c.code), now, CODE_ATTEMPTS
        )
    if not ok or person is None:
        raise Unauthenticated("the code is wrong, used or expired")
    ttl = TOKEN_TTL["holder"]
    token = issue_for(
        private_key(settings.identity_private_key),
        sub=c.ins,
        kind="holder",
        name=f"{person['first_name']} {person['last_name']}",
        now=now,
        ttl=ttl,
    )
    return {"token": token, "expires_at": (now + ttl).isoformat()}


async def close_space(ctx: CommandContext, c: cmd.CloseSpace) -> dict[str, Any]:
    """RET_01: the holder (or the operator at their request) closes the space."""
    actor = ctx.require_actor()
    if not (actor.kind == "operator" or (actor.kind == "holder" and actor.sub == c.ins)):
        raise Forbidden("only the holder, or the operator at their request, closes a space")
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        space = await repository.lock_space(conn, c.ins)
        if space is None:
            raise NotFound(f"no space for INS {c.ins}")
        domain.check_closable(space["status"])
        await repository.set_space_status(conn, c.ins, "closed", now)
        await outbox.add_event(
            conn,
            SpaceClosed(ins=c.ins, closed_at=now, requested_by=f"{actor.kind}:{actor.sub}"),
            holder_key=c.ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
        )
    return {"ins": c.ins, "status": "closed", "closed_at": now.isoformat()}
