"""identity's use cases: each one transaction, its events written to the outbox in it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from libs import outbox
from libs.contracts import commands as cmd
from libs.contracts.events import ContactChanged, SpaceAnnounced, SpaceClosed, SpaceOpened
from libs.contracts.rpc import ErrorCode
from libs.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from libs.runtime import CommandContext, EventContext
from libs.tokens import current_signing_key, issue_for, public_key, verify_bytes
from services.identity import domain, repository
from services.identity.background import CodeMailer
from services.identity.settings import IdentitySettings

CHALLENGE_TTL = timedelta(minutes=2)
CODE_TTL = timedelta(minutes=10)
TOKEN_TTL = {
    "holder": timedelta(hours=1),
    "professional": timedelta(hours=12),  # a card session
    "operator": timedelta(hours=1),
}


def _require_operator(ctx: CommandContext[IdentitySettings]) -> None:
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator registers persons and professionals")


def sign_in_policy(settings: IdentitySettings) -> domain.SignInPolicy:
    return domain.SignInPolicy(
        code_ttl=CODE_TTL,
        codes_per_ins=settings.code_requests_per_ins,
        codes_per_caller=settings.code_requests_per_caller,
        rate_window=timedelta(seconds=settings.code_rate_window_seconds),
        max_failures=settings.sign_in_max_failures,
        failure_window=timedelta(seconds=settings.sign_in_failure_window_seconds),
        lockout=timedelta(seconds=settings.sign_in_lockout_seconds),
    )


def _code_hash(ctx: CommandContext[IdentitySettings], ins: str, code: str) -> str:
    """Keyed with identity's own secret: the table alone cannot be tried against 10⁶ codes.

    The secret is the current signing key, which changes once per rotation (live codes, ten
    minutes long, are then to be asked again)."""
    secret = current_signing_key(ctx.runtime.settings.identity_signing_keys)["d"]
    key = hashlib.sha256(b"holder-code:" + secret.encode()).digest()
    return hmac.new(key, f"{ins}:{code}".encode(), hashlib.sha256).hexdigest()


async def register_holder(
    ctx: CommandContext[IdentitySettings], c: cmd.RegisterHolder
) -> cmd.SpaceAnnouncement:
    """SPC_01/SPC_02: a person is registered and their space announced (opens in six weeks)."""
    _require_operator(ctx)
    ins = domain.validate_nir(c.nir)
    now = ctx.runtime.now()
    minor = domain.is_minor(c.birth_date, now.date())
    if minor and not c.legal_representative_email:
        raise InvalidInput("a minor's space needs the legal representative's contact (SPC_04)")
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
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
        await uow.emit(SpaceAnnounced(ins=ins, announced_at=now, minor=minor))
        # Coarse facts only: the addresses stay here (the notifier asks GetAlertContact).
        channels = domain.alert_channels(
            domain.alert_contact(minor, c.email, c.legal_representative_email),
            domain.alert_phone(minor, c.phone),
        )
        await uow.emit(ContactChanged(ins=ins, channels=channels))
        return uow.answer(
            cmd.SpaceAnnouncement(
                ins=ins, status="announced", minor=minor, opens_at=now + domain.OPENING_PERIOD
            )
        )


async def object_to_space(
    ctx: CommandContext[IdentitySettings], c: cmd.ObjectToSpace
) -> cmd.Objection:
    """SPC_01: the person objects within the six weeks, themselves (signed in with the code
    sent to them) or through the operator."""
    actor = ctx.require_actor()
    if not domain.may_object(actor.kind, actor.sub, c.ins):
        raise Forbidden("only the person or the operator objects to a space")
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        space = await repository.lock_space(uow.conn, c.ins)
        if space is None:
            raise NotFound(f"no space for INS {c.ins}")
        domain.check_objection(space["status"], space["announced_at"], now)
        await repository.set_space_status(uow.conn, c.ins, "objected", now)
        return uow.answer(cmd.Objection(ins=c.ins, status="objected"))


async def open_space_when_due(ctx: EventContext[IdentitySettings], event: Any) -> None:
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


async def register_professional(
    ctx: CommandContext[IdentitySettings], c: cmd.RegisterProfessional
) -> cmd.ProfessionalRecord:
    _require_operator(ctx)
    try:
        public_key(c.card_public_key)
    except ValueError:
        raise InvalidInput("card_public_key is not an Ed25519 public key") from None
    async with ctx.unit_of_work() as uow:
        if not await repository.insert_professional(
            uow.conn,
            rpps=c.rpps,
            first_name=c.first_name,
            last_name=c.last_name,
            profession=c.profession,
            specialty=c.specialty,
            card_public_key=c.card_public_key,
            now=ctx.runtime.now(),
        ):
            raise Conflict(f"professional {c.rpps} is already registered")
        return uow.answer(cmd.ProfessionalRecord(rpps=c.rpps))


async def request_challenge(
    ctx: CommandContext[IdentitySettings], c: cmd.RequestChallenge
) -> cmd.Challenge:
    now = ctx.runtime.now()
    challenge = secrets.token_urlsafe(32)
    async with ctx.runtime.pool.acquire() as conn:
        await repository.insert_challenge(conn, challenge, c.kind, c.subject, now + CHALLENGE_TTL)
    return cmd.Challenge(challenge=challenge, expires_at=now + CHALLENGE_TTL)


async def sign_in_with_card(
    ctx: CommandContext[IdentitySettings], c: cmd.SignInWithCard
) -> cmd.Session:
    """A professional (CPS card) or an operator proves the key by signing a fresh challenge."""
    now = ctx.runtime.now()
    settings = ctx.runtime.settings
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
        settings.identity_signing_keys,
        sub=c.subject,
        kind=c.kind,
        name=name,
        profession=profession,
        specialty=specialty,
        now=now,
        ttl=ttl,
        issuer=settings.identity_issuer,
    )
    return cmd.Session(token=token, expires_at=now + ttl)


async def request_holder_code(
    ctx: CommandContext[IdentitySettings], c: cmd.RequestHolderCode, mailer: CodeMailer
) -> cmd.CodeRequested:
    """SPC_03: a one-time code, sent to the holder's e-mail.

    The same reply, in about the same time, whatever the INS: registered or not, with an e-mail
    or not, a minor (no codes of their own, SPC_04) or not, space open or not. The mail leaves
    after the reply. Limits per INS (counted for any INS) and per caller; a new code revokes the
    previous one, and a request that sends nothing revokes any live code too.
    """
    policy = sign_in_policy(ctx.runtime.settings)
    now = ctx.runtime.now()
    window = domain.rate_window_start(now, policy.rate_window)
    code = f"{secrets.randbelow(10**6):06d}"
    async with ctx.runtime.pool.acquire() as conn:
        async with conn.transaction():
            by_caller = await repository.count_request(conn, domain.caller_key(ctx.caller), window)
            by_ins = await repository.count_request(conn, domain.ins_key(c.ins), window)
            limited = by_caller > policy.codes_per_caller or by_ins > policy.codes_per_ins
            if not limited:
                person = await repository.get_person(conn, c.ins)
                space = await repository.get_space(conn, c.ins)
                to = domain.code_recipient(
                    space["status"] if space else None,
                    person["birth_date"] if person else None,
                    person["email"] if person else None,
                    now.date(),
                )
                if to is None:
                    await repository.revoke_holder_code(conn, c.ins)
                else:
                    await repository.replace_holder_code(
                        conn, c.ins, _code_hash(ctx, c.ins, code), now, now + policy.code_ttl
                    )
        if limited:
            # The same for any INS. The counts above are kept: a refused request counts too.
            raise DomainError(
                "too many code requests: wait before asking for a new code",
                code=ErrorCode.RATE_LIMITED,
            )
    if to is not None:
        mailer.submit(to, code)
    return cmd.CodeRequested.model_validate(domain.CODE_REQUEST_REPLY)


async def sign_in_holder(ctx: CommandContext[IdentitySettings], c: cmd.SignInHolder) -> cmd.Session:
    """SPC_03: the holder's live code, once. Wrong codes count per holder, across codes: past
    the limit sign-in is locked for a while and the live code revoked."""
    settings = ctx.runtime.settings
    policy = sign_in_policy(settings)
    now = ctx.runtime.now()
    person = None
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        await repository.lock_sign_in(conn, c.ins)
        guard = await repository.get_guard(conn, c.ins)
        locked = domain.is_locked(guard, now)
        if not locked:
            stored = await repository.get_holder_code(conn, c.ins)
            if domain.code_matches(
                stored["code_hash"] if stored else None,
                stored["expires_at"] if stored else None,
                _code_hash(ctx, c.ins, c.code),
                now,
            ):
                await repository.revoke_holder_code(conn, c.ins)  # used: gone
                await repository.delete_guard(conn, c.ins)
                person = await repository.get_person(conn, c.ins)
            else:
                guard = domain.after_failure(guard, now, policy)
                await repository.save_guard(conn, c.ins, guard)
                if domain.is_locked(guard, now):
                    await repository.revoke_holder_code(conn, c.ins)
    # Refusals are raised after commit, so the failure they count is kept.
    if locked or domain.is_locked(guard, now):
        assert guard.locked_until is not None
        raise Unauthenticated(
            "too many wrong codes: sign-in is locked until"
            f" {guard.locked_until.isoformat(timespec='seconds')}; then ask for a new code",
            code=ErrorCode.SIGN_IN_LOCKED,
        )
    if person is None:
        raise Unauthenticated("the code is wrong, used or expired")
    ttl = TOKEN_TTL["holder"]
    token = issue_for(
        settings.identity_signing_keys,
        sub=c.ins,
        kind="holder",
        name=f"{person['first_name']} {person['last_name']}",
        now=now,
        ttl=ttl,
        issuer=settings.identity_issuer,
    )
    return cmd.Session(token=token, expires_at=now + ttl)


# --- identity.contacts: for the notifier only -----------------------------------------------


def require_service_caller(ctx: CommandContext[IdentitySettings], service: str) -> None:
    """Refuse unless the broker user that sent the request is `service`'s own.

    The broker validates `user_id` against the connection's user, so this names the sending
    service whatever the payload says. A request that names no user is refused.
    """
    if not domain.is_service_caller(ctx.caller, ctx.runtime.bus_user(service)):
        raise Forbidden(f"only the {service} service may ask this")


async def get_alert_contact(
    ctx: CommandContext[IdentitySettings], c: cmd.GetAlertContact
) -> cmd.AlertContact:
    """NTF_04: where the holder's alerts go (a minor's: the legal representative's)."""
    require_service_caller(ctx, "notifier")
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn:
        person = await repository.get_person(conn, c.ins)
    if person is None:
        raise NotFound(f"no person with INS {c.ins}")
    minor = domain.is_minor(person["birth_date"], now.date())
    return cmd.AlertContact(
        ins=c.ins,
        display_name=f"{person['first_name']} {person['last_name']}",
        minor=minor,
        email=domain.alert_contact(minor, person["email"], person["legal_representative_email"]),
        phone=domain.alert_phone(minor, person["phone"]),
    )


async def close_space(ctx: CommandContext[IdentitySettings], c: cmd.CloseSpace) -> cmd.Closure:
    """RET_01: the holder (or the operator at their request) closes the space."""
    actor = ctx.require_actor()
    if not (actor.kind == "operator" or (actor.kind == "holder" and actor.sub == c.ins)):
        raise Forbidden("only the holder, or the operator at their request, closes a space")
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        space = await repository.lock_space(uow.conn, c.ins)
        if space is None:
            raise NotFound(f"no space for INS {c.ins}")
        domain.check_closable(space["status"])
        await repository.set_space_status(uow.conn, c.ins, "closed", now)
        await uow.emit(
            SpaceClosed(ins=c.ins, closed_at=now, requested_by=f"{actor.kind}:{actor.sub}")
        )
        return uow.answer(cmd.Closure(ins=c.ins, status="closed", closed_at=now))


async def get_signing_keys(
    ctx: CommandContext[IdentitySettings], _c: cmd.GetSigningKeys
) -> cmd.Jwks:
    """The verification keys every service is configured with (identity's own included)."""
    return cmd.Jwks.model_validate_json(ctx.runtime.settings.identity_jwks)
