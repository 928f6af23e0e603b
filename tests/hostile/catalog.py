"""What the hostile suite attacks: every command queue and command, every event consumer queue.

Written out here so that test ids name each target; `registered()` reads the same facts from
`services/*/handlers.py` (each service's `register`, run against a recorder) and a test fails
when the two differ, so a command or a consumer added later cannot escape the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from libs.contracts import commands as cmd
from libs.contracts import events as ev
from libs.contracts.envelope import Contract, Event, all_events
from libs.contracts.rpc import large_lane
from libs.tokens import new_keypair
from scripts import asyncapi

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")

TokenKind = Literal["holder", "professional", "operator"]

# Identifiers of people that exist nowhere: requests about them are refused or find nothing.
HOLDER_INS = "185057512345678"
RPPS = "10123456789"
OPERATOR = "cnam-agent-1"
PROXY = "9b2f6c1e-0a4d-4c8e-9f31-5d7e2a6b4c10"
FINESS = "750712184"
_, CARD_PUBLIC_KEY = new_keypair()


@dataclass(frozen=True)
class Target:
    """One command of one queue: its contract, who sends it, and a payload it accepts."""

    queue: str
    command: str
    model: type[Contract]
    template: dict[str, Any]
    # The kind of token a legitimate caller sends; None: the command takes no token.
    token: TokenKind | None
    # Internal queues are reached through dmp.internal by a service, not by a client.
    caller: str = "practice-software"
    internal: bool = False

    @property
    def id(self) -> str:
        return f"{self.queue}:{self.command}"


_HOLDER = {"ins": HOLDER_INS}
_PRO = {"ins": HOLDER_INS, "rpps": RPPS}
_ESTAB = {"ins": HOLDER_INS, "finess": FINESS}

TARGETS: tuple[Target, ...] = (
    Target(
        "identity.commands",
        "RegisterHolder",
        cmd.RegisterHolder,
        {
            "nir": "185057512345678",
            "first_name": "Sophie",
            "last_name": "Durand",
            "birth_date": "1985-05-01",
            "email": "sophie@example.org",
            "phone": "06 12 34 56 78",
        },
        "operator",
    ),
    Target("identity.commands", "ObjectToSpace", cmd.ObjectToSpace, _HOLDER, "holder"),
    Target(
        "identity.commands",
        "RegisterProfessional",
        cmd.RegisterProfessional,
        {
            "rpps": RPPS,
            "first_name": "Claire",
            "last_name": "Martin",
            "profession": "physician",
            "card_public_key": CARD_PUBLIC_KEY,
        },
        "operator",
    ),
    Target(
        "identity.commands",
        "RequestChallenge",
        cmd.RequestChallenge,
        {"kind": "professional", "subject": RPPS},
        None,
    ),
    Target(
        "identity.commands",
        "SignInWithCard",
        cmd.SignInWithCard,
        {"kind": "professional", "subject": RPPS, "challenge": "Y2hhbGxlbmdl", "signature": "c2ln"},
        None,
    ),
    Target("identity.commands", "RequestHolderCode", cmd.RequestHolderCode, _HOLDER, None),
    Target("identity.commands", "GetSigningKeys", cmd.GetSigningKeys, {}, None),
    Target(
        "identity.commands",
        "SignInHolder",
        cmd.SignInHolder,
        {"ins": HOLDER_INS, "code": "123456"},
        None,
    ),
    Target("identity.commands", "CloseSpace", cmd.CloseSpace, _HOLDER, "holder"),
    Target(
        "identity.commands", "RequestSpaceDeletion", cmd.RequestSpaceDeletion, _HOLDER, "holder"
    ),
    Target("identity.commands", "ReactivateSpace", cmd.ReactivateSpace, _HOLDER, "holder"),
    Target(
        "identity.commands",
        "ActivateSpace",
        cmd.ActivateSpace,
        {"ins": HOLDER_INS, "activation_code": "ABCDE-FGHJK"},
        None,
    ),
    Target(
        "identity.commands", "IssueActivationCode", cmd.IssueActivationCode, _HOLDER, "operator"
    ),
    Target(
        "identity.commands",
        "AppointRepresentative",
        cmd.AppointRepresentative,
        {
            "ins": HOLDER_INS,
            "role": "protection_representative",
            "first_name": "Paul",
            "last_name": "Durand",
            "email": "paul@example.org",
            "measure_reference": "RG 24/01234",
        },
        "operator",
    ),
    Target(
        "identity.commands",
        "EndRepresentation",
        cmd.EndRepresentation,
        {"proxy_id": PROXY},
        "operator",
    ),
    Target("identity.commands", "ListProxies", cmd.ListProxies, _HOLDER, "holder"),
    Target(
        "identity.commands", "RequestProxyCode", cmd.RequestProxyCode, {"proxy_id": PROXY}, None
    ),
    Target(
        "identity.commands",
        "SignInProxy",
        cmd.SignInProxy,
        {"proxy_id": PROXY, "code": "123456"},
        None,
    ),
    Target(
        "identity.commands",
        "RemindIdentifier",
        cmd.RemindIdentifier,
        {"email": "nobody@example.org"},
        None,
    ),
    Target(
        "identity.commands",
        "RecordDeath",
        cmd.RecordDeath,
        {"ins": HOLDER_INS, "died_on": "2026-01-02"},
        "operator",
    ),
    Target(
        "identity.commands",
        "FileAccessRequest",
        cmd.FileAccessRequest,
        {
            "ins": HOLDER_INS,
            "relation": "heir",
            "first_name": "Anne",
            "last_name": "Durand",
            "email": "anne@example.org",
            "reason": "Connaître la cause du décès",
        },
        None,
    ),
    Target("identity.commands", "ListAccessRequests", cmd.ListAccessRequests, {}, "operator"),
    Target(
        "identity.commands",
        "DecideAccessRequest",
        cmd.DecideAccessRequest,
        {"request_id": PROXY, "validate_request": True},
        "operator",
    ),
    Target(
        "identity.commands",
        "SetContactPreferences",
        cmd.SetContactPreferences,
        {
            "ins": HOLDER_INS,
            "email": "sophie@example.org",
            "code_channel": "email",
            "time_zone": "America/Guadeloupe",
        },
        "holder",
    ),
    Target(
        "identity.commands",
        "SetPersonalContacts",
        cmd.SetPersonalContacts,
        {"ins": HOLDER_INS, "trusted_person": {"first_name": "Marc", "last_name": "Durand"}},
        "holder",
    ),
    Target("identity.commands", "GetPersonalContacts", cmd.GetPersonalContacts, _HOLDER, "holder"),
    Target(
        "identity.commands",
        "DeclareTreatingPhysician",
        cmd.DeclareTreatingPhysician,
        _PRO,
        "holder",
    ),
    Target(
        "identity.commands",
        "AcceptTreatingPhysician",
        cmd.AcceptTreatingPhysician,
        _HOLDER,
        "professional",
    ),
    Target(
        "identity.commands",
        "RegisterEstablishment",
        cmd.RegisterEstablishment,
        {"finess": FINESS, "name": "Hôpital", "category": "hospital"},
        "operator",
    ),
    Target(
        "identity.commands",
        "AddEstablishmentStaff",
        cmd.AddEstablishmentStaff,
        {"finess": FINESS, "rpps": RPPS},
        "operator",
    ),
    Target(
        "identity.commands",
        "RemoveEstablishmentStaff",
        cmd.RemoveEstablishmentStaff,
        {"finess": FINESS, "rpps": RPPS},
        "operator",
    ),
    Target(
        "identity.commands",
        "DeclareCareTeam",
        cmd.DeclareCareTeam,
        {
            "finess": FINESS,
            "ins": HOLDER_INS,
            "starts_at": "2026-11-23T10:00:00Z",
            "members": [RPPS],
        },
        "professional",
    ),
    Target("identity.commands", "EndCareTeam", cmd.EndCareTeam, {"episode_id": PROXY}, "operator"),
    Target(
        "identity.commands",
        "ReferenceCatalogueService",
        cmd.ReferenceCatalogueService,
        {
            "service_id": "carnet-app",
            "name": "Carnet",
            "categories": ["vaccinations"],
            "public_key": CARD_PUBLIC_KEY,
        },
        "operator",
    ),
    Target(
        "identity.commands",
        "DereferenceCatalogueService",
        cmd.DereferenceCatalogueService,
        {"service_id": "carnet-app"},
        "operator",
    ),
    Target(
        "identity.contacts",
        "GetAlertContact",
        cmd.GetAlertContact,
        _HOLDER,
        None,
        caller="notifier",
        internal=True,
    ),
    Target(
        "identity.contacts",
        "GetAlertContacts",
        cmd.GetAlertContacts,
        {"ins": [HOLDER_INS]},
        None,
        caller="notifier",
        internal=True,
    ),
    Target(
        "access.decide",
        "Decide",
        cmd.Decide,
        {"ins": HOLDER_INS, "action": "read"},
        "professional",
        caller="dossier",
        internal=True,
    ),
    Target(
        "access.commands",
        "AuthorizeProfessional",
        cmd.AuthorizeProfessional,
        _PRO,
        "holder",
    ),
    Target("access.commands", "RevokeAuthorization", cmd.RevokeAuthorization, _PRO, "holder"),
    Target("access.commands", "BlockProfessional", cmd.BlockProfessional, _PRO, "holder"),
    Target("access.commands", "UnblockProfessional", cmd.RevokeAuthorization, _PRO, "holder"),
    Target(
        "access.commands",
        "CollectConsent",
        cmd.CollectConsent,
        {**_PRO, "reason_code": "referral", "reason": "avis cardiologique"},
        "professional",
    ),
    Target(
        "access.commands", "AuthorizeEstablishment", cmd.AuthorizeEstablishment, _ESTAB, "holder"
    ),
    Target(
        "access.commands",
        "RevokeEstablishmentAuthorization",
        cmd.RevokeEstablishmentAuthorization,
        _ESTAB,
        "holder",
    ),
    Target("access.commands", "BlockEstablishment", cmd.BlockEstablishment, _ESTAB, "holder"),
    Target("access.commands", "UnblockEstablishment", cmd.UnblockEstablishment, _ESTAB, "holder"),
    Target(
        "access.commands",
        "SetAppAccess",
        cmd.SetAppAccess,
        {**_HOLDER, "service_id": "app-carnet", "categories": ["vaccinations"]},
        "holder",
    ),
    Target(
        "access.commands",
        "SetEmergencyObjection",
        cmd.SetEmergencyObjection,
        {**_HOLDER, "objected": True},
        "holder",
    ),
    Target(
        "access.commands",
        "DelegateToTreatingPhysician",
        cmd.DelegateToTreatingPhysician,
        {**_HOLDER, "delegated": True},
        "holder",
    ),
    Target("access.commands", "ListPermissions", cmd.ListPermissions, _HOLDER, "holder"),
    Target("access.commands", "ListAccessHistory", cmd.ListAccessHistory, _HOLDER, "holder"),
    Target("dossier.commands", "CopyDossier", cmd.CopyDossier, _HOLDER, "holder"),
    Target(
        "dossier.commands",
        "BeginDocumentUpload",
        cmd.BeginDocumentUpload,
        {
            **_HOLDER,
            "document_type": "imaging_report",
            "title": "IRM",
            "size": 20_000_000,
            "sha256": "ab" * 32,
        },
        "professional",
    ),
    Target(
        "dossier.commands",
        "UploadDocumentPart",
        cmd.UploadDocumentPart,
        {"upload_id": PROXY, "index": 0, "content_b64": "aGVsbG8="},
        "professional",
    ),
    Target(
        "dossier.commands",
        "CompleteDocumentUpload",
        cmd.CompleteDocumentUpload,
        {"upload_id": PROXY},
        "professional",
    ),
    Target(
        "dossier.commands",
        "GetDocumentPart",
        cmd.GetDocumentPart,
        {**_HOLDER, "document_id": PROXY, "index": 0},
        "professional",
    ),
    Target(
        "dossier.commands",
        "RequestDocumentDeletion",
        cmd.RequestDocumentDeletion,
        {**_HOLDER, "document_id": PROXY},
        "holder",
    ),
    Target(
        "dossier.commands", "ListDeletionRequests", cmd.ListDeletionRequests, {}, "professional"
    ),
    Target(
        "dossier.commands",
        "DecideDocumentDeletion",
        cmd.DecideDocumentDeletion,
        {**_HOLDER, "document_id": PROXY, "accept": True},
        "professional",
    ),
    Target(
        "dossier.commands",
        "RecordAnnouncementConsultation",
        cmd.RecordAnnouncementConsultation,
        {**_HOLDER, "document_id": PROXY},
        "professional",
    ),
    Target(
        "dossier.commands",
        "GetDocument",
        cmd.GetDocument,
        {**_HOLDER, "document_id": PROXY},
        "professional",
    ),
    Target(
        "dossier.commands",
        "MaskDocument",
        cmd.MaskDocument,
        {**_HOLDER, "document_id": PROXY},
        "holder",
    ),
    Target(
        "dossier.commands",
        "DepositDocument",
        cmd.DepositDocument,
        {
            "ins": HOLDER_INS,
            "document_type": "lab_report",
            "title": "Bilan sanguin",
            "content_b64": "aGVsbG8=",
            "media_type": "application/pdf",
        },
        "professional",
    ),
    Target("dossier.commands", "ReadDossier", cmd.ReadDossier, _HOLDER, "professional"),
    Target(
        "dossier.commands",
        "ImportLegacyRecord",
        cmd.ImportLegacyRecord,
        {
            "ins": HOLDER_INS,
            "export_id": "EXP-1",
            "exported_at": "2021-06-30T00:00:00Z",
            "documents": [
                {
                    "legacy_id": "DMP-1",
                    "document_type": "vaccination",
                    "title": "Vaccin",
                    "media_type": "application/pdf",
                    "content_b64": "aGVsbG8=",
                    "authored_at": "2019-03-04T10:00:00Z",
                }
            ],
        },
        "operator",
    ),
    Target(
        "messaging.commands",
        "SendMessage",
        cmd.SendMessage,
        {"ins": HOLDER_INS, "subject": "Résultats", "body": "Bonjour,\nà bientôt."},
        "professional",
    ),
    Target("messaging.commands", "ListMessages", cmd.ListMessages, _HOLDER, "holder"),
    Target(
        "messaging.commands",
        "StartThread",
        cmd.StartThread,
        {
            "ins": HOLDER_INS,
            "subject": "Ordonnance",
            "body": "Bonjour,\nà renouveler.",
            "professionals": [RPPS],
            "attachments": [
                {
                    "media_type": "text/plain",
                    "content_b64": "Ym9uam91cg==",
                    "sha256": "2c1b1e2d2a1d5c1e8e5b1e9f3a2c4c7d6f5e3b2a1c0d9e8f7a6b5c4d3e2f1a0b",
                    "filename": "note.txt",
                }
            ],
        },
        "holder",
    ),
    Target("messaging.commands", "ListThreads", cmd.ListThreads, _HOLDER, "holder"),
    Target(
        "messaging.commands",
        "ReadThread",
        cmd.ReadThread,
        {**_HOLDER, "thread_id": PROXY},
        "professional",
    ),
    Target(
        "messaging.commands",
        "GetAttachment",
        cmd.GetAttachment,
        {**_HOLDER, "attachment_id": PROXY},
        "professional",
    ),
    Target("notifier.commands", "ListAlerts", cmd.ListAlerts, _HOLDER, "holder"),
    Target(
        "notifier.commands",
        "MarkAlertsRead",
        cmd.MarkAlertsRead,
        {**_HOLDER, "alert_ids": [PROXY]},
        "holder",
    ),
    Target("retention.commands", "ListDeadlines", cmd.ListDeadlines, _HOLDER, "operator"),
    Target("retention.commands", "GetPurgeProof", cmd.GetPurgeProof, _HOLDER, "operator"),
)

COMMAND_QUEUES: dict[str, Target] = {}
for _target in TARGETS:
    COMMAND_QUEUES.setdefault(_target.queue, _target)

# Every queue that consumes events, and the event classes it handles.
EVENT_QUEUES: dict[str, tuple[type[Event], ...]] = {
    "identity.space-lifecycle": (ev.SpaceOpeningDue, ev.ProxyEndDue),
    "access.space-lifecycle": (
        ev.SpaceOpened,
        ev.SpaceReactivated,
        ev.SpaceClosed,
        ev.AuthorizationEndDue,
    ),
    "access.people": (
        ev.ProxyAppointed,
        ev.ProxyEnded,
        ev.HolderDeceased,
        ev.TreatingPhysicianDeclared,
        ev.TreatingPhysicianChanged,
        ev.StaffJoined,
        ev.StaffLeft,
        ev.CareTeamDeclared,
        ev.CareTeamEnded,
        ev.CatalogueServiceReferenced,
        ev.CatalogueServiceDereferenced,
    ),
    "dossier.space-lifecycle": (
        ev.SpaceOpened,
        ev.SpaceReactivated,
        ev.SpaceClosed,
        ev.SpaceActivated,
        ev.HeldBackReleaseDue,
        ev.OccupationalPartDue,
    ),
    "messaging.space-lifecycle": (ev.SpaceOpened, ev.SpaceReactivated, ev.SpaceClosed),
    "messaging.deposits": (ev.DocumentDeposited, ev.DocumentDepositedV1),
    "messaging.people": (
        ev.TreatingPhysicianDeclared,
        ev.TreatingPhysicianChanged,
        ev.StaffJoined,
        ev.StaffLeft,
    ),
    "notifier.access-alerts": (ev.AccessLogged,),
    "notifier.space-lifecycle": (
        ev.ContactChanged,
        ev.ContactChangedV1,
        ev.SpaceOpened,
        ev.SpaceClosed,
        ev.SpaceReactivated,
        ev.HolderCameOfAge,
        ev.HeldBackNoticeDue,
    ),
    "notifier.messages": (ev.MessageSent, ev.MessageSentV1),
    "retention.space-lifecycle": (
        ev.SpaceAnnounced,
        ev.SpaceOpened,
        ev.SpaceClosed,
        ev.SpaceDeletionRequested,
        ev.HolderDeceased,
        ev.AuthorizationGiven,
        ev.AuthorizationWithdrawn,
        ev.SpaceReactivated,
        ev.ProxyAppointed,
        ev.ProxyEnded,
    ),
    "retention.documents": (
        ev.DocumentHeldBack,
        ev.DocumentReleased,
        ev.DocumentDeposited,
        ev.DocumentDepositedV1,
    ),
    # RET_01: the purge, asked of every service holding a holder's data, answered by each.
    **{f"{service}.purges": (ev.HolderPurgeRequested,) for service in ev.PURGE_ANSWERS},
    "retention.purges": tuple(ev.PURGE_ANSWERS.values()),
}


def consumers_of(event: type[Event]) -> list[str]:
    """The queues bound to the event's routing key."""
    return sorted(q for q, handled in EVENT_QUEUES.items() if event in handled)


def owner_of(queue: str) -> str:
    return queue.split(".", 1)[0]


def every_queue() -> list[str]:
    """Every queue the running system has: commands and their large lanes, consumers, their
    dead letters, ops."""
    lanes = {large_lane(c.QUEUE) for c in asyncapi.registered()[0] if c.LARGE}
    queues = sorted({*COMMAND_QUEUES, *lanes, *EVENT_QUEUES})
    return [*queues, *(f"{q}.dlq" for q in queues), "ops.unrouted"]


def system_events() -> list[type[Event]]:
    """Every event of the system (not the test services' own, which may be registered too)."""
    return [e for e in all_events() if e.__module__ == ev.__name__]


def event_ids() -> list[str]:
    return [f"{e.TYPE}.v{e.VERSION}" for e in system_events()]


# --- what the services really register --------------------------------------------------------


def registered() -> tuple[dict[str, set[str]], dict[str, set[type[Event]]]]:
    """(commands by queue, event classes by queue) as `services/*/handlers.py` register them
    (read as the AsyncAPI document reads them)."""
    served, consumed = asyncapi.registered()
    commands: dict[str, set[str]] = {}
    for contract in served:
        commands.setdefault(contract.QUEUE, set()).add(contract.NAME)
    return commands, {queue: set(events) for queue, events in consumed.items()}
