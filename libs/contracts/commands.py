"""Request/reply contracts: what clients (apps, practice software, other services) send and get.

A request names a command and carries the caller's signed token; the reply is either a result or
an error with a stable code and a message meant for a human.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import email_validator
import phonenumbers
from pydantic import AfterValidator, Field, StringConstraints

from libs.contracts.envelope import Contract
from libs.contracts.events import ActorKind, Outcome
from libs.contracts.text import Name, Text, refuse_control_characters


class Request(Contract):
    command: str
    # The only version of the request envelope there is; another is refused, never guessed.
    version: Literal[1] = 1
    token: str | None = None
    correlation_id: str
    # Chosen by the caller, kept on its retries: a state-changing command with an id it has
    # already answered changes nothing and gets the first reply again.
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{8,128}$")
    payload: dict[str, Any] = Field(default_factory=dict)


class ErrorInfo(Contract):
    code: str
    message: str


class Reply(Contract):
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


# --- identity.commands ----------------------------------------------------------------------
#
# Identifiers are ASCII only (Python's `\d` and `int()` accept full-width and Arabic-Indic
# digits: the same person could be registered twice). Patterns below are matched by pydantic's
# regex engine, where `[0-9]` is ASCII and `$` is the very end.


def _email(value: str) -> str:
    """A deliverable-looking address (email-validator), normalised; CR, LF and friends refused.

    No internationalised local part (SMTPUTF8): our SMTP relay may refuse it and the mail would
    then fail forever.
    """
    try:
        return email_validator.validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        ).normalized
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None


def _phone(value: str) -> str:
    """E.164 (`+33612345678`); French numbers may be given in national form (06 12 34 56 78)."""
    try:
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a valid phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The INS as stored: 13 characters (2A/2B for Corsica) and the 2-digit key, no spaces.
Ins = Annotated[str, StringConstraints(pattern=r"^[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{8}$")]
# A NIR as typed (spaces, dots and dashes allowed): identity's domain checks its form (ASCII
# only) and key, and refuses it with `invalid_nir` or `invalid_nir_key`.
NirInput = Annotated[str, StringConstraints(max_length=32)]
Rpps = Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")]
# Who signs in with a card: an RPPS number or an operator's id.
CardSubject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,256}={0,2}$")]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_email)]
Phone = Annotated[
    str,
    StringConstraints(min_length=2, max_length=32, pattern=r"^[0-9+ ().-]+$"),
    AfterValidator(_phone),
]


class RegisterHolder(Contract):
    nir: NirInput
    first_name: Name
    last_name: Name
    birth_date: date
    email: Email | None = None
    phone: Phone | None = None
    legal_representative_email: Email | None = None


class ObjectToSpace(Contract):
    ins: Ins


class RegisterProfessional(Contract):
    rpps: Rpps
    first_name: Name
    last_name: Name
    profession: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
    specialty: Text | None = None
    card_public_key: Base64Url  # Ed25519, raw 32 bytes, base64url


class RequestChallenge(Contract):
    kind: Literal["professional", "operator"]
    subject: CardSubject


class SignInWithCard(Contract):
    kind: Literal["professional", "operator"]
    subject: CardSubject
    challenge: Base64Url
    signature: Base64Url  # base64url Ed25519 signature of the challenge


class RequestHolderCode(Contract):
    ins: Ins


class SignInHolder(Contract):
    ins: Ins
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class CloseSpace(Contract):
    ins: Ins


# --- identity.contacts (services only: the notifier) ------------------------------------------


class GetAlertContact(Contract):
    """Where the holder's alerts go (a minor's: the legal representative's, NTF_04)."""

    ins: Ins


# --- access.decide --------------------------------------------------------------------------


class Decide(Contract):
    """Asked by a service on behalf of the actor whose token the request carries."""

    ins: Ins
    action: Literal["read", "deposit", "message", "read_history"]
    document_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")] | None = None
    purpose: Text | None = None


class Decision(Contract):
    decision_id: UUID
    granted: bool
    rule: str
    reason: str
    document_types: list[str] = Field(default_factory=list)
    include_masked: bool = False


# --- access.commands ------------------------------------------------------------------------


class AuthorizeProfessional(Contract):
    ins: Ins
    rpps: Rpps
    until: datetime | None = None


class ListAccessHistory(Contract):
    ins: Ins
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=200)


class AccessTrace(Contract):
    trace_id: UUID
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    actor_name: str
    actor_profession: str | None
    action: str
    outcome: Outcome
    rule: str


# --- dossier.commands -----------------------------------------------------------------------


# type/subtype as RFC 6838 names them (restricted-name), ASCII, no parameters.
MediaType = Annotated[
    str,
    StringConstraints(
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
    ),
]
Cursor = Annotated[str, StringConstraints(max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]


class DepositDocument(Contract):
    """The dossier checks the rest (known type, base64, size cap) before access is asked."""

    ins: Ins
    document_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
    title: Text
    content_b64: str
    media_type: MediaType = "application/pdf"


class ReadDossier(Contract):
    """One page, newest first: at most `page_size` documents, and fewer when the reply would
    grow too big; `next_cursor` in the reply asks for the rest (each page is an access)."""

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=20, ge=1, le=100)


# --- messaging.commands ---------------------------------------------------------------------


def _message_body(value: str) -> str:
    """Text over several lines: line feeds and tabs are its only control characters (a CR LF
    is kept as LF, a lone CR refused)."""
    value = value.replace("\r\n", "\n")
    refuse_control_characters(value.replace("\n", " ").replace("\t", " "))
    return value


MessageBody = Annotated[
    str, StringConstraints(min_length=1, max_length=100_000), AfterValidator(_message_body)
]


class SendMessage(Contract):
    ins: Ins
    subject: Text
    body: MessageBody


class ListMessages(Contract):
    """The holder's box, newest first, one page: at most `page_size` messages, fewer when the
    reply would grow too big; `next_cursor` in the reply asks for the rest."""

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=50, ge=1, le=200)


# --- notifier.commands ----------------------------------------------------------------------


class ListAlerts(Contract):
    ins: Ins


# --- shared shapes --------------------------------------------------------------------------


class SpaceRef(Contract):
    ins: Ins


class ProfessionalRef(Contract):
    ins: Ins
    rpps: Rpps
