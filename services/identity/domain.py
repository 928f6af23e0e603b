"""Identity rules, without I/O: the NIR (SPC_02), minority (SPC_04), the space's lifecycle
(SPC_01, SPC_03, RET_01), who may act for whom (SPC_04, SPC_05, ACC_13), contacts (SPC_06,
SPC_07)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from libs.contracts.rpc import ErrorCode
from libs.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from libs.periods import archive_ends_at

SpaceStatus = Literal["announced", "objected", "open", "closed"]
Channel = Literal["email", "sms"]

# SPC_01: the space opens six weeks after it was announced, unless the person objected.
OPENING_PERIOD = timedelta(weeks=6)
ADULT_AGE = 18

# sex (1/2, or 3/4/7/8 for temporary numbers), year, month, department (2A/2B in Corsica),
# commune, order number; then the two-digit key.
# ASCII digits only: `\d` and int() would accept full-width or Arabic-Indic digits, and the same
# person could then be registered under two INS.
_NIR = re.compile(r"([1-478][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6})([0-9]{2})", re.ASCII)


def normalise_nir(text: str) -> str:
    """Spaces, dots and dashes removed, Corsica's letters upper-cased; nothing but ASCII kept."""
    if not text.isascii():
        return ""  # never a match: refused as malformed
    return re.sub(r"[ \t.-]", "", text, flags=re.ASCII).upper()


def nir_key(body: str) -> int:
    """key = 97 − (number mod 97); Corsica's 2A and 2B count as 19 and 18."""
    digits = body[:5] + body[5:7].replace("2A", "19").replace("2B", "18") + body[7:]
    return 97 - int(digits) % 97


def validate_nir(text: str) -> str:
    """The INS (15 characters) of a valid NIR; InvalidInput with the reason otherwise."""
    nir = normalise_nir(text)
    match = _NIR.fullmatch(nir)
    if not match:
        raise InvalidInput(
            f"malformed NIR {text!r}: expected 13 characters (sex, year, month, department,"
            " commune, order) followed by a 2-digit key, in digits 0-9 (2A/2B for Corsica)",
            code=ErrorCode.INVALID_NIR,
        )
    body, key = match[1], int(match[2])
    expected = nir_key(body)
    if key != expected:
        raise InvalidInput(
            f"wrong NIR key: {key:02d} does not match the number (the key should be"
            f" {expected:02d}); check the number",
            code=ErrorCode.INVALID_NIR_KEY,
        )
    return nir


def with_key(body: str) -> str:
    """A NIR body completed with its key (for tests and demos)."""
    return f"{body}{nir_key(body):02d}"


def is_minor(birth_date: date, today: date) -> bool:
    years = (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )
    return years < ADULT_AGE


def alert_contact(
    minor: bool, own_email: str | None, representative_email: str | None
) -> str | None:
    """NTF_04: a minor's alerts go to the legal representative."""
    return representative_email if minor else own_email


def alert_phone(minor: bool, own_phone: str | None) -> str | None:
    """NTF_04: a minor's alerts go to the legal representative, whose phone is not on file."""
    return None if minor else own_phone


def alert_channels(email: str | None, phone: str | None) -> list[Channel]:
    """The coarse fact that travels on the bus: which channels exist, never the addresses."""
    channels: list[Channel] = []
    if email:
        channels.append("email")
    if phone:
        channels.append("sms")
    return channels


def is_service_caller(caller: str | None, expected: str) -> bool:
    """Whether a request was sent by the broker user of the expected service.

    `caller` is the `user_id` RabbitMQ validated against the sender's connection; a request
    without one (None) could come from anyone and is never a service's.
    """
    return bool(caller) and caller == expected


# --- holder sign-in (SPC_03): one live code, rate limits, lockout per holder ----------------

# The one reply to RequestHolderCode, whatever the INS: registered or not, with an e-mail or
# not, minor or not, space open or not. Nothing in it tells them apart.
CODE_REQUEST_REPLY: Final = {
    "sent": True,
    "message": "if a space exists for this INS and has an e-mail, a code was sent",
}


@dataclass(frozen=True)
class SignInPolicy:
    code_ttl: timedelta = timedelta(minutes=10)
    # Code requests per INS and per caller (broker user) within one fixed window.
    codes_per_ins: int = 5
    codes_per_caller: int = 1000
    rate_window: timedelta = timedelta(hours=1)
    # Wrong codes (across all codes) before the holder's sign-in is locked, counted within
    # failure_window; the lock lasts `lockout`.
    max_failures: int = 5
    failure_window: timedelta = timedelta(hours=1)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Guard:
    """A holder's recent wrong codes and lock (none: `Guard()`)."""

    failures: int = 0
    first_failure_at: datetime | None = None
    locked_until: datetime | None = None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def rate_window_start(now: datetime, window: timedelta) -> datetime:
    """The fixed window `now` falls in (windows aligned on the epoch)."""
    return _EPOCH + window * ((now - _EPOCH) // window)


def caller_key(caller: str | None) -> str:
    """Rate limits per caller: the broker user, or "anonymous" when the request named none."""
    return f"caller:{caller or 'anonymous'}"


def ins_key(ins: str) -> str:
    return f"ins:{ins}"


def code_recipient(
    status: SpaceStatus | None,
    birth_date: date | None,
    email: str | None,
    today: date,
    *,
    phone: str | None = None,
    channel: Channel = "email",
    deceased: bool = False,
) -> tuple[Channel, str] | None:
    """Where a sign-in code goes, or None: only to a living adult holder of an announced space
    (to object to it, SPC_01), an open one, or a closed one (to ask for its reactivation), by the
    channel they chose, or the other one when the chosen one has no address (SPC_03, SPC_04,
    SPC_06)."""
    if status not in ("announced", "open", "closed") or birth_date is None or deceased:
        return None
    if is_minor(birth_date, today):
        return None
    return destination(channel, email, phone)


def destination(
    channel: Channel, email: str | None, phone: str | None
) -> tuple[Channel, str] | None:
    """The chosen channel if it has an address, else the other one, else None."""
    by_channel: dict[Channel, str | None] = {"email": email, "sms": phone}
    for candidate in (channel, "sms" if channel == "email" else "email"):
        address = by_channel[candidate]
        if address:
            return candidate, address
    return None


def code_matches(
    stored_hash: str | None, expires_at: datetime | None, candidate_hash: str, now: datetime
) -> bool:
    if stored_hash is None or expires_at is None or now >= expires_at:
        return False
    return hmac.compare_digest(stored_hash, candidate_hash)


def is_locked(guard: Guard, now: datetime) -> bool:
    return guard.locked_until is not None and now < guard.locked_until


def after_failure(guard: Guard, now: datetime, policy: SignInPolicy) -> Guard:
    """One more wrong code. Failures older than the window, or before a lock that has ended,
    are forgotten; the max_failures-th locks sign-in for `lockout`."""
    fresh = (
        guard.first_failure_at is None
        or now - guard.first_failure_at >= policy.failure_window
        or (guard.locked_until is not None and now >= guard.locked_until)
    )
    failures, first = (1, now) if fresh else (guard.failures + 1, guard.first_failure_at)
    locked_until = now + policy.lockout if failures >= policy.max_failures else None
    return Guard(failures, first, locked_until)


def guard_expired(guard: Guard, now: datetime, policy: SignInPolicy) -> bool:
    """Nothing left to remember: no lock running and the failures are out of their window."""
    if is_locked(guard, now):
        return False
    return guard.first_failure_at is None or now - guard.first_failure_at >= policy.failure_window


def can_open(status: SpaceStatus) -> bool:
    """SPC_01: only an announced space opens when its six weeks are up (not an objected one)."""
    return status == "announced"


def check_objection(status: SpaceStatus, announced_at: datetime, now: datetime) -> None:
    if status != "announced":
        raise Conflict(f"the space is {status}: an objection is only possible before it opens")
    if now >= announced_at + OPENING_PERIOD:
        raise Conflict("the six-week objection period is over")


def check_closable(status: SpaceStatus) -> None:
    if status == "closed":
        raise Conflict("the space is already closed")
    if status != "open":
        raise Conflict(f"the space is {status}, not open: there is nothing to close")


def check_deletable(status: SpaceStatus) -> None:
    """RET_02: an open or archived space's data may be deleted on request; before the space
    opens, the person objects instead (SPC_01)."""
    if status not in ("open", "closed"):
        raise Conflict(f"the space is {status}: object to its creation instead (SPC_01)")


def may_object(actor_kind: str, actor_sub: str, ins: str) -> bool:
    """SPC_01: the person themselves, or the operator on their behalf."""
    return actor_kind == "operator" or (actor_kind == "holder" and actor_sub == ins)


# --- activation (SPC_03) ----------------------------------------------------------------------

# Long enough for the six weeks of the announcement and six more once the space is open.
ACTIVATION_VALIDITY = timedelta(weeks=12)
# No look-alikes (0/O, 1/I/L): the code is typed from a letter or a mail.
_ACTIVATION_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_activation_code() -> str:
    """Ten characters (about 50 bits), printed as XXXXX-XXXXX."""
    raw = "".join(secrets.choice(_ACTIVATION_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_activation_code(text: str) -> str:
    return text.strip().upper().replace("-", "")


def check_activation(
    status: SpaceStatus,
    code_matches: bool,
    activated_at: datetime | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    """SPC_03: the code sent, once, before it expires, for a space that may still be used.

    The code is checked first, so that without it nothing is learnt of the space."""
    if not code_matches:
        raise Unauthenticated("the activation code is wrong: check it, or ask for a new one")
    if activated_at is not None:
        raise Conflict("this activation code was already used: sign in with a one-time code")
    if expires_at is None or now >= expires_at:
        raise Conflict(
            "the activation code has expired: ask the health insurance for a new one",
            code=ErrorCode.REFUSED,
        )
    if status not in ("announced", "open"):
        raise Conflict(f"the space is {status}: it cannot be activated")


# --- reactivation (RET_01) --------------------------------------------------------------------


def check_reactivation(
    status: SpaceStatus, closed_at: datetime | None, deceased: bool, now: datetime
) -> None:
    if status != "closed" or closed_at is None:
        raise Conflict(f"the space is {status}, not closed: there is nothing to reactivate")
    if deceased:
        raise Conflict("the holder has died: the space cannot be reactivated")
    if now >= archive_ends_at(closed_at):
        raise Conflict("the ten years of archive are over: the space cannot be reactivated")


# --- proxies: who acts for a holder without a card (SPC_04, SPC_05, ACC_13) -----------------

ProxyKind = Literal["representative", "requester"]
REQUESTER_ROLES: Final = ("heir", "unmarried_partner", "civil_union_partner", "court_expert")


@dataclass(frozen=True)
class ProxyState:
    """What a decision about a proxy needs of its row."""

    ins: str
    kind: ProxyKind
    role: str
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None

    def active(self, now: datetime) -> bool:
        return (
            self.ended_at is None
            and self.starts_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )


def coming_of_age_at(birth_date: date) -> datetime:
    """SPC_04: the start of the eighteenth birthday (UTC); born on 29 February, 1 March."""
    try:
        day = birth_date.replace(year=birth_date.year + ADULT_AGE)
    except ValueError:
        day = date(birth_date.year + ADULT_AGE, 3, 1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def representative_term(
    role: str,
    birth_date: date,
    until: date | None,
    measure_reference: str | None,
    now: datetime,
) -> datetime | None:
    """When an appointment ends by itself, or an error if it cannot be made: a legal
    representative for a minor until they are eighteen (SPC_04); a protection representative for
    an adult, with the measure's reference, until the measure's end if known (SPC_05)."""
    minor = is_minor(birth_date, now.date())
    if role == "legal_representative":
        if not minor:
            raise Conflict("the holder is an adult: parental authority ends at eighteen (SPC_04)")
        if measure_reference is not None:
            raise InvalidInput("a legal representative has no measure reference")
        return coming_of_age_at(birth_date)
    if minor:
        raise Conflict("a minor is represented by their legal representative (SPC_04)")
    if measure_reference is None:
        raise InvalidInput("a protection measure is recorded with its reference (SPC_05)")
    if until is None:
        return None
    ends_at = datetime(until.year, until.month, until.day, tzinfo=UTC)
    if ends_at <= now:
        raise InvalidInput("the measure's end date is already past")
    return ends_at


def may_act_for(
    actor_kind: str,
    actor_sub: str,
    ins: str,
    proxy: ProxyState | None,
    now: datetime,
    *,
    holder_represented: bool = False,
) -> bool:
    """Who manages a living holder's space: the holder themselves, unless a protection measure
    with representation puts decisions in their representative's hands (SPC_05); or an active
    representative of that holder (SPC_04, SPC_05), signed in with their own credential."""
    if actor_kind == "holder":
        return actor_sub == ins and not holder_represented
    if actor_kind == "representative":
        return (
            proxy is not None
            and proxy.kind == "representative"
            and proxy.ins == ins
            and proxy.active(now)
        )
    return False


def require_acting_for(
    actor_kind: str,
    actor_sub: str,
    ins: str,
    proxy: ProxyState | None,
    now: datetime,
    *,
    operator: bool = False,
    holder_represented: bool = False,
) -> None:
    if operator and actor_kind == "operator":
        return
    if not may_act_for(
        actor_kind, actor_sub, ins, proxy, now, holder_represented=holder_represented
    ):
        who = "the holder, their representative" + (" or the operator" if operator else "")
        raise Forbidden(f"only {who} may do this")


def proxy_code_recipient(
    proxy: ProxyState | None, email: str | None, phone: str | None, now: datetime
) -> tuple[Channel, str] | None:
    """A proxy's code goes to the contact the operator verified, while the proxy is active."""
    if proxy is None or not proxy.active(now):
        return None
    return destination("email", email, phone)


# --- death (ACC_13) -----------------------------------------------------------------------------


def check_death(died_on: date, birth_date: date, already: date | None, today: date) -> None:
    if already is not None:
        raise Conflict(f"the holder's death was already recorded ({already.isoformat()})")
    if died_on > today:
        raise InvalidInput("the date of death is in the future")
    if died_on < birth_date:
        raise InvalidInput("the date of death is before the birth")


def check_request_decision(status: str, deceased: bool, validate: bool, has_contact: bool) -> None:
    if status != "pending":
        raise Conflict(f"the request was already {status}")
    if validate and not deceased:
        raise Conflict("the holder's death is not recorded: access after death cannot be given")
    if validate and not has_contact:
        raise Conflict("the request has no contact to send the identifier and codes to")


# --- contacts and preferences (SPC_06, SPC_07, NTF_04) ----------------------------------------


def preferred_channels(
    chosen: Sequence[str], email: str | None, phone: str | None
) -> list[Channel]:
    """The channels alerts go by: those chosen that have an address (none: alerts are kept in
    the space, SPC_06)."""
    return [c for c in alert_channels(email, phone) if c in chosen]


def check_treating_physician(profession: str | None, current: str | None, rpps: str) -> None:
    if profession != "physician":
        raise Conflict("a treating physician is a physician (SPC_07)")
    if current == rpps:
        raise Conflict("this physician is already the treating physician")


# --- the directory: establishments, professionals of other EU states (ACC_06, ACC_16) -------

_FINESS = re.compile(r"([0-9]{2}|2[AB])([0-9]{6})([0-9])", re.ASCII)


def luhn_check_digit(digits: str) -> int:
    """The digit that makes `digits` + it pass the Luhn test."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def validate_finess(text: str) -> str:
    """A FINESS number as stored, or InvalidInput with the reason.

    Nine characters: the department (2A/2B in Corsica), six digits, then a Luhn check digit over
    the first eight, Corsica's department counting as 20 (the rule of the FINESS register)."""
    finess = re.sub(r"[ \t.-]", "", text, flags=re.ASCII).upper() if text.isascii() else ""
    match = _FINESS.fullmatch(finess)
    if not match:
        raise InvalidInput(
            f"malformed FINESS {text!r}: expected 9 characters, the department (2A/2B for"
            " Corsica), six digits and a check digit",
            code=ErrorCode.INVALID_FINESS,
        )
    department = "20" if match[1] in ("2A", "2B") else match[1]
    expected = luhn_check_digit(department + match[2])
    if int(match[3]) != expected:
        raise InvalidInput(
            f"wrong FINESS check digit: {match[3]} does not match the number (it should be"
            f" {expected}); check the number",
            code=ErrorCode.INVALID_FINESS,
        )
    return finess


def with_finess_check_digit(body: str) -> str:
    """A FINESS body (8 characters) completed with its check digit (for tests and demos)."""
    department = "20" if body[:2] in ("2A", "2B") else body[:2]
    return f"{body}{luhn_check_digit(department + body[2:])}"


def check_professional_id(professional_id: str, country: str | None, eu: frozenset[str]) -> None:
    """RPPS (11 digits) or ADELI (9 digits) for a professional in France; `<country>-<id>` for
    one of another EU or EEA state, who is then registered with that country (ACC_16)."""
    if country is None:
        if not professional_id.isdigit():
            raise InvalidInput(
                "a professional in France is identified by RPPS (11 digits) or ADELI (9 digits);"
                " one of another EU state is registered with their country"
            )
        return
    if country not in eu:
        raise InvalidInput(f"{country} is not another member state of the EU or the EEA (ACC_16)")
    if not professional_id.startswith(f"{country}-"):
        raise InvalidInput(f"the identifier of a professional of {country} is '{country}-<id>'")


def check_care_team(starts_at: datetime, ends_at: datetime | None, now: datetime) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("a care team ends after it starts")
    if ends_at is not None and ends_at <= now:
        raise InvalidInput("this care team's episode is already over")
