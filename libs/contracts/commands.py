"""Request/reply contracts: what clients (apps, practice software, other services) send and get.

A request names a command and carries the caller's signed token; the reply is either a result or
an error with a stable code and a message meant for a human.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from libs.contracts.envelope import Contract
from libs.contracts.events import ActorKind, Outcome


class Request(Contract):
    command: str
    version: int = 1
    token: str | None = None
    correlation_id: str
    payload: dict[str, Any] = Field(default_factory=dict)


class ErrorInfo(Contract):
    code: str
    message: str


class Reply(Contract):
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


# --- identity.commands ----------------------------------------------------------------------


class RegisterHolder(Contract):
    nir: str
    first_name: str
    last_name: str
    birth_date: date
    email: str | None = None
    phone: str | None = None
    legal_representative_email: str | None = None


class ObjectToSpace(Contract):
    ins: str


class RegisterProfessional(Contract):
    rpps: str = Field(pattern=r"^\d{11}$")
    first_name: str
    last_name: str
    profession: str
    specialty: str | None = None
    card_public_key: str  # Ed25519, raw 32 bytes, base64url


class RequestChallenge(Contract):
    kind: Literal["professional", "operator"]
    subject: str


class SignInWithCard(Contract):
    kind: Literal["professional", "operator"]
    subject: str
    challenge: str
    signature: str  # base64url Ed25519 signature of the challenge


class RequestHolderCode(Contract):
    ins: str


class SignInHolder(Contract):
    ins: str
    code: str


class CloseSpace(Contract):
    ins: str


# --- access.decide --------------------------------------------------------------------------


class Decide(Contract):
    """Asked by a service on behalf of the actor whose token the request carries."""

    ins: str
    action: Literal["read", "deposit", "message", "read_history"]
    document_type: str | None = None
    purpose: str | None = None


class Decision(Contract):
    decision_id: UUID
    granted: bool
    rule: str
    reason: str
    document_types: list[str] = Field(default_factory=list)
    include_masked: bool = False


# --- access.commands ------------------------------------------------------------------------


class AuthorizeProfessional(Contract):
    ins: str
    rpps: str
    until: datetime | None = None


class ListAccessHistory(Contract):
    ins: str
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


class DepositDocument(Contract):
    ins: str
    document_type: str
    title: str = Field(min_length=1, max_length=300)
    content_b64: str
    media_type: str = "application/pdf"


class ReadDossier(Contract):
    ins: str


# --- messaging.commands ---------------------------------------------------------------------


class SendMessage(Contract):
    ins: str
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=100_000)


# --- notifier.commands ----------------------------------------------------------------------


class ListAlerts(Contract):
    ins: str


# --- shared shapes --------------------------------------------------------------------------


class SpaceRef(Contract):
    ins: str


class ProfessionalRef(Contract):
    ins: str
    rpps: str
