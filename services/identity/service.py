"""identity's use cases for spaces and sign-in: each one transaction, its events written to the
outbox in it, its messages sent after it commits. Proxies and death are in `proxies.py`,
contacts and choices in `contacts.py`, the directory in `directory.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from libs import outbox, periods
from libs.contracts import commands as cmd
from libs.contracts.events import (
    ContactChanged,
    ProxyAppointed,
    SpaceActivated,
    SpaceAnnounced,
    SpaceClosed,
    SpaceDeletionRequested,
    SpaceOpened,
    SpaceReactivated,
)
from libs.contracts.rpc import ErrorCode
from libs.contracts.vocabulary import EU_COUNTRIES
from libs.db import Conn
from libs.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from libs.runtime import CommandContext, EventContext
from libs.tokens import Claims, current_signing_key, issue_for, public_key, verify_bytes
from libs.uow import UnitOfWork
from services.identity import domain, messages, repository
from services.identity.messages import Outgoing, Sender
from services.identity.settings import IdentitySettings

CHALLENGE_TTL = timedelta(minutes=2)
CODE_TTL = timedelta(minutes=10)
TOKEN_TTL = {
    "holder": timedelta(hours=1),
    "professional": timedelta(hours=12),  # a card session
    "operator": timedelta(hours=1),
    "representative": timedelta(hours=1),
    "requester": timedelta(hours=1),
    "app": timedelta(hours=1),
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


def _code_hash(ctx: CommandContext[IdentitySettings], subject: str, code: str) -> str:
    """Keyed with identity's own secret: the table alone cannot be tried against 10⁶ codes.

    The secret is the current signing key, which changes once per rotation (live codes, ten
    minutes long, are then to be asked again)."""
    secret = current_signing_key(ctx.runtime.settings.identity_signing_keys)["d"]
    key = hashlib.sha256(b"holder-code:" + secret.encode()).digest()
    return hmac.new(key, f"{subject}:{code}".encode(), hashlib.sha256).hexdigest()


async def activation_hash(ins: str, code: str) -> str:
    """Activation codes live for weeks, beyond a signing-key rotation: hashed with scrypt, salted
    by the INS, so that the table alone cannot be tried against the 2⁵⁰ codes, with no secret
    to rotate. About 50 ms, off the event loop (activations are rare)."""
    normalised = domain.normalise_activation_code(code).encode()
    digest = await asyncio.to_thread(
        hashlib.scrypt, normalised, salt=f"activation:{ins}".encode(), n=2**14, r=8, p=1
    )
    return digest.hex()


def actor_label(actor: Claims) -> str:
    return f"{actor.kind}:{actor.sub}"


async def acting_proxy(conn: Conn, actor: Claims) -> domain.ProxyState | None:
    """The proxy a representative's or requester's token names, as identity knows it now."""
    if actor.kind not in ("representative", "requester"):
        return None
    try:
        proxy_id = uuid.UUID(actor.sub)
    except ValueError:
        return None
    row = await repository.get_proxy(conn, proxy_id)
    return proxy_state(row) if row else None


def proxy_state(row: Any) -> domain.ProxyState:
    return domain.ProxyState(**{f.name: row[f.name] for f in dataclasses.fields(domain.ProxyState)})


async def protection_in_force(conn: Conn, ins: str, now: datetime) -> bool:
    """SPC_05: a protection representative decides for the holder."""
    return any(
        r["role"] == "protection_representative"
        for r in await repository.active_representatives(conn, ins, now)
    )


async def require_acting_for(
    conn: Conn, actor: Claims, ins: str, now: datetime, *, operator: bool = False
) -> None:
    """The holder themselves (unless under a protection measure, SPC_05), an active
    representative of theirs (SPC_04, SPC_05), or, where `operator`, the operator."""
    domain.require_acting_for(
        actor.kind,
        actor.sub,
        ins,
        await acting_proxy(conn, actor),
        now,
        operator=operator,
        holder_represented=actor.kind == "holder" and await protection_in_force(conn, ins, now),
    )


async def alert_destination(
    conn: Conn, person: Any, now: datetime
) -> tuple[bool, str | None, str | None]:
    """(represented, email, phone) where the holder's alerts and activation codes go: a minor's
    or a protected adult's to their first active representative (NTF_04), else their own."""
    representatives = await repository.active_representatives(conn, person["ins"], now)
    if representatives:
        first = representatives[0]
        return True, first["email"], first["phone"]
    if domain.is_minor(person["birth_date"], now.date()):
        return True, person["legal_representative_email"], None
    return False, person["email"], person["phone"]


async def contact_changed(conn: Conn, ins: str, now: datetime) -> ContactChanged:
    """The coarse facts for the notifier: which channels the holder's alerts go by, and the
    time zone they tell times in."""
    person = await repository.get_person(conn, ins)
    assert person is not None
    represented, email, phone = await alert_destination(conn, person, now)
    chosen = ["email", "sms"] if represented else person["alert_channels"]
    return ContactChanged(
        ins=ins,
        channels=domain.preferred_channels(chosen, email, phone),
        time_zone=person["time_zone"],
    )


async def register_holder(
    ctx: CommandContext[IdentitySettings], c: cmd.RegisterHolder, sender: Sender
) -> cmd.SpaceAnnouncement:
    """SPC_01/SPC_02: a person is registered and their space announced (opens in six weeks).

    The announcement carries the activation code (SPC_03), sent to the person, or for a minor
    to the legal representative, who is recorded as such (SPC_04)."""
    _require_operator(ctx)
    ins = domain.validate_nir(c.nir)
    now = ctx.runtime.now()
    minor = domain.is_minor(c.birth_date, now.date())
    if minor and not c.legal_representative_email:
        raise InvalidInput("a minor's space needs the legal representative's contact (SPC_04)")
    code = domain.new_activation_code()
    code_hash = await activation_hash(ins, code)
    expires_at = now + domain.ACTIVATION_VALIDITY
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
        await repository.set_activation_code(conn, ins, code_hash, expires_at)
        await uow.emit(SpaceAnnounced(ins=ins, announced_at=now, minor=minor))
        if minor:
            proxy = await repository.insert_proxy(
                conn,
                proxy_id=uuid.uuid4(),
                ins=ins,
                kind="representative",
                role="legal_representative",
                first_name=None,
                last_name=None,
                email=c.legal_representative_email,
                phone=None,
                measure_reference=None,
                starts_at=now,
                ends_at=domain.coming_of_age_at(c.birth_date),
                appointed_by=actor_label(ctx.require_actor()),
            )
            await uow.emit(proxy_appointed(proxy))
            outgoing = messages.appointed(
                proxy, {"first_name": c.first_name, "last_name": c.last_name}
            )
        else:
            outgoing = []
        # Coarse facts only: the addresses stay here (the notifier asks GetAlertContact).
        await uow.emit(await contact_changed(conn, ins, now))
        outgoing += await _activation_message(conn, ins, code, expires_at, now)
        reply = uow.answer(
            cmd.SpaceAnnouncement(
                ins=ins, status="announced", minor=minor, opens_at=now + domain.OPENING_PERIOD
            )
        )
    messages.send(sender, outgoing)
    return reply


def proxy_appointed(row: Any) -> ProxyAppointed:
    return ProxyAppointed.model_validate({name: row[name] for name in ProxyAppointed.model_fields})


async def _activation_message(
    conn: Conn, ins: str, code: str, expires_at: datetime, now: datetime
) -> list[Outgoing]:
    """The activation code goes to the person, or to the one who acts for them (SPC_04)."""
    person = await repository.get_person(conn, ins)
    assert person is not None
    represented, email, phone = await alert_destination(conn, person, now)
    channel: domain.Channel = "email" if represented else person["code_channel"]
    to = domain.destination(channel, email, phone)
    if to is None:  # SPC_06: no channel; the operator hands the code over another way
        return []
    return [messages.activation_code(to[0], to[1], code, expires_at, for_someone_else=represented)]


async def object_to_space(
    ctx: CommandContext[IdentitySettings], c: cmd.ObjectToSpace
) -> cmd.Objection:
    """SPC_01: the person objects within the six weeks, themselves (signed in with the code
    sent to them), through their representative, or through the operator."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        if not domain.may_object(actor.kind, actor.sub, c.ins):
            await require_acting_for(uow.conn, actor, c.ins, now, operator=True)
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


async def activate_space(
    ctx: CommandContext[IdentitySettings], c: cmd.ActivateSpace
) -> cmd.Activation:
    """SPC_03: the code sent with the announcement, once, before it expires. An announced space
    opens at once (the person has not objected: they took it); SPC_08's records come in."""
    now = ctx.runtime.now()
    candidate = await activation_hash(c.ins, c.activation_code)
    async with ctx.unit_of_work() as uow:
        space = await repository.lock_space(uow.conn, c.ins)
        stored = space["activation_code_hash"] if space else None
        matches = stored is not None and hmac.compare_digest(stored, candidate)
        if space is None:
            raise Unauthenticated("the activation code is wrong: check it, or ask for a new one")
        domain.check_activation(
            space["status"], matches, space["activated_at"], space["activation_expires_at"], now
        )
        await repository.mark_activated(uow.conn, c.ins, now)
        if space["status"] == "announced":
            await repository.set_space_status(uow.conn, c.ins, "open", now)
            await uow.emit(SpaceOpened(ins=c.ins, opened_at=now))
        await uow.emit(SpaceActivated(ins=c.ins, activated_at=now))
        return uow.answer(cmd.Activation(ins=c.ins, status="open", activated_at=now))


async def issue_activation_code(
    ctx: CommandContext[IdentitySettings], c: cmd.IssueActivationCode, sender: Sender
) -> cmd.ActivationCodeIssued:
    """A new activation code (the previous one void), for a space not yet activated."""
    _require_operator(ctx)
    now = ctx.runtime.now()
    code = domain.new_activation_code()
    code_hash = await activation_hash(c.ins, code)
    expires_at = now + domain.ACTIVATION_VALIDITY
    async with ctx.unit_of_work() as uow:
        space = await repository.lock_space(uow.conn, c.ins)
        if space is None:
            raise NotFound(f"no space for INS {c.ins}")
        if space["activated_at"] is not None:
            raise Conflict("the space is already activated: sign in with a one-time code")
        if space["status"] not in ("announced", "open"):
            raise Conflict(f"the space is {space['status']}: it cannot be activated")
        await repository.set_activation_code(uow.conn, c.ins, code_hash, expires_at)
        outgoing = await _activation_message(uow.conn, c.ins, code, expires_at, now)
        reply = uow.answer(cmd.ActivationCodeIssued(ins=c.ins, expires_at=expires_at))
    messages.send(sender, outgoing)
    return reply


async def reactivate_space(
    ctx: CommandContext[IdentitySettings], c: cmd.ReactivateSpace
) -> cmd.Reactivation:
    """RET_01: within the ten years of archive, the space opens again, everything in it."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        await require_acting_for(uow.conn, actor, c.ins, now, operator=True)
        space = await repository.lock_space(uow.conn, c.ins)
        person = await repository.get_person(uow.conn, c.ins)
        if space is None or person is None:
            raise NotFound(f"no space for INS {c.ins}")
        domain.check_reactivation(
            space["status"], space["closed_at"], person["died_on"] is not None, now
        )
        await repository.set_space_status(uow.conn, c.ins, "reactivated", now)
        await uow.emit(
            SpaceReactivated(ins=c.ins, reactivated_at=now, requested_by=actor_label(actor))
        )
        return uow.answer(cmd.Reactivation(ins=c.ins, status="open", reactivated_at=now))


async def register_professional(
    ctx: CommandContext[IdentitySettings], c: cmd.RegisterProfessional
) -> cmd.ProfessionalRecord:
    """By RPPS or ADELI; a professional of another EU or EEA state with their country, under the
    same rules as one in France (ACC_16). Professions are a closed list (ACC_10)."""
    _require_operator(ctx)
    domain.check_professional_id(c.rpps, c.country, EU_COUNTRIES)
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
            country=c.country,
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
    """A professional (CPS card), an operator, or a referenced catalogue service (ACC_15) proves
    its key by signing a fresh challenge."""
    settings = ctx.runtime.settings
    claims: dict[str, Any] = {}
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        if c.kind == "professional":
            pro = await repository.get_professional(conn, c.subject)
            if pro is None:
                raise Unauthenticated(f"unknown professional {c.subject}")
            key, name = pro["card_public_key"], f"{pro['first_name']} {pro['last_name']}"
            claims = {
                "profession": pro["profession"],
                "specialty": pro["specialty"],
                "country": pro["country"],
            }
        elif c.kind == "app":
            app = await repository.referenced_service(conn, c.subject)
            if app is None:  # never referenced, or no longer: no way in (ACC_15)
                raise Unauthenticated(f"{c.subject} is not a referenced catalogue service")
            key, name = app["public_key"], app["name"]
        else:
            key = settings.operator_public_keys.get(c.subject)
            if key is None:
                raise Unauthenticated(f"unknown operator {c.subject}")
            name = f"operator {c.subject}"
        now = ctx.runtime.now()
        if not await repository.use_challenge(conn, c.challenge, c.kind, c.subject, now):
            raise Unauthenticated("the challenge is unknown, used or expired: ask a new one")
    if not verify_bytes(public_key(key), c.challenge.encode(), c.signature):
        raise Unauthenticated("the card's signature does not match")
    return new_session(ctx, sub=c.subject, kind=c.kind, name=name, **claims)


async def issue_code(
    ctx: CommandContext[IdentitySettings],
    subject: str,
    recipient: Any,
    sender: Sender,
) -> cmd.CodeRequested:
    """SPC_03: a one-time code for `subject` (a holder's INS, `proxy:<id>`), sent where
    `recipient(conn, now)` says (None: nowhere).

    The same reply, in about the same time, whatever the subject: known or not, with a contact
    or not, a minor (no codes of their own, SPC_04) or not, space open or not. The message
    leaves after the reply. Limits per subject (counted for any subject) and per caller; a new
    code revokes the previous one, and a request that sends nothing revokes any live code too.
    """
    policy = sign_in_policy(ctx.runtime.settings)
    now = ctx.runtime.now()
    window = domain.rate_window_start(now, policy.rate_window)
    code = f"{secrets.randbelow(10**6):06d}"
    to: tuple[domain.Channel, str] | None = None
    async with ctx.runtime.pool.acquire() as conn:
        async with conn.transaction():
            by_caller = await repository.count_request(conn, domain.caller_key(ctx.caller), window)
            by_subject = await repository.count_request(conn, domain.ins_key(subject), window)
            limited = by_caller > policy.codes_per_caller or by_subject > policy.codes_per_ins
            if not limited:
                to = await recipient(conn, now)
                if to is None:
                    await repository.revoke_code(conn, subject)
                else:
                    await repository.replace_code(
                        conn, subject, _code_hash(ctx, subject, code), now, now + policy.code_ttl
                    )
        if limited:
            # The same for any subject. The counts above are kept: a refused request counts too.
            raise DomainError(
                "too many code requests: wait before asking for a new code",
                code=ErrorCode.RATE_LIMITED,
            )
    if to is not None:
        messages.send(sender, [messages.sign_in_code(to[0], to[1], code)])
    return cmd.CodeRequested.model_validate(domain.CODE_REQUEST_REPLY)


async def spend_code(ctx: CommandContext[IdentitySettings], subject: str, code: str) -> bool:
    """SPC_03: whether `code` is the subject's live code, spending it. Wrong codes count per
    subject, across codes: past the limit sign-in is locked for a while (raised) and the live
    code revoked."""
    policy = sign_in_policy(ctx.runtime.settings)
    now = ctx.runtime.now()
    matched = False
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        await repository.lock_sign_in(conn, subject)
        guard = await repository.get_guard(conn, subject)
        locked = domain.is_locked(guard, now)
        if not locked:
            stored = await repository.get_code(conn, subject)
            matched = domain.code_matches(
                stored["code_hash"] if stored else None,
                stored["expires_at"] if stored else None,
                _code_hash(ctx, subject, code),
                now,
            )
            if matched:
                await repository.revoke_code(conn, subject)  # used: gone
                await repository.delete_guard(conn, subject)
            else:
                guard = domain.after_failure(guard, now, policy)
                await repository.save_guard(conn, subject, guard)
                if domain.is_locked(guard, now):
                    await repository.revoke_code(conn, subject)
    # Refusals are raised after commit, so the failure they count is kept.
    if locked or domain.is_locked(guard, now):
        assert guard.locked_until is not None
        raise Unauthenticated(
            "too many wrong codes: sign-in is locked until"
            f" {guard.locked_until.isoformat(timespec='seconds')}; then ask for a new code",
            code=ErrorCode.SIGN_IN_LOCKED,
        )
    return matched


async def request_holder_code(
    ctx: CommandContext[IdentitySettings], c: cmd.RequestHolderCode, sender: Sender
) -> cmd.CodeRequested:
    """SPC_03: a one-time code, by the channel the holder chose (SMS or e-mail)."""

    async def recipient(conn: Conn, now: datetime) -> tuple[domain.Channel, str] | None:
        person = await repository.get_person(conn, c.ins)
        space = await repository.get_space(conn, c.ins)
        if person is None:
            return None
        return domain.code_recipient(
            space["status"] if space else None,
            person["birth_date"],
            person["email"],
            now.date(),
            phone=person["phone"],
            channel=person["code_channel"],
            deceased=person["died_on"] is not None,
        )

    return await issue_code(ctx, c.ins, recipient, sender)


async def sign_in_holder(ctx: CommandContext[IdentitySettings], c: cmd.SignInHolder) -> cmd.Session:
    """SPC_03: the holder's live code, once."""
    if not await spend_code(ctx, c.ins, c.code):
        raise Unauthenticated("the code is wrong, used or expired")
    async with ctx.runtime.pool.acquire() as conn:
        person = await repository.get_person(conn, c.ins)
    if person is None:  # a code is only ever sent to a registered person
        raise Unauthenticated("the code is wrong, used or expired")
    return new_session(
        ctx, sub=c.ins, kind="holder", name=f"{person['first_name']} {person['last_name']}"
    )


def new_session(
    ctx: CommandContext[IdentitySettings], *, sub: str, kind: Any, name: str, **claims: Any
) -> cmd.Session:
    settings = ctx.runtime.settings
    now = ctx.runtime.now()
    ttl = TOKEN_TTL[kind]
    token = issue_for(
        settings.identity_signing_keys,
        sub=sub,
        kind=kind,
        name=name,
        now=now,
        ttl=ttl,
        issuer=settings.identity_issuer,
        **claims,
    )
    return cmd.Session(token=token, expires_at=now + ttl)


async def remind_identifier(
    ctx: CommandContext[IdentitySettings], c: cmd.RemindIdentifier, sender: Sender
) -> cmd.CodeRequested:
    """SPC_03: the identifiers registered with this e-mail (a holder's INS, a proxy's id) are
    sent to it. The same answer whether or not the address is known; rate-limited like codes."""
    policy = sign_in_policy(ctx.runtime.settings)
    now = ctx.runtime.now()
    window = domain.rate_window_start(now, policy.rate_window)
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        by_caller = await repository.count_request(conn, domain.caller_key(ctx.caller), window)
        by_email = await repository.count_request(conn, f"email:{c.email.lower()}", window)
        if by_caller > policy.codes_per_caller or by_email > policy.codes_per_ins:
            limited = True
        else:
            limited = False
            persons = await repository.persons_by_email(conn, c.email)
            proxies = await repository.proxies_by_email(conn, c.email, now)
    if limited:
        raise DomainError(
            "too many requests: wait before asking again", code=ErrorCode.RATE_LIMITED
        )
    lines = [f"Votre identifiant (INS) : {p['ins']}" for p in persons] + [
        f"Identifiant pour agir pour un proche : {p['proxy_id']}" for p in proxies
    ]
    if lines:
        # To the address as it is on file, not as it was typed.
        on_file = next(iter([*persons, *proxies]))["email"]
        messages.send(sender, [messages.identifiers(on_file, lines)])
    return cmd.CodeRequested(
        sent=True, message="if an identifier is registered with this e-mail, it was sent"
    )


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
    """NTF_04: where the holder's alerts go: a minor's or a protected adult's to their
    representative; otherwise by the channels the holder chose (none: kept in the space)."""
    require_service_caller(ctx, "notifier")
    async with ctx.runtime.pool.acquire() as conn:
        contact = await _alert_contact(conn, c.ins, ctx.runtime.now())
    if contact is None:
        raise NotFound(f"no person with INS {c.ins}")
    return contact


async def get_alert_contacts(
    ctx: CommandContext[IdentitySettings], c: cmd.GetAlertContacts
) -> cmd.AlertContacts:
    """`get_alert_contact` for each holder of the notifier's batch of mails."""
    require_service_caller(ctx, "notifier")
    now = ctx.runtime.now()
    contacts, unknown = [], []
    async with ctx.runtime.pool.acquire() as conn:
        for ins in dict.fromkeys(c.ins):
            contact = await _alert_contact(conn, ins, now)
            if contact is None:
                unknown.append(ins)
            else:
                contacts.append(contact)
    return cmd.AlertContacts(contacts=contacts, unknown=unknown)


async def _alert_contact(conn: Conn, ins: str, now: datetime) -> cmd.AlertContact | None:
    person = await repository.get_person(conn, ins)
    if person is None:
        return None
    represented, email, phone = await alert_destination(conn, person, now)
    chosen = ["email", "sms"] if represented else person["alert_channels"]
    return cmd.AlertContact(
        ins=ins,
        display_name=f"{person['first_name']} {person['last_name']}",
        minor=domain.is_minor(person["birth_date"], now.date()),
        email=email if "email" in chosen else None,
        phone=phone if "sms" in chosen else None,
    )


async def close_space(ctx: CommandContext[IdentitySettings], c: cmd.CloseSpace) -> cmd.Closure:
    """RET_01 / SPC_04: the holder (also one whose space was opened while a minor), their
    representative, or the operator at their request closes the space."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        space = await _space_acted_on(uow, actor, c.ins, now)
        domain.check_closable(space["status"])
        await _close(uow, actor, c.ins, now)
        return uow.answer(cmd.Closure(ins=c.ins, status="closed", closed_at=now))


async def request_space_deletion(
    ctx: CommandContext[IdentitySettings], c: cmd.RequestSpaceDeletion
) -> cmd.SpaceDeletion:
    """RET_02: acknowledged at once, with the date the data will be gone; the purge itself is
    retention's choreography (as for RET_01, only sooner)."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        space = await _space_acted_on(uow, actor, c.ins, now)
        domain.check_deletable(space["status"])
        if space["status"] == "open":
            await _close(uow, actor, c.ins, now)
        due = periods.deletion_due_at(now)
        await uow.emit(
            SpaceDeletionRequested(
                ins=c.ins, requested_at=now, purge_due_at=due, requested_by=actor_label(actor)
            )
        )
        return uow.answer(
            cmd.SpaceDeletion(ins=c.ins, status="closed", requested_at=now, purge_due_at=due)
        )


async def _space_acted_on(uow: UnitOfWork, actor: Claims, ins: str, now: datetime) -> Any:
    """The space, locked, once the actor is found to act for its holder (or is the operator)."""
    await require_acting_for(uow.conn, actor, ins, now, operator=True)
    space = await repository.lock_space(uow.conn, ins)
    if space is None:
        raise NotFound(f"no space for INS {ins}")
    return space


async def _close(uow: UnitOfWork, actor: Claims, ins: str, now: datetime) -> None:
    await repository.set_space_status(uow.conn, ins, "closed", now)
    await uow.emit(SpaceClosed(ins=ins, closed_at=now, requested_by=actor_label(actor)))


async def get_signing_keys(
    ctx: CommandContext[IdentitySettings], _c: cmd.GetSigningKeys
) -> cmd.Jwks:
    """The verification keys every service is configured with (identity's own included)."""
    return cmd.Jwks.model_validate_json(ctx.runtime.settings.identity_jwks)
