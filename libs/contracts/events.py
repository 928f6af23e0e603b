"""Every event on the bus, version by version. Past tense; routing key `<owner>.<event>.v<n>`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from libs.contracts.envelope import Event, register

ActorKind = Literal["holder", "professional", "operator"]
Outcome = Literal["granted", "denied"]


# --- identity -------------------------------------------------------------------------------


@register
class SpaceAnnounced(Event):
    OWNER = "identity"
    TYPE = "SpaceAnnounced"
    ins: str
    announced_at: datetime
    minor: bool


@register
class SpaceOpened(Event):
    OWNER = "identity"
    TYPE = "SpaceOpened"
    ins: str
    opened_at: datetime


@register
class SpaceClosed(Event):
    OWNER = "identity"
    TYPE = "SpaceClosed"
    ins: str
    closed_at: datetime
    requested_by: str


@register
class ContactChanged(Event):
    """Where the holder's alerts go. For a minor, the legal representative's contact (NTF_04)."""

    OWNER = "identity"
    TYPE = "ContactChanged"
    ins: str
    display_name: str
    email: str | None
    phone: str | None


# --- dossier --------------------------------------------------------------------------------


@register
class DocumentDeposited(Event):
    """Metadata only: the content never leaves the dossier service."""

    OWNER = "dossier"
    TYPE = "DocumentDeposited"
    document_id: UUID
    ins: str
    document_type: str
    title: str
    author_id: str
    author_name: str
    deposited_at: datetime


# --- access ---------------------------------------------------------------------------------


@register
class AccessGranted(Event):
    OWNER = "access"
    TYPE = "AccessGranted"
    decision_id: UUID
    ins: str
    actor_kind: ActorKind
    actor_id: str
    action: str
    rule: str
    document_types: list[str]
    include_masked: bool


@register
class AccessDenied(Event):
    OWNER = "access"
    TYPE = "AccessDenied"
    decision_id: UUID
    ins: str
    actor_kind: ActorKind
    actor_id: str
    action: str
    rule: str
    reason: str


@register
class AccessLogged(Event):
    """One access trace, as the holder reads it in their history (ACC_03)."""

    OWNER = "access"
    TYPE = "AccessLogged"
    trace_id: UUID
    decision_id: UUID
    ins: str
    actor_kind: ActorKind
    actor_id: str
    actor_name: str
    actor_profession: str | None
    action: str
    outcome: Outcome
    rule: str
    at: datetime


# --- messaging ------------------------------------------------------------------------------


@register
class MessageSent(Event):
    """No body: the message itself stays in the messaging service."""

    OWNER = "messaging"
    TYPE = "MessageSent"
    message_id: UUID
    ins: str
    sender_kind: ActorKind
    sender_id: str
    sender_name: str
    subject: str
    sent_at: datetime


# --- notifier -------------------------------------------------------------------------------


@register
class HolderAlerted(Event):
    OWNER = "notifier"
    TYPE = "HolderAlerted"
    alert_id: UUID
    ins: str
    cause_event_id: UUID
    kind: str
    channels: list[str]
    at: datetime


# --- retention ------------------------------------------------------------------------------


@register
class SpaceOpeningDue(Event):
    """Six weeks have passed since the announcement (SPC_01)."""

    OWNER = "retention"
    TYPE = "SpaceOpeningDue"
    ins: str
    deadline_id: UUID
    due_at: datetime


@register
class SpacePurgeDue(Event):
    """Ten years have passed since closure (RET_01)."""

    OWNER = "retention"
    TYPE = "SpacePurgeDue"
    ins: str
    deadline_id: UUID
    due_at: datetime
