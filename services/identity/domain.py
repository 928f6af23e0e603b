"""Identity rules, without I/O: the NIR (SPC_02), minority (SPC_04), the space's lifecycle."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from libs.errors import Conflict, InvalidInput

SpaceStatus = Literal["announced", "objected", "open", "closed"]

# SPC_01: the space opens six weeks after it was announced, unless the person objected.
OPENING_PERIOD = timedelta(weeks=6)
ADULT_AGE = 18

# sex (1/2, or 3/4/7/8 for temporary numbers), year, month, department (2A/2B in Corsica),
# commune, order number; then the two-digit key.
_NIR = re.compile(r"^([1-478]\d{4}(?:\d{2}|2[AB])\d{6})(\d{2})$")


def normalise_nir(text: str) -> str:
    return re.sub(r"[\s.-]", "", text).upper()


def nir_key(body: str) -> int:
    """key = 97 − (number mod 97); Corsica's 2A and 2B count as 19 and 18."""
    digits = body[:5] + body[5:7].replace("2A", "19").replace("2B", "18") + body[7:]
    return 97 - int(digits) % 97


def validate_nir(text: str) -> str:
    """The INS (15 characters) of a valid NIR; InvalidInput with the reason otherwise."""
    nir = normalise_nir(text)
    match = _NIR.match(nir)
    if not match:
        raise InvalidInput(
            f"malformed NIR {text!r}: expected 13 characters (sex, year, month, department,"
            " commune, order) followed by a 2-digit key",
            code="invalid_nir",
        )
    body, key = match[1], int(match[2])
    expected = nir_key(body)
    if key != expected:
        raise InvalidInput(
            f"wrong NIR key: {key:02d} does not match the number (the key should be"
            f" {expected:02d}); check the number",
            code="invalid_nir_key",
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
