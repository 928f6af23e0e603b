"""Who may access what: the one place the decision is taken (ACC_*), as pure functions.

`decide` gets everything it needs as values (the verified actor, the space's status, the holder's
authorizations and blocks) and returns the decision with the rule that took it (ACC_18), so every
rule can be tested without I/O and every decision can be investigated afterwards.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from libs.contracts.vocabulary import (
    DATA_CATEGORY_TYPES,
    DOCUMENT_TYPES,
    PROFESSIONS,
    DataCategory,
    Specialty,
)
from libs.tokens import Claims

Action = Literal["read", "deposit", "message", "read_history", "copy", "mask", "request_deletion"]
# What only the holder (or their representative) does to the dossier, and the rule of each.
HOLDERS_ACTIONS: Final = {
    "copy": ("DOC_09", "the holder's copy of their dossier"),
    "mask": ("DOC_06", "the holder masks or unmasks a document"),
    "request_deletion": ("DOC_05", "the holder asks for a document's deletion"),
}
ALL = "*"
REQUESTER_ROLES: Final = ("heir", "unmarried_partner", "civil_union_partner", "court_expert")
MATRIX_FILE = Path(__file__).with_name("matrix.toml")

# ACC_11: access only with the holder's express consent, given after information.
EXPRESS_CONSENT: Final = frozenset({"occupational_physician", "fire_brigade_physician"})
# ACC_12: social and medico-social professionals, with the consent of the person or their
# legal representative (the rule named in their decisions).
SOCIAL: Final = frozenset({"social_worker", "medico_social_worker"})
# ACC_09: who may break the glass in a life-threatening situation (the regulating physician
# reads in an emergency without breaking anything).
EMERGENCY_CARERS: Final = frozenset({"physician", "midwife", "nurse"})
EMERGENCY_WINDOW: Final = timedelta(hours=24)
CARE_HISTORY: Final = "care_history"
CARE: Final = frozenset({CARE_HISTORY})


class MatrixError(ValueError):
    """The matrix file is not one access can decide with: access does not start."""


@dataclass(frozen=True)
class Row:
    read: frozenset[str]
    deposit: frozenset[str]


@dataclass(frozen=True)
class Matrix:
    """ACC_07 as data (`matrix.toml`): profession or specialty × document type, versioned."""

    version: str
    professions: Mapping[str, Row]
    specialties: Mapping[str, Row]
    requesters: Mapping[str, Row]

    def row(self, profession: str | None, specialty: str | None) -> Row | None:
        if profession == "physician" and specialty is not None and specialty in self.specialties:
            return self.specialties[specialty]
        return self.professions.get(profession or "")


def parse_matrix(text: str) -> Matrix:
    """The matrix, checked whole: a mistake names itself instead of deciding wrongly."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"the matrix is not TOML: {exc}") from None
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise MatrixError("the matrix has no version")
    unknown = set(data) - {"version", "professions", "specialties", "requesters"}
    if unknown:
        raise MatrixError(f"unknown sections {sorted(unknown)}")

    def rows(section: str, names: Iterable[str]) -> dict[str, Row]:
        table = data.get(section, {})
        strangers = set(table) - set(names)
        if strangers:
            raise MatrixError(f"unknown {section}: {sorted(strangers)}")
        return {name: _row(f"{section}.{name}", entry) for name, entry in table.items()}

    professions = rows("professions", PROFESSIONS)
    missing = set(PROFESSIONS) - set(professions)
    if missing:
        raise MatrixError(f"professions without a row (say `read = []`): {sorted(missing)}")
    requesters = rows("requesters", REQUESTER_ROLES)
    return Matrix(
        version=version.strip(),
        professions=professions,
        specialties=rows("specialties", (s.value for s in Specialty)),
        requesters=requesters,
    )


def _row(where: str, entry: object) -> Row:
    if not isinstance(entry, dict) or set(entry) - {"read", "deposit"}:
        raise MatrixError(f"{where}: a row has `read` and optionally `deposit`")
    read = _types(where, entry.get("read"))
    deposit = _types(where, entry.get("deposit", sorted(read)))
    return Row(read, deposit)


def _types(where: str, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise MatrixError(f"{where}: a list of document types is expected")
    unknown = set(value) - set(DOCUMENT_TYPES) - {ALL}
    if unknown:
        raise MatrixError(f"{where}: unknown document types {sorted(unknown)}")
    return frozenset(value)


@functools.cache
def load_matrix(path: Path = MATRIX_FILE) -> Matrix:
    return parse_matrix(path.read_text(encoding="utf-8"))


MATRIX: Final = load_matrix()


@dataclass(frozen=True)
class Authorization:
    """The holder's consent to one professional or to their establishment (ACC_05), permanent
    or until a date (ACC_14); `express` when given expressly after information (ACC_11)."""

    until: datetime | None = None
    express: bool = False
    # ACC_05: collected by another professional (their RPPS) for this one, and the reason's
    # code; the holder's alert of each access under it says who and why.
    collected_by: str | None = None
    reason_code: str | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class AppGrant:
    """A catalogue service (ACC_15): what the catalogue references it for, and what the holder
    chose to let it see."""

    referenced: frozenset[str]
    chosen: frozenset[str]


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
    """What the holder decided about their space, and what is known of the actor's relation to
    it, as access knows them."""

    space_status: Literal["unknown", "announced", "open", "closed"]
    authorization: Authorization | None = None  # the professional's own, or their establishment's
    blocked: bool = False
    establishment_blocked: bool = False
    treating_physician: bool = False
    care_team: bool = False  # a member of a care-team episode in progress (ACC_06)
    emergency_objection: bool = False  # ACC_09
    emergency_until: datetime | None = None  # this actor's break-the-glass in progress
    proxy: Proxy | None = None  # the acting proxy's appointment, for a proxy's token
    deceased: bool = False
    app: AppGrant | None = None


@dataclass(frozen=True)
class Decision:
    granted: bool
    rule: str
    reason: str
    document_types: list[str] = field(default_factory=list)
    include_masked: bool = False
    emergency: bool = False
    include_held_back: bool = False  # DOC_07: professionals only


def granted(
    rule: str, reason: str, types: frozenset[str], masked: bool = False, emergency: bool = False
) -> Decision:
    return Decision(True, rule, reason, sorted(types), masked, emergency)


def denied(rule: str, reason: str) -> Decision:
    return Decision(False, rule, reason)


def decide(
    actor: Claims,
    ins: str,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    now: datetime,
    *,
    emergency: bool = False,
    purpose: str | None = None,
    matrix: Matrix = MATRIX,
    on_behalf_of: HolderSettings | None = None,
) -> Decision:
    """`on_behalf_of`: for a deposit on behalf of another professional (DOC_03), what is known
    of that professional's relation to the holder."""
    if document_type is not None and document_type not in DOCUMENT_TYPES:
        return denied("DOC_01", f"unknown document type {document_type!r}")
    if actor.kind == "operator" and not (action == "deposit" and document_type == CARE_HISTORY):
        # The health insurance runs the space but never reads a dossier (ACC_10, DOC_08).
        return denied("ACC_10", "the operator cannot access the content of a dossier")
    if holder.space_status == "unknown":
        return denied("SPC_01", "there is no space for this INS")
    if actor.kind == "requester":
        return _requester(ins, action, holder, now, matrix)
    if holder.space_status == "closed":
        return denied("ACC_17", "the space is closed: no access to anyone")
    if holder.space_status != "open":
        return denied("SPC_01", "the space is not open yet")
    if action in HOLDERS_ACTIONS and actor.kind not in ("holder", "representative"):
        rule, what = HOLDERS_ACTIONS[action]
        return denied(rule, f"only the holder (or their representative) may: {what}")
    if actor.kind == "operator":  # DOC_08: it feeds the care history, and nothing else
        return granted("DOC_08", "the health insurance feeds the care history", CARE)
    if actor.kind == "holder":
        return _holder(actor, ins, action, document_type)
    if actor.kind == "representative":
        return _representative(actor, ins, action, document_type, holder, now)
    if actor.kind == "app":
        return _app(action, document_type, holder)
    if on_behalf_of is not None:
        return _on_behalf(actor, action, document_type, holder, on_behalf_of, now, matrix)
    decision = _professional(actor, action, document_type, holder, now, emergency, purpose, matrix)
    # DOC_07: a held-back document waits for its announcement to the holder, not for care.
    return replace(decision, include_held_back=decision.granted)


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
    ins: str, action: Action, holder: HolderSettings, now: datetime, matrix: Matrix
) -> Decision:
    """ACC_13: after the holder's death, a requester the operator validated reads what the
    matrix gives their role (the space is closed at death: this is the one access a closed space
    still gives besides its holder's reactivation request). Never a deposit, never the masked
    documents."""
    proxy = holder.proxy
    if not holder.deceased:
        return denied("ACC_13", "access on request is only after the holder's death")
    if proxy is None or not proxy.acts_for(ins, "requester", now):
        return denied("ACC_13", "no validated access request for this person")
    if action != "read":
        return denied("ACC_13", "a requester after death only reads the dossier")
    row = matrix.requesters.get(proxy.role or "")
    if row is None or not row.read:
        return denied("ACC_13", f"the law gives a {proxy.role} nothing to read")
    return granted(
        "ACC_13", f"access after death, validated by the operator ({proxy.role})", row.read
    )


def _holder(actor: Claims, ins: str, action: Action, document_type: str | None) -> Decision:
    if actor.sub != ins:
        return denied("ACC_01", "a holder accesses only their own space")
    if action == "deposit":
        if document_type != "holder_document":
            return denied("DOC_05", "the holder adds their own documents, not professional ones")
        return granted("DOC_05", "the holder adds a document", frozenset({"holder_document"}))
    if action in HOLDERS_ACTIONS:
        rule, what = HOLDERS_ACTIONS[action]
        return granted(rule, what, frozenset({ALL}), True)
    # ACC_01: everything, masked documents included (they are masked from professionals, not
    # from the holder); provisionally inaccessible ones are filtered by the dossier (DOC_07).
    return granted("ACC_01", "the holder accesses their own space", frozenset({ALL}), True)


def _app(action: Action, document_type: str | None, holder: HolderSettings) -> Decision:
    """ACC_15: a referenced catalogue service reads the categories the holder chose, among
    those it is referenced for; never masked documents, never a deposit."""
    app = holder.app
    if app is None or not app.referenced:
        return denied("ACC_15", "this application is not referenced in the catalogue")
    if action != "read":
        return denied("ACC_15", "a catalogue service only reads what the holder chose")
    categories = app.chosen & app.referenced
    types = frozenset(t for c in categories for t in DATA_CATEGORY_TYPES[DataCategory(c)])
    if not types:
        return denied("ACC_15", "the holder has not let this application see their data")
    return granted(
        "ACC_15", "the holder let this application see " + ", ".join(sorted(categories)), types
    )


def _professional(
    actor: Claims,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    now: datetime,
    emergency: bool,
    purpose: str | None,
    matrix: Matrix,
) -> Decision:
    profession = actor.profession or ""
    if action == "read_history":
        return denied("ACC_03", "only the holder reads the access history")
    row = matrix.row(profession, actor.specialty)
    if row is None or not (row.read or row.deposit):
        return denied("ACC_10", f"the profession {profession!r} has no access to dossiers")
    if not row.read:  # deposit-only: an establishment's administrative staff (DOC_10)
        if action == "deposit" and document_type in row.deposit:
            if holder.blocked or holder.establishment_blocked:
                return denied("ACC_08", "the holder has blocked this professional")
            return granted("DOC_10", "administrative deposit", row.deposit)
        return denied("DOC_10", "administrative staff may deposit but never consult the dossier")
    if holder.treating_physician:
        # ACC_04: everything, masked documents included; can never be blocked.
        return granted("ACC_04", "the treating physician", frozenset({ALL}), True)
    if holder.blocked:
        return denied("ACC_08", "the holder has blocked this professional")
    if holder.establishment_blocked:
        return denied("ACC_08", "the holder has blocked this professional's establishment")
    if holder.care_team:
        return _within(row, action, document_type, "ACC_06", "a member of the care team")
    authorization = holder.authorization
    consented = authorization is not None and authorization.active(now)
    if consented and profession in EXPRESS_CONSENT and not authorization.express:  # type: ignore[union-attr]
        return denied("ACC_11", f"a {profession} needs the holder's express consent")
    if consented:
        return _within(row, action, document_type, _consent_rule(actor), "authorized by the holder")
    if action == "read" and (
        emergency
        or profession == "regulating_physician"
        or (holder.emergency_until is not None and now < holder.emergency_until)
    ):
        return _emergency(profession, row, holder, now, purpose)
    if authorization is not None:
        return denied("ACC_14", "the holder's time-limited authorization has ended")
    if profession in EXPRESS_CONSENT:
        return denied("ACC_11", f"a {profession} needs the holder's express consent")
    rule = "ACC_12" if profession in SOCIAL else "ACC_05"
    return denied(rule, "the holder has not authorized this professional")


def _on_behalf(
    actor: Claims,
    action: Action,
    document_type: str | None,
    holder: HolderSettings,
    author: HolderSettings,
    now: datetime,
    matrix: Matrix,
) -> Decision:
    """DOC_03: someone of the practice (a professional, a medical secretary) deposits on behalf
    of a professional who may deposit: the author's relation decides, the depositor must be a
    registered profession and not blocked themselves; only deposits."""
    if actor.kind != "professional" or matrix.row(actor.profession, actor.specialty) is None:
        return denied("ACC_10", f"the profession {actor.profession!r} has no access to dossiers")
    if action != "deposit":
        return denied("DOC_03", "only a deposit is made on another professional's behalf")
    if holder.blocked or holder.establishment_blocked:
        return denied("ACC_08", "the holder has blocked the one who deposits")
    if author.treating_physician:
        return granted("DOC_03", "on behalf of the treating physician", frozenset({ALL}))
    if author.blocked or author.establishment_blocked:
        return denied("ACC_08", "the holder has blocked the professional on whose behalf")
    consented = author.authorization is not None and author.authorization.active(now)
    if not (consented or author.care_team):
        return denied("DOC_03", "the professional on whose behalf is not authorized")
    return granted("DOC_03", "on behalf of an authorized professional", frozenset({ALL}))


def _consent_rule(actor: Claims) -> str:
    """The rule a consent decides under, by who the professional is."""
    if actor.profession in EXPRESS_CONSENT:
        return "ACC_11"
    if actor.profession in SOCIAL:
        return "ACC_12"
    return "ACC_16" if actor.country else "ACC_05"


def collected_consent(
    actor: Claims, holder: HolderSettings, decision: Decision
) -> Authorization | None:
    """ACC_05: the consent another professional collected, if this granted access rests on it
    (the holder is told who collected it and why)."""
    consent = holder.authorization
    if (
        not decision.granted
        or decision.emergency
        or consent is None
        or consent.collected_by is None
        or decision.rule != _consent_rule(actor)
    ):
        return None
    return consent


def _emergency(
    profession: str, row: Row, holder: HolderSettings, now: datetime, purpose: str | None
) -> Decision:
    """ACC_09: the regulating physician reads in an emergency, and a carer may break the glass
    with a stated reason, for 24 hours; never masked documents; never when the holder objected.
    The holder is told (the decision says it was an emergency)."""
    if holder.emergency_objection:
        return denied("ACC_09", "the holder objected to access in an emergency")
    ongoing = holder.emergency_until is not None and now < holder.emergency_until
    if profession == "regulating_physician":
        return granted(
            "ACC_09", "the regulating physician, in an emergency", row.read, emergency=True
        )
    if profession not in EMERGENCY_CARERS:
        return denied("ACC_09", f"a {profession} cannot break the glass")
    if not ongoing and not (purpose and purpose.strip()):
        return denied("ACC_09", "breaking the glass needs a stated reason")
    return granted("ACC_09", "emergency access (break-the-glass)", row.read, emergency=True)


def _within(
    row: Row, action: Action, document_type: str | None, rule: str, reason: str
) -> Decision:
    """ACC_07: within what the matrix gives the profession."""
    if (
        action == "deposit"
        and document_type is not None
        and not in_scope(document_type, row.deposit)
    ):
        return denied("ACC_07", f"this profession does not deposit {document_type} documents")
    return granted(rule, reason, row.read)


def in_scope(document_type: str, scope: frozenset[str] | list[str]) -> bool:
    return ALL in scope or document_type in scope


def alerted(actor_kind: str, actor_sub: str, ins: str) -> bool:
    """NTF_01: every access by someone other than the holder is for the holder to be told of."""
    return not (actor_kind == "holder" and actor_sub == ins)
