"""Every command of the system and its reply, grouped by the queue that serves it.

A request names a command and carries the caller's signed token; the reply is either the
command's typed result or an error (`libs.contracts.rpc`). Adding a command is one class here and
one `runtime.handle(...)` in its service's handlers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import email_validator
import phonenumbers
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from libs.contracts.envelope import Contract
from libs.contracts.events import DEFAULT_TIME_ZONE, ActorKind, Outcome, ProxyRole, TimeZoneName
from libs.contracts.rpc import EVERY_QUEUE, Command
from libs.contracts.text import Name, Text, refuse_control_characters
from libs.contracts.vocabulary import DataCategory, EstablishmentCategory, Profession, Specialty

# The command queues. A client publishes to `dmp.commands` with the queue as routing key;
# `identity.contacts` and `access.decide` are bound only to `dmp.internal` (services only).
IDENTITY = "identity.commands"
IDENTITY_CONTACTS = "identity.contacts"
ACCESS = "access.commands"
ACCESS_DECIDE = "access.decide"
DOSSIER = "dossier.commands"
MESSAGING = "messaging.commands"
NOTIFIER = "notifier.commands"
RETENTION = "retention.commands"


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
# A professional's identifier: RPPS (11 digits), ADELI (9 digits), or for a professional of
# another EU or EEA state (ACC_16) the state's code and their national identifier (`DE-123456`).
ProfessionalId = Annotated[
    str, StringConstraints(pattern=r"^(?:[0-9]{11}|[0-9]{9}|[A-Z]{2}-[A-Za-z0-9]{1,30})$")
]
Rpps = ProfessionalId
# An establishment's FINESS number: 9 characters, the department (2A/2B in Corsica) first, the
# last a check digit (identity checks it and refuses it with `invalid_finess`).
FinessInput = Annotated[str, StringConstraints(max_length=16)]
Finess = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}[0-9]{7}$|^2[AB][0-9]{7}$")]
# Who signs in with a card: an RPPS number or an operator's id.
CardSubject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Base64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,256}={0,2}$")]
Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_email)]
Phone = Annotated[
    str,
    StringConstraints(min_length=2, max_length=32, pattern=r"^[0-9+ ().-]+$"),
    AfterValidator(_phone),
]


# --- shared shapes --------------------------------------------------------------------------

# type/subtype as RFC 6838 names them (restricted-name), ASCII, no parameters.
MediaType = Annotated[
    str,
    StringConstraints(
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
    ),
]
Cursor = Annotated[str, StringConstraints(max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]


def _message_body(value: str) -> str:
    """Text over several lines: line feeds and tabs are its only control characters (a CR LF
    is kept as LF, a lone CR refused)."""
    value = value.replace("\r\n", "\n")
    refuse_control_characters(value.replace("\n", " ").replace("\t", " "))
    return value


MessageBody = Annotated[
    str, StringConstraints(min_length=1, max_length=100_000), AfterValidator(_message_body)
]


DocumentType = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")]
# An identifier given by the former DMP (a document's, an export's): printable ASCII.
LegacyId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[!-~]+$")]


class Readiness(Contract):
    """Ping's reply: whether the service serves (consuming every queue, database and broker
    answering, nothing stalled)."""

    service: str
    ready: bool
    consuming: dict[str, bool]
    database: bool
    broker: bool
    stalled: list[str]
    last_infrastructure_error: str | None = None


class Ping(Command[Readiness]):
    """Answered on every command queue, without a token: readiness probes and demos wait on it."""

    QUEUE = EVERY_QUEUE
    AUTHENTICATED = False


# --- identity.commands ----------------------------------------------------------------------


class SpaceAnnouncement(Contract):
    ins: Ins
    status: Literal["announced"]
    minor: bool
    # SPC_01: the space opens by itself then, unless the holder objects before.
    opens_at: datetime


class RegisterHolder(Command[SpaceAnnouncement]):
    """An operator of the health insurance registers a person: their space is announced."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    nir: NirInput
    first_name: Name
    last_name: Name
    birth_date: date
    email: Email | None = None
    phone: Phone | None = None
    legal_representative_email: Email | None = None


class Objection(Contract):
    ins: Ins
    status: Literal["objected"]


class ObjectToSpace(Command[Objection]):
    """The person (signed in with a code sent to them) or the operator for them objects within
    the six weeks after the announcement: no space is opened (SPC_01)."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


class ProfessionalRecord(Contract):
    rpps: Rpps


class RegisterProfessional(Command[ProfessionalRecord]):
    QUEUE = IDENTITY
    REQUEST_ID = "required"

    rpps: Rpps
    first_name: Name
    last_name: Name
    profession: Profession  # a closed list: no insurer, bank or employer (ACC_10)
    specialty: Specialty | None = None
    card_public_key: Base64Url  # Ed25519, raw 32 bytes, base64url
    # ACC_16: a professional of another EU or EEA state, whose `rpps` is then `<country>-<id>`.
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None


class Challenge(Contract):
    challenge: str
    expires_at: datetime


class RequestChallenge(Command[Challenge]):
    """First step of a card sign-in: a one-time challenge for the card to sign."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    kind: Literal["professional", "operator", "app"]
    subject: CardSubject


class Session(Contract):
    token: str  # a JWT for every later command, until `expires_at`
    expires_at: datetime


class SignInWithCard(Command[Session]):
    """A professional's card, an operator's key, or a referenced catalogue service's key
    (`app`, ACC_15) signs the challenge."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    kind: Literal["professional", "operator", "app"]
    subject: CardSubject
    challenge: Base64Url
    signature: Base64Url  # base64url Ed25519 signature of the challenge


class CodeRequested(Contract):
    # The same answer whether or not the INS exists: the reply reveals nothing.
    sent: bool
    message: str


class RequestHolderCode(Command[CodeRequested]):
    QUEUE = IDENTITY
    AUTHENTICATED = False

    ins: Ins


class SignInHolder(Command[Session]):
    QUEUE = IDENTITY
    AUTHENTICATED = False

    ins: Ins
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class Closure(Contract):
    ins: Ins
    status: Literal["closed"]
    closed_at: datetime


class CloseSpace(Command[Closure]):
    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


class SpaceDeletion(Contract):
    ins: Ins
    status: Literal["closed"]
    requested_at: datetime
    # RET_02: when everything of the space is deleted (within three months of the request).
    purge_due_at: datetime


class RequestSpaceDeletion(Command[SpaceDeletion]):
    """RET_02: the holder (or their representative, or the operator at their request) expressly
    asks that the space's data be deleted. An open space is closed at once; an archived one too
    is purged at `purge_due_at` instead of ten years after closure. Reactivating the space before
    then withdraws the request."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


class Reactivation(Contract):
    ins: Ins
    status: Literal["open"]
    reactivated_at: datetime


class ReactivateSpace(Command[Reactivation]):
    """The holder (or their representative, or the operator at their request) reopens a closed
    space within its ten years of archive (RET_01): everything in it is served again. Not after
    the holder's death."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


# Ten characters of an alphabet without look-alikes (no 0/O, 1/I/L), as printed in the mail.
ActivationCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^(?i:[2-9A-HJKMNP-Z]{5}-?[2-9A-HJKMNP-Z]{5})$"
    ),
]


class Activation(Contract):
    ins: Ins
    status: Literal["open"]
    activated_at: datetime


class ActivateSpace(Command[Activation]):
    """SPC_03: the person (or the representative) activates the space with the activation code
    sent with its announcement; an announced space opens at once. The code is used once and
    expires (`IssueActivationCode` sends a new one). Sign in afterwards with `RequestHolderCode`."""

    QUEUE = IDENTITY
    AUTHENTICATED = False
    REQUEST_ID = "optional"

    ins: Ins
    activation_code: ActivationCode


class ActivationCodeIssued(Contract):
    ins: Ins
    expires_at: datetime


class IssueActivationCode(Command[ActivationCodeIssued]):
    """The operator sends a new activation code (the previous one is void), e.g. when it
    expired or was lost."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


# --- identity.commands: proxies (SPC_04, SPC_05, ACC_13) ---------------------------------------

# A protection measure's reference, as the court gives it (e.g. "RG 24/01234").
MeasureReference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[ -~]+$")
]


class Proxy(Contract):
    """Someone who acts for a holder with their own credential (`SignInProxy`)."""

    proxy_id: UUID
    ins: Ins
    kind: Literal["representative", "requester"]
    role: ProxyRole
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None = None
    end_reason: str | None = None


class AppointRepresentative(Command[Proxy]):
    """The operator records a minor's legal representative (SPC_04: until the eighteenth
    birthday) or the person in charge of an adult's protection measure with its reference
    (SPC_05: until `until`, or until ended). The representative is told their identifier at the
    address given, and signs in with a code sent there."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins
    role: Literal["legal_representative", "protection_representative"]
    first_name: Name
    last_name: Name
    email: Email | None = None
    phone: Phone | None = None
    measure_reference: MeasureReference | None = None
    until: date | None = None


class EndRepresentation(Command[Proxy]):
    """The operator ends an appointment (a measure lifted, parental authority withdrawn)."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    proxy_id: UUID


class Proxies(Contract):
    proxies: list[Proxy]


class ListProxies(Command[Proxies]):
    """Who acts or acted for the holder: asked by the holder, a representative of theirs, or the
    operator."""

    QUEUE = IDENTITY

    ins: Ins


class RequestProxyCode(Command[CodeRequested]):
    """A one-time code to a proxy's verified contact (the same answer whatever the id)."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    proxy_id: UUID


class SignInProxy(Command[Session]):
    """A representative or requester signs in with their code: the token acts for one holder
    (`acts_for`), in one role."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    proxy_id: UUID
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class RemindIdentifier(Command[CodeRequested]):
    """SPC_03: a lost identifier is sent again to the e-mail on file (the holder's INS, or a
    proxy's id). The same answer whether or not the address is known."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    email: Email


# --- identity.commands: death and access requests after it (ACC_13) --------------------------


class Death(Contract):
    ins: Ins
    died_on: date
    space_status: Literal["objected", "closed"]


class RecordDeath(Command[Death]):
    """The operator records the holder's death: the space is closed (archived ten years),
    representatives end, no code is sent any more."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins
    died_on: date


RequesterRelation = Literal["heir", "unmarried_partner", "civil_union_partner", "court_expert"]


class AccessRequestReceipt(Contract):
    request_id: UUID
    status: Literal["pending"]
    message: str


class FileAccessRequest(Command[AccessRequestReceipt]):
    """ACC_13: after a holder's death, an heir, the unmarried or civil-union partner, or a
    court-ordered expert asks for access. Anyone may file; the operator checks the documents and
    validates or refuses. The answer is the same whatever the INS."""

    QUEUE = IDENTITY
    AUTHENTICATED = False

    ins: Ins
    relation: RequesterRelation
    first_name: Name
    last_name: Name
    email: Email | None = None
    phone: Phone | None = None
    reason: Text


class AccessRequest(Contract):
    request_id: UUID
    ins: Ins
    relation: RequesterRelation
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    reason: str
    filed_at: datetime
    status: Literal["pending", "validated", "refused"]
    decided_at: datetime | None
    decision_note: str | None
    proxy_id: UUID | None


class AccessRequests(Contract):
    requests: list[AccessRequest]


class ListAccessRequests(Command[AccessRequests]):
    QUEUE = IDENTITY

    status: Literal["pending", "validated", "refused"] = "pending"
    limit: Annotated[int, Field(ge=1, le=500)] = 100


class DecideAccessRequest(Command[AccessRequest]):
    """The operator validates (the requester becomes a proxy of the deceased holder, told their
    identifier at the verified contact) or refuses a request."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    request_id: UUID
    validate_request: bool
    note: Text | None = None


# --- identity.commands: the holder's contacts and choices (SPC_06, SPC_07) --------------------

AlertChannel = Literal["email", "sms"]


def _every_channel() -> list[AlertChannel]:
    return ["email", "sms"]


class ContactPreferences(Contract):
    ins: Ins
    email: str | None
    phone: str | None
    code_channel: AlertChannel
    alert_channels: list[AlertChannel]  # empty: alerts stay in the space (SPC_06)
    time_zone: str = DEFAULT_TIME_ZONE  # the zone alerts tell times in


class SetContactPreferences(Command[ContactPreferences]):
    """The holder (or representative) sets their e-mail and phone, the channel codes go by, and
    the channels alerts go by (none: alerts are kept in the space, SPC_06); and, if given, the
    time zone alerts tell times in (an IANA name such as `America/Guadeloupe`; left as it was
    when absent, Europe/Paris until chosen)."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins
    email: Email | None = None
    phone: Phone | None = None
    code_channel: AlertChannel = "email"
    alert_channels: list[AlertChannel] = Field(default_factory=_every_channel, max_length=2)
    time_zone: TimeZoneName | None = None


class PersonContact(Contract):
    first_name: Name
    last_name: Name
    relation: Text | None = None
    phone: Phone | None = None
    email: Email | None = None


class PersonalContacts(Contract):
    ins: Ins
    trusted_person: PersonContact | None
    emergency_contacts: list[PersonContact]
    treating_physician: Rpps | None
    pending_treating_physician: Rpps | None


class SetPersonalContacts(Command[PersonalContacts]):
    """SPC_07: the trusted person and up to five people to contact in an emergency, replaced as a
    whole."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins
    trusted_person: PersonContact | None = None
    emergency_contacts: list[PersonContact] = Field(default_factory=list, max_length=5)


class GetPersonalContacts(Command[PersonalContacts]):
    QUEUE = IDENTITY

    ins: Ins


class TreatingPhysician(Contract):
    ins: Ins
    rpps: Rpps
    status: Literal["pending", "current"]


class DeclareTreatingPhysician(Command[TreatingPhysician]):
    """SPC_07 / ACC_04: the holder (or representative) names their treating physician, who then
    accepts (`AcceptTreatingPhysician`); or the physician declares themselves, in effect at once."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps


class AcceptTreatingPhysician(Command[TreatingPhysician]):
    """The physician the holder named accepts: they become the treating physician."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    ins: Ins


# --- identity.commands: establishments, care teams, catalogue services (ACC_06, ACC_15) -------


class Establishment(Contract):
    finess: Finess
    name: str
    category: EstablishmentCategory


class RegisterEstablishment(Command[Establishment]):
    """The operator registers a health, social or medico-social establishment by its FINESS."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    finess: FinessInput
    name: Text
    category: EstablishmentCategory


class StaffMembership(Contract):
    finess: Finess
    rpps: Rpps
    member: bool


class AddEstablishmentStaff(Command[StaffMembership]):
    QUEUE = IDENTITY
    REQUEST_ID = "required"

    finess: Finess
    rpps: Rpps


class RemoveEstablishmentStaff(Command[StaffMembership]):
    QUEUE = IDENTITY
    REQUEST_ID = "required"

    finess: Finess
    rpps: Rpps


class CareTeam(Contract):
    episode_id: UUID
    finess: Finess
    ins: Ins
    members: list[Rpps]
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None = None


class DeclareCareTeam(Command[CareTeam]):
    """ACC_06: an establishment (a professional on its staff, or the operator) declares who
    takes care of the holder, from when until when (open-ended: until `EndCareTeam`)."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    finess: Finess
    ins: Ins
    starts_at: datetime
    ends_at: datetime | None = None
    members: list[Rpps] = Field(min_length=1, max_length=100)


class EndCareTeam(Command[CareTeam]):
    QUEUE = IDENTITY
    REQUEST_ID = "required"

    episode_id: UUID


class CatalogueService(Contract):
    service_id: CardSubject
    name: str
    categories: list[DataCategory]
    referenced: bool


class ReferenceCatalogueService(Command[CatalogueService]):
    """ACC_15: the operator references an application of the catalogue, with the data
    categories its referencing allows and the public key it signs in with (`app`)."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    service_id: CardSubject
    name: Text
    categories: list[DataCategory] = Field(min_length=1, max_length=len(DataCategory))
    public_key: Base64Url


class DereferenceCatalogueService(Command[CatalogueService]):
    """The application leaves the catalogue: it can no longer sign in, and access no longer
    grants it anything."""

    QUEUE = IDENTITY
    REQUEST_ID = "required"

    service_id: CardSubject


class Jwk(Contract):
    """One of identity's public signing keys (RFC 8037: Ed25519 as an OKP key)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"] | None = None
    alg: Literal["EdDSA"] | None = None


class Jwks(Contract):
    keys: list[Jwk]


class GetSigningKeys(Command[Jwks]):
    """The public keys tokens are verified with (a JWKS): the current one and, during a
    rotation, the next or the previous. A token's `kid` names its key."""

    QUEUE = IDENTITY
    AUTHENTICATED = False


# --- identity.contacts (services only: the notifier) ------------------------------------------

MAX_ALERT_CONTACTS = 64


class AlertContact(Contract):
    ins: Ins
    display_name: str
    minor: bool
    email: str | None
    phone: str | None


class GetAlertContact(Command[AlertContact]):
    """Where the holder's alerts go (a minor's: the legal representative's, NTF_04)."""

    QUEUE = IDENTITY_CONTACTS
    AUTHENTICATED = False  # the caller is checked instead: the notifier's broker user

    ins: Ins


class AlertContacts(Contract):
    contacts: list[AlertContact]
    unknown: list[Ins]  # no person with this INS: there is no one to alert


class GetAlertContacts(Command[AlertContacts]):
    """`GetAlertContact` for a batch of holders at once (the notifier's batch of mails): one
    request and one reply instead of one each."""

    QUEUE = IDENTITY_CONTACTS
    AUTHENTICATED = False  # the caller is checked instead: the notifier's broker user

    ins: Annotated[list[Ins], Field(min_length=1, max_length=MAX_ALERT_CONTACTS)]


# --- access.decide (services only) ------------------------------------------------------------


class Decision(Contract):
    decision_id: UUID
    granted: bool
    rule: str
    reason: str
    document_types: list[str] = Field(default_factory=list)
    include_masked: bool = False
    emergency: bool = False  # ACC_09: granted as an emergency access (the holder is told)
    matrix_version: str | None = None  # ACC_07: the matrix that decided
    # DOC_07: held-back documents too (professionals); never for the holder's side.
    include_held_back: bool = False


class Decide(Command[Decision]):
    """Asked by a service on behalf of the actor whose token the request carries."""

    QUEUE = ACCESS_DECIDE
    # A retried deposit or read asks again under the same id: one decision, one trace.
    REQUEST_ID = "optional"

    ins: Ins
    action: Literal[
        "read", "deposit", "message", "read_history", "copy", "mask", "request_deletion"
    ]
    document_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")] | None = None
    # ACC_09: break-the-glass, with its stated reason in `purpose` (kept in the trace, shown to
    # the holder, never published).
    emergency: bool = False
    purpose: Text | None = None
    # DOC_03: a deposit on behalf of this professional (the author), by the token's bearer.
    on_behalf_of: ProfessionalId | None = None


# --- access.commands ------------------------------------------------------------------------

# ACC_05: why a professional collected the holder's consent for another (shown to the holder;
# a closed list travels, the free text stays in access).
ConsentReason = Literal["referral", "second_opinion", "continuity_of_care", "holder_unable"]


class Authorization(Contract):
    ins: Ins
    rpps: Rpps
    until: datetime | None
    express: bool = False


class AuthorizeProfessional(Command[Authorization]):
    """ACC_05 / ACC_14: the holder (or representative) authorizes a professional, permanently
    or until a date. ACC_11: an occupational or fire-brigade physician needs `express`, the
    holder's express consent given after information."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps
    until: datetime | None = None
    express: bool = False


class CollectConsent(Command[Authorization]):
    """ACC_05: a professional who has access records the holder's consent for another
    professional, with the reason; the holder sees who collected it and why."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps
    reason_code: ConsentReason
    reason: Text
    until: datetime | None = None


class Revocation(Contract):
    ins: Ins
    rpps: Rpps
    authorized: Literal[False]


class RevokeAuthorization(Command[Revocation]):
    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps


class BlockStatus(Contract):
    ins: Ins
    rpps: Rpps
    blocked: bool


class BlockProfessional(Command[BlockStatus]):
    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps


class UnblockProfessional(Command[BlockStatus]):
    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    rpps: Rpps


class EstablishmentAuthorization(Contract):
    ins: Ins
    finess: Finess
    authorized: bool
    until: datetime | None = None


class AuthorizeEstablishment(Command[EstablishmentAuthorization]):
    """ACC_14: the holder authorizes an establishment (its staff, each identified with their
    own card), permanently or until a date."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    finess: Finess
    until: datetime | None = None


class RevokeEstablishmentAuthorization(Command[EstablishmentAuthorization]):
    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    finess: Finess


class EstablishmentBlock(Contract):
    ins: Ins
    finess: Finess
    blocked: bool


class BlockEstablishment(Command[EstablishmentBlock]):
    """ACC_08: the holder blocks an establishment: none of its staff reads or deposits (but the
    treating physician, who can never be blocked)."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    finess: Finess


class UnblockEstablishment(Command[EstablishmentBlock]):
    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    finess: Finess


class AppAccess(Contract):
    ins: Ins
    service_id: CardSubject
    categories: list[DataCategory]


class SetAppAccess(Command[AppAccess]):
    """ACC_15: the holder lets a catalogue service see chosen categories of their data (an
    empty list: nothing any more)."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    service_id: CardSubject
    categories: list[DataCategory] = Field(max_length=len(DataCategory))


class EmergencyObjection(Contract):
    ins: Ins
    objected: bool


class SetEmergencyObjection(Command[EmergencyObjection]):
    """ACC_09: the holder objects, or no longer objects, to access in an emergency."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    objected: bool


class TreatingPhysicianDelegation(Contract):
    ins: Ins
    delegated: bool


class DelegateToTreatingPhysician(Command[TreatingPhysicianDelegation]):
    """ACC_04: at the holder's request, the treating physician may do what the holder may do
    here (manage who may access, read the history), until the holder lifts it."""

    QUEUE = ACCESS
    REQUEST_ID = "required"

    ins: Ins
    delegated: bool


class Authorized(Contract):
    rpps: Rpps
    granted_at: datetime
    until: datetime | None
    express: bool = False
    # ACC_05: consent collected by another professional: who, and why.
    collected_by: str | None = None
    reason_code: ConsentReason | None = None
    reason: str | None = None


class Blocked(Contract):
    rpps: Rpps
    blocked_at: datetime


class AuthorizedEstablishment(Contract):
    finess: Finess
    granted_at: datetime
    until: datetime | None


class BlockedEstablishment(Contract):
    finess: Finess
    blocked_at: datetime


class AppChoice(Contract):
    service_id: str
    categories: list[DataCategory]
    referenced: bool


class CareTeamInProgress(Contract):
    """ACC_06: an episode the establishment declared, its members each named."""

    episode_id: UUID
    finess: Finess
    members: list[Rpps]
    starts_at: datetime
    ends_at: datetime | None


class Permissions(Contract):
    """ACC_02: everything the holder decided about who may access, and who else may (the
    treating physician, care teams in progress), in one view."""

    authorized: list[Authorized]
    blocked: list[Blocked]
    authorized_establishments: list[AuthorizedEstablishment] = Field(default_factory=list)
    blocked_establishments: list[BlockedEstablishment] = Field(default_factory=list)
    apps: list[AppChoice] = Field(default_factory=list)
    emergency_objection: bool = False
    treating_physician: str | None = None
    treating_physician_delegated: bool = False  # ACC_04
    care_teams: list[CareTeamInProgress] = Field(default_factory=list)


class ListPermissions(Command[Permissions]):
    """ACC_02: the holder sees who is allowed and who is blocked."""

    QUEUE = ACCESS

    ins: Ins


class AccessTrace(Contract):
    trace_id: UUID
    at: datetime
    actor_kind: ActorKind
    actor_id: str
    actor_name: str
    actor_profession: str | None
    action: str
    document_type: str | None = None
    outcome: Outcome
    rule: str
    reason: str | None = None
    emergency: bool = False
    purpose: str | None = None  # the stated reason of a break-the-glass (ACC_09)


class AccessHistory(Contract):
    traces: list[AccessTrace]
    next_cursor: Cursor | None


class ListAccessHistory(Command[AccessHistory]):
    """ACC_03: every access and action, newest first, a page at a time (`next_cursor` asks for
    the next), by one actor or within a period if asked."""

    QUEUE = ACCESS

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=20, ge=1, le=200)
    actor_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    since: datetime | None = None
    until: datetime | None = None


# --- dossier.commands -----------------------------------------------------------------------


class Deposited(Contract):
    document_id: UUID
    deposited_at: datetime
    rule: str  # the rule that granted the deposit


class DepositDocument(Command[Deposited]):
    """The dossier checks the rest (known type, base64, size cap) before access is asked."""

    QUEUE = DOSSIER
    LARGE = True
    REQUEST_ID = "required"

    ins: Ins
    document_type: DocumentType
    title: Text
    content_b64: str
    # Checked against the content's signature where it has one (PDF, PNG, JPEG, GIF, ZIP);
    # left out, it is recognised from the content (application/octet-stream otherwise).
    media_type: MediaType | None = None
    # DOC_01: what the sender says of the bytes, checked (a corrupted transfer is refused).
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    size: int | None = Field(default=None, ge=1)
    # DOC_07: a professional makes it provisionally inaccessible to the holder until an
    # announcement consultation (a month at most).
    held_back: bool = False
    # A new version of a document of the same author (the holder's corrections of what they
    # entered, DOC_05): it replaces the old one visibly, which is kept.
    replaces: UUID | None = None
    # DOC_03: deposited on behalf of this professional (the author), who must be authorized;
    # the document names both.
    on_behalf_of: ProfessionalId | None = None
    # MSG_02: the professional who prescribed what the document reports, if any: the deposit
    # is sent to them by secure messaging too (their identifier travels, nothing else).
    prescriber_id: ProfessionalId | None = None


class Document(Contract):
    document_id: UUID
    document_type: str
    title: str | None  # None only for demo data deposited before titles were sealed
    media_type: str
    author_id: str
    author_name: str
    deposited_at: datetime
    content_b64: str
    masked: bool = False  # DOC_06
    held_back: bool = False  # DOC_07: not yet accessible to the holder
    version: int = 1
    replaces: UUID | None = None
    replaced_by: UUID | None = None  # set on an old version (listed with all_versions)
    deposited_by: str | None = None  # DOC_03: who deposited on the author's behalf
    size: int | None = None
    # A document uploaded in parts comes in parts too: `content_b64` is empty and each part is
    # asked with GetDocumentPart (0 to parts - 1).
    parts: int | None = None


class DossierPage(Contract):
    rule: str  # the rule that granted the read
    documents: list[Document]
    next_cursor: Cursor | None


class ReadDossier(Command[DossierPage]):
    """One page, newest first: at most `page_size` documents, and fewer when the reply would
    grow too big; `next_cursor` in the reply asks for the rest (each page is an access)."""

    QUEUE = DOSSIER
    # A read changes nothing here, but the id it passes on lets a redelivered read be decided,
    # traced and alerted once.
    REQUEST_ID = "optional"

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=20, ge=1, le=100)
    # Filters, all optional: these types only (within what the reader may see), deposited in
    # [since, until), by this author.
    document_types: list[DocumentType] | None = Field(default=None, max_length=40)
    since: datetime | None = None
    until: datetime | None = None
    author_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    # Older versions too (replaced ones say by which).
    all_versions: bool = False
    # ACC_09: a carer breaking the glass in a life-threatening situation, with the reason (the
    # holder is told; 24 hours; never the masked documents).
    emergency: bool = False
    emergency_reason: Text | None = None


class GetDocument(Command[Document]):
    """One document, with its content, if the reader may see it (not_found otherwise: whether
    it exists is not told to someone who may not see it)."""

    QUEUE = DOSSIER
    REQUEST_ID = "optional"

    ins: Ins
    document_id: UUID
    emergency: bool = False
    emergency_reason: Text | None = None


class DeletionRequest(Contract):
    document_id: UUID
    ins: Ins
    status: Literal["pending", "deleted", "kept"]
    requested_at: datetime
    decided_at: datetime | None = None


class RequestDocumentDeletion(Command[DeletionRequest]):
    """DOC_05: the holder (or representative) asks the author to delete a document; their own
    documents are deleted at once, a professional's only if the author accepts (DOC_04: the
    holder never deletes a professional's document)."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    ins: Ins
    document_id: UUID


class DeletionRequests(Contract):
    requests: list[DeletionRequest]


class ListDeletionRequests(Command[DeletionRequests]):
    """DOC_05: a professional's pending requests, for the documents they wrote."""

    QUEUE = DOSSIER


class DecideDocumentDeletion(Command[DeletionRequest]):
    """DOC_05: the author accepts (the document and its versions are deleted) or refuses."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    ins: Ins
    document_id: UUID
    accept: bool


class Release(Contract):
    document_id: UUID
    released_at: datetime


class RecordAnnouncementConsultation(Command[Release]):
    """DOC_07: a professional who has access records the announcement consultation: the
    held-back document is accessible to the holder at once, and its deadlines are off."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    ins: Ins
    document_id: UUID


class Upload(Contract):
    upload_id: UUID  # the document's id, once complete
    parts: int
    part_bytes: int
    expires_at: datetime


class BeginDocumentUpload(Command[Upload]):
    """A document too large for one message (over the single-message cap, up to the upload
    cap): declared whole here (size, SHA-256, type, title...), sent in parts of `part_bytes`
    (UploadDocumentPart), then deposited by CompleteDocumentUpload, which asks access. No part
    is ever readable before that."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    ins: Ins
    document_type: DocumentType
    title: Text
    media_type: MediaType | None = None
    size: int = Field(ge=1)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]
    held_back: bool = False
    replaces: UUID | None = None
    on_behalf_of: ProfessionalId | None = None
    prescriber_id: ProfessionalId | None = None  # MSG_02, as DepositDocument


class UploadProgress(Contract):
    upload_id: UUID
    received: int
    parts: int


class UploadDocumentPart(Command[UploadProgress]):
    """One part, `index` from 0; every part has `part_bytes` but the last. Sending a part again
    with the same bytes changes nothing; with other bytes it is refused."""

    QUEUE = DOSSIER
    LARGE = True

    upload_id: UUID
    index: int = Field(ge=0)
    content_b64: str


class CompleteDocumentUpload(Command[Deposited]):
    """Every part received and the whole matching its SHA-256: access decides the deposit, as
    for DepositDocument."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    upload_id: UUID


class DocumentPart(Contract):
    document_id: UUID
    index: int
    parts: int
    content_b64: str


class GetDocumentPart(Command[DocumentPart]):
    """A part of a document stored in parts, within the reader's scope. The parts a reader
    fetches within a few minutes are one access (one decision, one trace, one alert)."""

    QUEUE = DOSSIER

    ins: Ins
    document_id: UUID
    index: int = Field(ge=0)


class DocumentMasking(Contract):
    document_id: UUID
    masked: bool


class MaskDocument(Command[DocumentMasking]):
    """DOC_06: the holder (or representative) masks a document from professionals, or unmasks
    it; the treating physician and the author still see it."""

    QUEUE = DOSSIER
    REQUEST_ID = "required"

    ins: Ins
    document_id: UUID
    masked: bool = True


class DossierCopy(Contract):
    """DOC_09: a part of the holder's copy, itself a valid FHIR R4 Bundle (JSON); the parts
    together hold every document the holder sees, each decoding to the bytes deposited."""

    bundle: dict[str, Any]
    documents: int
    next_cursor: Cursor | None


class CopyDossier(Command[DossierCopy]):
    """DOC_09: the holder's (or representative's) copy of the whole dossier, in parts small
    enough for the broker: ask again with `next_cursor` until it is null."""

    QUEUE = DOSSIER

    ins: Ins
    cursor: Cursor | None = None


class LegacyDocument(Contract):
    """One document of the former DMP, as the old system exported it."""

    legacy_id: LegacyId
    document_type: DocumentType
    title: Text
    media_type: MediaType
    content_b64: str
    authored_at: datetime
    author_name: Name | None = None


class LegacyImport(Contract):
    ins: Ins
    export_id: LegacyId
    imported: int  # new documents from this request
    already_there: int  # the same documents, imported before (the import is idempotent)
    status: Literal["staged", "imported"]  # staged: served once the space is activated


class ImportLegacyRecord(Command[LegacyImport]):
    """SPC_08: the operator's migration brings a record of the former DMP (before July 2021)
    into the space, unchanged (content, type, title, date, author). It is served once the holder
    activates the space (at once if they already have). The same export sent again creates
    nothing twice; a document whose id comes back with other content is refused."""

    QUEUE = DOSSIER
    LARGE = True
    REQUEST_ID = "required"

    ins: Ins
    export_id: LegacyId
    exported_at: datetime
    documents: list[LegacyDocument] = Field(min_length=1, max_length=200)


# --- messaging.commands ---------------------------------------------------------------------
#
# MSG_01..03: threads about one holder's space between the holder's side (the holder, or their
# representative) and professionals; the deposit notices of MSG_02 (docs/messaging.md).


class NewAttachment(Contract):
    """A file sent with a message: checked (allowed type, its signature, size, SHA-256) and
    sealed at rest; its bytes never travel on the bus."""

    media_type: MediaType
    content_b64: str
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]
    filename: Text | None = None


class MessageReceipt(Contract):
    message_id: UUID
    sent_at: datetime
    thread_id: UUID | None = None


class SendMessage(Command[MessageReceipt]):
    """A message in a thread the sender takes part in (`thread_id`). Without one, a new thread:
    a professional's with the holder (as StartThread), the holder's of their own, read by no one
    else until they write to someone (StartThread names the professionals)."""

    QUEUE = MESSAGING
    LARGE = True
    REQUEST_ID = "required"

    ins: Ins
    subject: Text
    body: MessageBody
    thread_id: UUID | None = None
    attachments: list[NewAttachment] = Field(default_factory=list, max_length=10)


class StartThread(Command[MessageReceipt]):
    """MSG_01: a new thread and its first message. The holder (or representative) names the
    professionals they write to; a professional writes to the holder, and names no one else."""

    QUEUE = MESSAGING
    LARGE = True
    REQUEST_ID = "required"

    ins: Ins
    subject: Text
    body: MessageBody
    professionals: list[ProfessionalId] = Field(default_factory=list, max_length=20)
    # MSG_01: establishments, read and answered by their staff of the moment.
    establishments: list[Finess] = Field(default_factory=list, max_length=5)
    attachments: list[NewAttachment] = Field(default_factory=list, max_length=10)


class AttachmentInfo(Contract):
    attachment_id: UUID
    media_type: str
    size: int
    sha256: str
    filename: str | None


class Message(Contract):
    message_id: UUID
    sender_kind: str
    sender_id: str
    sender_name: str
    subject: str | None  # None only for demo data written before messages were sealed
    body: str | None
    sent_at: datetime
    origin: str
    document_id: UUID | None
    thread_id: UUID | None = None
    attachments: list[AttachmentInfo] = Field(default_factory=list)


class MessagePage(Contract):
    messages: list[Message]
    next_cursor: Cursor | None


class ListMessages(Command[MessagePage]):
    """The holder's box: every message of the threads the holder takes part in, newest first,
    one page: at most `page_size` messages, fewer when the reply would grow too big;
    `next_cursor` in the reply asks for the rest."""

    QUEUE = MESSAGING

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=50, ge=1, le=200)


class Participant(Contract):
    kind: Literal["holder", "professional", "establishment"]
    # The INS for the holder's side, the professional's identifier, the establishment's FINESS.
    id: str


class Thread(Contract):
    thread_id: UUID
    ins: str  # whose space the thread is about
    # `conversation`: people write in it; `notices`: the deposits told to one reader (MSG_02)
    kind: Literal["conversation", "notices"]
    subject: str | None  # its first message's
    participants: list[Participant]
    started_at: datetime
    last_message_at: datetime


class ThreadPage(Contract):
    threads: list[Thread]
    next_cursor: Cursor | None


class ListThreads(Command[ThreadPage]):
    """MSG_03: the threads the caller takes part in, latest activity first, one page. The
    holder's side names its space (`ins`); a professional may (all their threads otherwise)."""

    QUEUE = MESSAGING

    ins: Ins | None = None
    cursor: Cursor | None = None
    page_size: int = Field(default=20, ge=1, le=100)


class ThreadMessages(Contract):
    thread: Thread
    messages: list[Message]
    next_cursor: Cursor | None


class ReadThread(Command[ThreadMessages]):
    """MSG_03: a thread's messages, newest first, for its participants only; pages as
    ListMessages."""

    QUEUE = MESSAGING

    ins: Ins
    thread_id: UUID
    cursor: Cursor | None = None
    page_size: int = Field(default=50, ge=1, le=200)


class Attachment(Contract):
    attachment_id: UUID
    message_id: UUID
    thread_id: UUID
    media_type: str
    size: int
    sha256: str
    filename: str | None
    content_b64: str


class GetAttachment(Command[Attachment]):
    """MSG_03: a message's attachment, with its bytes, for the thread's participants only."""

    QUEUE = MESSAGING

    ins: Ins
    attachment_id: UUID


# --- notifier.commands ----------------------------------------------------------------------


class Alert(Contract):
    alert_id: UUID
    kind: str
    text: str
    created_at: datetime  # the instant, in UTC
    read_at: datetime | None
    # NTF_04: in_space (the inbox only), pending, sent, no_address (the inbox only), failed;
    # in_digest: one of a burst, told by the burst's digest mail or SMS (docs/notifier.md).
    delivery: str = "in_space"
    # The holder's zone the text tells times in, and `created_at` in it as the text says times
    # ("le 5 mars 2025 à 14:05 (Europe/Paris)"), so an app shows what the mail showed.
    time_zone: str = DEFAULT_TIME_ZONE
    local_time: str | None = None


class Alerts(Contract):
    alerts: list[Alert]
    next_cursor: Cursor | None = None


class ListAlerts(Command[Alerts]):
    """The holder's inbox (or their representative's reading of it), newest first, a page at a
    time; access decides who may read it (as the access history)."""

    QUEUE = NOTIFIER

    ins: Ins
    cursor: Cursor | None = None
    page_size: int = Field(default=50, ge=1, le=200)
    unread_only: bool = False


class AlertsRead(Contract):
    ins: Ins
    marked: int


class MarkAlertsRead(Command[AlertsRead]):
    QUEUE = NOTIFIER

    ins: Ins
    alert_ids: list[UUID] = Field(min_length=1, max_length=200)


# --- retention.commands ---------------------------------------------------------------------


class Deadline(Contract):
    deadline_id: UUID
    ins: Ins
    kind: str
    status: str
    starts_at: datetime
    due_at: datetime
    created_at: datetime
    fired_at: datetime | None
    cancelled_at: datetime | None
    cause_event_id: UUID
    subject: str | None = None  # what the deadline is about besides the space (a proxy's id)


class Deadlines(Contract):
    deadlines: list[Deadline]


class ListDeadlines(Command[Deadlines]):
    """A space's deadlines, for the operator or the holder: when it opens, when it is purged
    (RET_01, RET_02), when a proxy ends."""

    QUEUE = RETENTION

    ins: Ins


class PurgeAnswer(Contract):
    service: str
    rows: dict[str, int]  # rows deleted, by table
    skipped: str | None  # why nothing was deleted (the INS names a newer space)
    purged_at: datetime
    received_at: datetime


class PurgeProof(Contract):
    """RET_01: the proof of a holder's purge. No personal data: the INS as a keyed hash."""

    purge_id: UUID
    ins_key: str
    closed_at: datetime
    requested_at: datetime
    requests: int  # how many times it was asked (retries of the unanswered services)
    completed_at: datetime | None
    waiting_for: list[str]
    answers: list[PurgeAnswer]


class PurgeProofs(Contract):
    proofs: list[PurgeProof]


class GetPurgeProof(Command[PurgeProofs]):
    """Operator's view of the proofs of deletion: of one purge, or of an INS (newest first)."""

    QUEUE = RETENTION

    purge_id: UUID | None = None
    ins: Ins | None = None

    @model_validator(mode="after")
    def _names_one(self) -> GetPurgeProof:
        if (self.purge_id is None) == (self.ins is None):
            raise ValueError("name either a purge_id or an ins")
        return self
