"""Who may access what: the one place the decision is taken (ACC_*), as pure functions.

`decide` gets everything it needs as values (the verified actor, the space's status, the holder's
authorizations and blocks) and returns the decision with the rule that took it (ACC_18), so every
rule can be tested without I/O and every decision can be investigated afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from libs.contracts.vocabulary import DOCUMENT_TYPES
from libs.tokens import Claims

Action = Literal["read", "deposit", "message", "read_history"]
ALL = "*"

# ACC_07: which document types each profession sees (and may deposit). "*" is every type.
# Administrative staff deposit into the administrative part but never consult (DOC_10).
MATRIX: dict[str, frozenset[str]] = {
    "physician": frozenset({ALL}),
    "regulating_physician": frozenset({ALL}),
    "midwife": frozenset({ALL}),
    "pharmacist": frozenset(
        {
            "prescription",
            "pharmacy_dispensation",
            "vaccination",
            "medical_summary",
            "lab_report",
            "care_history",
            "identity",
        }
    ),
    "nurse": frozenset(
        {
            "prescription",
            "vaccination",
            "medical_summary",
            "discharge_letter",
            "liaison_letter",
            "lab_report",
            "act_report",
            "care_history",
            "identity",
        }
    ),
    "dentist": frozenset(
        {"prescription", "medical_summary", "imaging_report", "act_report", "identity"}
    ),
    "physiotherapist": frozenset(
        {"prescription", "medical_summary", "imaging_report", "act_report", "identity"}
    ),
    "occupational_physician": frozenset({"occupational_health", "vaccination", "identity"}),
    "social_worker": frozenset({"identity", "liaison_letter"}),
}
DEPOSIT_ONLY: dict[str, frozenset[str]] = {"administrative_staff": frozenset({"administrative"})}


@dataclass(frozen=True)
class Authorization:
    """The holder's consent to one professional (ACC_05), permanent or until a date (ACC_14)."""

    until: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class Proxy:
    """Someone who acts for a holder with their own credential, as identity appointed them:
    a representative (SPC_04, SPC_05) or, after death, a requester (ACC_13)."""

    ins: str
    kind: str | None  # None: only its end was heard
    role: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    ended_at: datetime | None

    def acts_for(self, ins: str, kind: str, now: datetime) -> bool:
        return (
            self.ins == ins
            and self.kind == kind
            and self.ended_at is None
            and self.starts_at is not None
            and self.starts_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )


@dataclass(frozen=True)
class HolderSettings:
    """What the holder decided about their space, as access knows it."""

    space_status: Literal["unknown", "announced", "open", "closed"]
    authorization: Authorization | None = None
    blocked: bool = False
    treating_physician: bool = False
    proxy: Proxy | None = None  # the acting proxy's appointment, for a proxy's token
    deceased: bool = False


@dataclass(frozen=True)
class Decision:
    granted: bool
    rule: str
    reason: str
    document_types: list[str] = field(default_factory=list)
    include_masked: bool = False


def granted(rule: str, reason: str, types: frozenset[str], masked: bool = False) -> Decision:
    return Decision(True, rule, reason, sorted(types), masked)


def denied(rule: str, reason: str) -> Decision:
    return Decision(False, rule, reason)


def decide(
    actor: Claims,
    ins: str,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    now: datetime,
) -> Decision:
    if document_type is not None and document_type not in DOCUMENT_TYPES:
        return denied("DOC_01", f"unknown document type {document_type!r}")
    if actor.kind == "operator":
        # The health insurance runs the space but never reads a dossier (ACC_10, DOC_08).
        return denied("ACC_10", "the operator cannot access the content of a dossier")
    if holder.space_status == "unknown":
        return denied("SPC_01", "there is no space for this INS")
    if actor.kind == "requester":
        return _requester(actor, ins, action, holder, now)
    if holder.space_status == "closed":
        return denied("ACC_17", "the space is closed: no access to anyone")
    if holder.space_status != "open":
        return denied("SPC_01", "the space is not open yet")
    if actor.kind == "holder":
        return _holder(actor, ins, action, document_type)
    if actor.kind == "representative":
        return _representative(actor, ins, action, document_type, holder, now)
    return _professional(actor, action, document_type, holder, now)


def _representative(
    actor: Claims,
    ins: str,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    now: datetime,
) -> Decision:
    """SPC_04 / SPC_05: the representative, with their own credential, does what the holder
    does, while the appointment lasts."""
    proxy = holder.proxy
    rule = "SPC_05" if proxy and proxy.role == "protection_representative" else "SPC_04"
    if proxy is None or not proxy.acts_for(ins, "representative", now):
        return denied(rule, "this person does not represent the holder (or no longer does)")
    decision = _holder(actor.model_copy(update={"sub": ins}), ins, action, document_type)
    return replace(decision, reason=f"{decision.reason}, through their representative ({rule})")


def _requester(
    actor: Claims, ins: str, action: Action, holder: HolderSettings, now: datetime
) -> Decision:
    """ACC_13: after the holder's death, a requester the operator validated reads the dossier
    (the space is closed at death: this is the one access a closed space still gives besides
    its holder's reactivation request). Never a deposit, never the masked documents."""
    proxy = holder.proxy
    if not holder.deceased:
        return denied("ACC_13", "access on request is only after the holder's death")
    if proxy is None or not proxy.acts_for(ins, "requester", now):
        return denied("ACC_13", "no validated access request for this person")
    if action != "read":
        return denied("ACC_13", "a requester after death only reads the dossier")
    return granted("ACC_13", "access after death, validated by the operator", frozenset({ALL}))


def _holder(actor: Claims, ins: str, action: Action, document_type: str | None) -> Decision:
    if actor.sub != ins:
        return denied("ACC_01", "a holder accesses only their own space")
    if action == "deposit":
        if document_type != "holder_document":
            return denied("DOC_05", "the holder adds their own documents, not professional ones")
        return granted("DOC_05", "the holder adds a document", frozenset({"holder_document"}))
    # ACC_01: everything, masked documents included (they are masked from professionals, not
    # from the holder); provisionally inaccessible ones are filtered by the dossier (DOC_07).
    return granted("ACC_01", "the holder accesses their own space", frozenset({ALL}), True)


def _professional(
    actor: Claims,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    now: datetime,
) -> Decision:
    profession = actor.profession or ""
    if action == "read_history":
        return denied("ACC_03", "only the holder reads the access history")
    if profession in DEPOSIT_ONLY:
        allowed = DEPOSIT_ONLY[profession]
        if action == "deposit" and document_type in allowed:
            if holder.blocked:
                return denied("ACC_08", "the holder has blocked this professional")
            return granted("DOC_10", "administrative deposit", allowed)
        return denied("DOC_10", "administrative staff may deposit but never consult the dossier")
    if profession not in MATRIX:
        return denied("ACC_10", f"the profession {profession!r} has no access to dossiers")
    if holder.treating_physician:
        # ACC_04: everything, masked documents included; can never be blocked.
        return granted("ACC_04", "the treating physician", frozenset({ALL}), True)
    if holder.blocked:
        return denied("ACC_08", "the holder has blocked this professional")
    authorization = holder.authorization
    if authorization is None:
        return denied("ACC_05", "the holder has not authorized this professional")
    if not authorization.active(now):
        return denied("ACC_14", "the holder's time-limited authorization has ended")
    scope = MATRIX[profession]
    if action == "deposit" and document_type is not None and not in_scope(document_type, scope):
        return denied("ACC_07", f"a {profession} does not deposit {document_type} documents")
    return granted("ACC_05", "authorized by the holder", scope)


def in_scope(document_type: str, scope: frozenset[str] | list[str]) -> bool:
    return ALL in scope or document_type in scope


def alerted(actor_kind: str, actor_sub: str, ins: str) -> bool:
    """NTF_01: every access by someone other than the holder is for the holder to be told of."""
    return not (actor_kind == "holder" and actor_sub == ins)
