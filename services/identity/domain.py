"""Identity rules, without I/O: the NIR (SPC_02), minority (SPC_04), the space's lifecycle."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from libs.contracts.rpc import ErrorCode
from libs.errors import Conflict, InvalidInput

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
    status: SpaceStatus | None, birth_date: date | None, email: str | None, today: date
) -> str | None:
    """Where a sign-in code goes, or None: only to an adult holder of an announced space (to
    object to it, SPC_01), an open one, or a closed one (to ask for its reactivation), with an
    e-mail on file (SPC_03, SPC_04, SPC_06)."""
    if status not in ("announced", "open", "closed") or birth_date is None or not email:
        return None
    if is_minor(birth_date, today):
        return None
    return email


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


def may_object(actor_kind: str, actor_sub: str, ins: str) -> bool:
    """SPC_01: the person themselves, or the operator on their behalf."""
    return actor_kind == "operator" or (actor_kind == "holder" and actor_sub == ins)
