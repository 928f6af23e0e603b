"""Every event on the bus, version by version. Past tense; routing key `<owner>.<event>.v<n>`."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, StringConstraints

from libs.contracts.envelope import Event, register

# A proxy acts for a holder without a professional card: a representative (SPC_04, SPC_05) or,
# after the holder's death, a requester the operator validated (ACC_13).
# An `app` is a catalogue service the holder lets read chosen data (ACC_15).
ActorKind = Literal["holder", "professional", "operator", "representative", "requester", "app"]
ProxyKind = Literal["representative", "requester"]
ProxyRole = Literal[
    "legal_representative",  # parental authority over a minor (SPC_04)
    "protection_representative",  # in charge of an adult's protection measure (SPC_05)
    "heir",  # ACC_13, after the holder's death
    "unmarried_partner",
    "civil_union_partner",
    "court_expert",
]
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
class SpaceDeletionRequested(Event):
    """RET_02: the holder (or their representative, or the operator at their request) expressly
    asked that the space's data be deleted: the space is closed and the purge runs at
    `purge_due_at`, unless the space is reactivated before."""

    OWNER = "identity"
    TYPE = "SpaceDeletionRequested"
    ins: str
    requested_at: datetime
    purge_due_at: datetime
    requested_by: str


@register
class SpaceActivated(Event):
    """The holder (or their representative) activated the space with the code sent with its
    announcement (SPC_03); an announced space opens at once. Pre-existing records are brought in
    now (SPC_08)."""

    OWNER = "identity"
    TYPE = "SpaceActivated"
    ins: str
    activated_at: datetime


@register
class SpaceReactivated(Event):
    """A closed space is open again, within its ten years of archive (RET_01): the purge is off
    and every service serves it again."""

    OWNER = "identity"
    TYPE = "SpaceReactivated"
    ins: str
    reactivated_at: datetime
    requested_by: str


@register
class ProxyAppointed(Event):
    """Someone may now act for the holder with their own credential (SPC_04, SPC_05, ACC_13),
    until `ends_at` when known (a minor's eighteenth birthday, a measure's end)."""

    OWNER = "identity"
    TYPE = "ProxyAppointed"
    proxy_id: UUID
    ins: str
    kind: ProxyKind
    role: ProxyRole
    starts_at: datetime
    ends_at: datetime | None


@register
class ProxyEnded(Event):
    """The proxy may no longer act: `came_of_age`, `measure_ended`, `holder_deceased`,
    `revoked`."""

    OWNER = "identity"
    TYPE = "ProxyEnded"
    proxy_id: UUID
    ins: str
    ended_at: datetime
    reason: str


@register
class HolderCameOfAge(Event):
    """The holder is eighteen: they take over their space from their legal representative and
    may close it (SPC_04)."""

    OWNER = "identity"
    TYPE = "HolderCameOfAge"
    ins: str
    at: datetime


@register
class HolderDeceased(Event):
    """The operator recorded the holder's death (ACC_13, RET_03); the space is closed with it."""

    OWNER = "identity"
    TYPE = "HolderDeceased"
    ins: str
    died_on: date
    recorded_at: datetime


@register
class TreatingPhysicianDeclared(Event):
    """The holder has a treating physician, in effect from `since` (SPC_07, ACC_04)."""

    OWNER = "identity"
    TYPE = "TreatingPhysicianDeclared"
    ins: str
    rpps: str
    since: datetime


@register
class TreatingPhysicianChanged(Event):
    """The holder's treating physician is now `rpps`; `previous_rpps` no longer is (ACC_04)."""

    OWNER = "identity"
    TYPE = "TreatingPhysicianChanged"
    ins: str
    rpps: str
    previous_rpps: str
    since: datetime


@register
class StaffJoined(Event):
    """A professional works in an establishment (access blocks an establishment's staff with
    it, ACC_08)."""

    OWNER = "identity"
    TYPE = "StaffJoined"
    finess: str
    rpps: str
    at: datetime


@register
class StaffLeft(Event):
    OWNER = "identity"
    TYPE = "StaffLeft"
    finess: str
    rpps: str
    at: datetime


@register
class CareTeamDeclared(Event):
    """ACC_06: these professionals take care of the holder in this establishment from
    `starts_at` until `ends_at` (None: until `CareTeamEnded`)."""

    OWNER = "identity"
    TYPE = "CareTeamDeclared"
    episode_id: UUID
    ins: str
    finess: str
    members: list[str]
    starts_at: datetime
    ends_at: datetime | None


@register
class CareTeamEnded(Event):
    OWNER = "identity"
    TYPE = "CareTeamEnded"
    episode_id: UUID
    ins: str
    ended_at: datetime


@register
class CatalogueServiceReferenced(Event):
    """ACC_15: an application of the catalogue, and the data categories it may be let read."""

    OWNER = "identity"
    TYPE = "CatalogueServiceReferenced"
    service_id: str
    categories: list[str]
    at: datetime


@register
class CatalogueServiceDereferenced(Event):
    OWNER = "identity"
    TYPE = "CatalogueServiceDereferenced"
    service_id: str
    at: datetime


# The holder's time zone, an IANA name (`Europe/Paris`, `America/Guadeloupe`, `Indian/Reunion`):
# alerts tell times in it, with its name (docs/notifier.md). Metropolitan France by default.
DEFAULT_TIME_ZONE: Final = "Europe/Paris"


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _known_zones():
        raise ValueError(f"not an IANA time zone name (such as Europe/Paris): {value[:64]!r}")
    return value


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]


@register
class ContactChangedV1(Event):
    """Superseded by v2 (contact details must not travel on the bus); kept so that messages
    still queued stay readable. Consumers ignore its name and addresses."""

    OWNER = "identity"
    TYPE = "ContactChanged"
    VERSION = 1
    ins: str
    display_name: str
    email: str | None
    phone: str | None

    def upgraded(self) -> ContactChanged:
        """As v2: which channels exist; the name and addresses are dropped."""
        channels: list[Literal["email", "sms"]] = []
        if self.email:
            channels.append("email")
        if self.phone:
            channels.append("sms")
        return ContactChanged(ins=self.ins, channels=channels)


@register
class ContactChanged(Event):
    """Which alert channels the holder has (for a minor, the legal representative's, NTF_04).

    No address and no name: whoever needs them asks identity (`GetAlertContact` on
    `identity.contacts`, the notifier only) when it sends.
    """

    OWNER = "identity"
    TYPE = "ContactChanged"
    VERSION = 2
    ins: str
    channels: list[Literal["email", "sms"]]
    # The zone the holder reads times in (not health data); absent from messages published
    # before holders could choose it, which are read as Paris time.
    time_zone: TimeZoneName = DEFAULT_TIME_ZONE

    def upgraded(self) -> ContactChanged:
        return self


# --- dossier --------------------------------------------------------------------------------


def public_name(kind: ActorKind, name: str) -> str | None:
    """The name an event may carry for an author or sender: a professional's (public, in the
    RPPS directory, and what the holder's alerts must show), never a holder's or an operator's
    (personal data; the INS already says whose space it is)."""
    return name if kind == "professional" else None


@register
class DocumentDepositedV1(Event):
    """Superseded by v2 (a title is medical content); kept so that messages still queued stay
    readable. Consumers read it as v2 (`upgraded`), ignoring the title."""

    OWNER = "dossier"
    TYPE = "DocumentDeposited"
    VERSION = 1
    document_id: UUID
    ins: str
    document_type: str
    title: str
    author_id: str
    author_name: str
    deposited_at: datetime

    def upgraded(self) -> DocumentDeposited:
        # v1 had no author kind: deposits were announced as a professional's.
        return DocumentDeposited(
            document_id=self.document_id,
            ins=self.ins,
            document_type=self.document_type,
            author_kind="professional",
            author_id=self.author_id,
            author_name=self.author_name,
            deposited_at=self.deposited_at,
        )


@register
class DocumentDeposited(Event):
    """Ids and coarse types only: no title, no content (both stay sealed in the dossier).

    `author_name` only for a professional author (`public_name`).
    """

    OWNER = "dossier"
    TYPE = "DocumentDeposited"
    VERSION = 2
    document_id: UUID
    ins: str
    document_type: str
    author_kind: ActorKind
    author_id: str
    author_name: str | None
    deposited_at: datetime
    # MSG_02: the professional who prescribed what the document reports, if the deposit named
    # one (their identifier only): messaging sends them the deposit too.
    prescriber_id: str | None = None

    def upgraded(self) -> DocumentDeposited:
        return self


@register
class DocumentHeldBack(Event):
    """DOC_07: a document is provisionally inaccessible to the holder until an announcement
    consultation (at most a month). Its id only."""

    OWNER = "dossier"
    TYPE = "DocumentHeldBack"
    document_id: UUID
    ins: str
    held_at: datetime


@register
class DocumentReleased(Event):
    """DOC_07: the held-back document is accessible to the holder from now on."""

    OWNER = "dossier"
    TYPE = "DocumentReleased"
    document_id: UUID
    ins: str
    released_at: datetime
    reason: Literal["consultation", "one_month"]


@register
class DocumentDeleted(Event):
    """DOC_05: a document (and its versions) was deleted, its author accepting the holder's
    request (or the holder deleting their own)."""

    OWNER = "dossier"
    TYPE = "DocumentDeleted"
    document_id: UUID
    ins: str
    deleted_at: datetime


@register
class LegacyRecordImported(Event):
    """SPC_08: documents of the former DMP were brought into the dossier (counted, never
    described: no title, no content)."""

    OWNER = "dossier"
    TYPE = "LegacyRecordImported"
    ins: str
    export_id: str
    documents: int
    staged: bool
    imported_at: datetime


# --- access ---------------------------------------------------------------------------------


Grantee = Literal["professional", "establishment"]


@register
class AuthorizationGiven(Event):
    """ACC_14: the holder (or someone collecting their consent) authorized a professional (RPPS)
    or an establishment (FINESS), permanently (`until` None) or until a time; retention keeps the
    end as a deadline the holder sees. Ids only."""

    OWNER = "access"
    TYPE = "AuthorizationGiven"
    ins: str
    grantee_kind: Grantee
    grantee_id: str
    given_at: datetime
    until: datetime | None


@register
class AuthorizationWithdrawn(Event):
    """ACC_14: an authorization revoked before its end: nothing left to wait for."""

    OWNER = "access"
    TYPE = "AuthorizationWithdrawn"
    ins: str
    grantee_kind: Grantee
    grantee_id: str
    withdrawn_at: datetime


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
    emergency: bool = False
    matrix_version: str | None = None


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
    # ACC_09 / NTF_02: an emergency access, which the holder is told of as such.
    emergency: bool = False
    # ACC_03: the trace's place in its holder's chain and the chain's hash there (hex), so a
    # copy outside access anchors the chain (a rewritten chain no longer matches it).
    seq: int | None = None
    chain_hash: str | None = None
    # ACC_05: a consent collected by one professional for another, which the holder is told
    # of with who and why (ids and the reason's code, a `ConsentReason`; the free text stays in
    # access). On the collection itself (action `collect_consent`): for whom. On an access that
    # rests on such a consent: who collected it.
    consent_for: str | None = None
    consent_collected_by: str | None = None
    consent_reason: str | None = None


# --- messaging ------------------------------------------------------------------------------


@register
class MessageSentV1(Event):
    """Superseded by v2 (a subject can say as much as a diagnosis); kept so that messages still
    queued stay readable. Consumers read it as v2 (`upgraded`), ignoring the subject."""

    OWNER = "messaging"
    TYPE = "MessageSent"
    VERSION = 1
    message_id: UUID
    ins: str
    sender_kind: ActorKind
    sender_id: str
    sender_name: str
    subject: str
    sent_at: datetime

    def upgraded(self) -> MessageSent:
        return MessageSent(
            message_id=self.message_id,
            ins=self.ins,
            sender_kind=self.sender_kind,
            sender_id=self.sender_id,
            sender_name=public_name(self.sender_kind, self.sender_name),
            sent_at=self.sent_at,
        )


@register
class MessageSent(Event):
    """Ids and coarse types only: neither subject nor body (both stay sealed in messaging).

    `sender_name` only for a professional sender (`public_name`).
    """

    OWNER = "messaging"
    TYPE = "MessageSent"
    VERSION = 2
    message_id: UUID
    ins: str
    sender_kind: ActorKind
    sender_id: str
    sender_name: str | None
    sent_at: datetime
    # The thread it was written in (MSG_01), and how many files it carries: never their names.
    thread_id: UUID | None = None
    attachments: int = 0

    def upgraded(self) -> MessageSent:
        return self


# --- notifier -------------------------------------------------------------------------------


@register
class HolderAlerted(Event):
    OWNER = "notifier"
    TYPE = "HolderAlerted"
    alert_id: UUID
    ins: str
    cause_event_id: UUID
    kind: str
    # "space", then "email" / "sms", or "digest": one of a burst, told by its digest
    # (docs/notifier.md).
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
class HolderPurgeRequested(Event):
    """RET_01: ten years have passed since closure: each service named in `services` deletes
    everything it holds for `ins` and answers with its `HolderDataPurged`.

    The first request names every service that holds a holder's data; a retry names only those
    that have not answered. `closed_at` is the closure the ten years ran from: a service that
    knows of a newer space for the same INS (registered again after the purge) deletes nothing.
    """

    OWNER = "retention"
    TYPE = "HolderPurgeRequested"
    purge_id: UUID
    ins: str
    closed_at: datetime
    services: list[str]
    requested_at: datetime


@register
class HeldBackNoticeDue(Event):
    """DOC_07: two weeks after a held-back deposit with no announcement consultation yet: the
    holder is to be told their dossier was updated and invited to see a professional."""

    OWNER = "retention"
    TYPE = "HeldBackNoticeDue"
    ins: str
    document_id: UUID
    deadline_id: UUID
    due_at: datetime


@register
class HeldBackReleaseDue(Event):
    """DOC_07: a month after a held-back deposit: the document becomes accessible."""

    OWNER = "retention"
    TYPE = "HeldBackReleaseDue"
    ins: str
    document_id: UUID
    deadline_id: UUID
    due_at: datetime


@register
class OccupationalPartDue(Event):
    """RET_03: the occupational health part's keeping time is over: forty years after the last
    occupational health visit, or ten years after the holder's death. The dossier deletes it."""

    OWNER = "retention"
    TYPE = "OccupationalPartDue"
    ins: str
    deadline_id: UUID
    due_at: datetime


@register
class AuthorizationEndDue(Event):
    """ACC_14 / RET_04: a time-limited authorization has reached its end (access stopped
    honouring it at that instant; this tells everyone it is over)."""

    OWNER = "retention"
    TYPE = "AuthorizationEndDue"
    ins: str
    grantee_kind: Grantee
    grantee_id: str
    deadline_id: UUID
    due_at: datetime


@register
class ProxyEndDue(Event):
    """A proxy's appointment has reached its end (a minor's eighteenth birthday, SPC_04; a
    protection measure's end date, SPC_05)."""

    OWNER = "retention"
    TYPE = "ProxyEndDue"
    ins: str
    proxy_id: UUID
    deadline_id: UUID
    due_at: datetime


# --- each service's part of a purge ---------------------------------------------------------


class HolderDataPurged(Event):
    """A service's part of a purge done (RET_01): how many rows it deleted, by table.

    Names no one: the purge id is the only link to the holder, and retention keeps that link as
    a keyed hash. `skipped` says why nothing was deleted (the INS belongs to a newer space).
    One event per service (each is its owner's), all read alike by retention.
    """

    purge_id: UUID
    rows: dict[str, int]
    purged_at: datetime
    skipped: str | None = None


@register
class IdentityPurgedHolder(HolderDataPurged):
    OWNER = "identity"
    TYPE = "IdentityPurgedHolder"


@register
class AccessPurgedHolder(HolderDataPurged):
    OWNER = "access"
    TYPE = "AccessPurgedHolder"


@register
class DossierPurgedHolder(HolderDataPurged):
    OWNER = "dossier"
    TYPE = "DossierPurgedHolder"


@register
class MessagingPurgedHolder(HolderDataPurged):
    OWNER = "messaging"
    TYPE = "MessagingPurgedHolder"


@register
class NotifierPurgedHolder(HolderDataPurged):
    OWNER = "notifier"
    TYPE = "NotifierPurgedHolder"


# Who holds a holder's data besides retention, and the event each answers a purge with.
PURGE_ANSWERS: dict[str, type[HolderDataPurged]] = {
    answer.OWNER: answer
    for answer in (
        IdentityPurgedHolder,
        AccessPurgedHolder,
        DossierPurgedHolder,
        MessagingPurgedHolder,
        NotifierPurgedHolder,
    )
}
