"""The decision table of the access service, rule by rule, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.contracts.vocabulary import PROFESSIONS, DataCategory
from libs.tokens import Claims
from services.access.chain import GENESIS, TRACE_FIELDS, link, trace_leaf, verify
from services.access.domain import (
    ALL,
    MATRIX,
    MATRIX_FILE,
    REQUESTER_ROLES,
    AppGrant,
    Authorization,
    HolderSettings,
    MatrixError,
    Proxy,
    decide,
    parse_matrix,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
INS = "185057512345678"
OPEN = HolderSettings(space_status="open")
AUTHORIZED = HolderSettings(space_status="open", authorization=Authorization())


def pro(profession: str = "physician", rpps: str = "10000000001") -> Claims:
    return Claims(
        sub=rpps,
        kind="professional",
        name="Claire Martin",
        profession=profession,
        iat=NOW,
        exp=NOW + timedelta(hours=1),
    )


def holder(ins: str = INS) -> Claims:
    return Claims(
        sub=ins, kind="holder", name="Jeanne Durand", iat=NOW, exp=NOW + timedelta(hours=1)
    )


def operator() -> Claims:
    return Claims(sub="agent", kind="operator", name="agent", iat=NOW, exp=NOW + timedelta(hours=1))


def test_holder_reads_whole_dossier_including_masked__ACC_01() -> None:
    d = decide(holder(), INS, "read", None, OPEN, NOW)
    assert (d.granted, d.rule, d.document_types, d.include_masked) == (True, "ACC_01", [ALL], True)


def test_holder_cannot_read_another_holders_dossier__ACC_01() -> None:
    d = decide(holder("299127512345617"), INS, "read", None, OPEN, NOW)
    assert (d.granted, d.rule) == (False, "ACC_01")


def test_holder_adds_own_documents_only__DOC_05() -> None:
    assert decide(holder(), INS, "deposit", "holder_document", OPEN, NOW).granted
    assert not decide(holder(), INS, "deposit", "lab_report", OPEN, NOW).granted


def test_treating_physician_sees_masked_documents_and_cannot_be_blocked__ACC_04() -> None:
    settings = HolderSettings(space_status="open", blocked=True, treating_physician=True)
    d = decide(pro(), INS, "read", None, settings, NOW)
    assert (d.granted, d.rule, d.include_masked) == (True, "ACC_04", True)


def test_professional_needs_the_holders_consent__ACC_05() -> None:
    d = decide(pro(), INS, "read", None, OPEN, NOW)
    assert (d.granted, d.rule) == (False, "ACC_05")
    d = decide(pro(), INS, "read", None, AUTHORIZED, NOW)
    assert (d.granted, d.rule, d.include_masked) == (True, "ACC_05", False)


def test_pharmacist_sees_only_the_types_of_their_profession__ACC_07() -> None:
    d = decide(pro("pharmacist"), INS, "read", None, AUTHORIZED, NOW)
    assert d.granted and "prescription" in d.document_types
    assert ALL not in d.document_types and "imaging_report" not in d.document_types
    refused = decide(pro("pharmacist"), INS, "deposit", "operative_report", AUTHORIZED, NOW)
    assert (refused.granted, refused.rule) == (False, "ACC_07")


def test_blocked_professional_can_neither_read_nor_deposit__ACC_08() -> None:
    settings = HolderSettings(space_status="open", authorization=Authorization(), blocked=True)
    for action, doc_type in (("read", None), ("deposit", "lab_report")):
        d = decide(pro(), INS, action, doc_type, settings, NOW)  # type: ignore[arg-type]
        assert (d.granted, d.rule) == (False, "ACC_08")


def test_operator_and_non_care_professions_never_access__ACC_10() -> None:
    assert decide(operator(), INS, "read", None, OPEN, NOW).rule == "ACC_10"
    d = decide(pro("insurer"), INS, "read", None, AUTHORIZED, NOW)
    assert (d.granted, d.rule) == (False, "ACC_10")


def test_administrative_staff_deposit_but_never_consult__DOC_10() -> None:
    admin = pro("administrative_staff")
    assert decide(admin, INS, "deposit", "administrative", OPEN, NOW).granted
    d = decide(admin, INS, "read", None, AUTHORIZED, NOW)
    assert (d.granted, d.rule) == (False, "DOC_10")


def test_time_limited_authorization_ends_by_itself__ACC_14() -> None:
    settings = HolderSettings(
        space_status="open", authorization=Authorization(NOW + timedelta(days=1))
    )
    assert decide(pro(), INS, "read", None, settings, NOW).granted
    d = decide(pro(), INS, "read", None, settings, NOW + timedelta(days=1, seconds=1))
    assert (d.granted, d.rule) == (False, "ACC_14")


def test_closed_space_gives_no_access_to_anyone__ACC_17() -> None:
    closed = HolderSettings(
        space_status="closed", authorization=Authorization(), treating_physician=True
    )
    for actor in (holder(), pro()):
        d = decide(actor, INS, "read", None, closed, NOW)
        assert (d.granted, d.rule) == (False, "ACC_17")


def test_every_decision_names_its_rule__ACC_18() -> None:
    cases = [
        decide(holder(), INS, "read", None, OPEN, NOW),
        decide(pro(), INS, "read", None, OPEN, NOW),
        decide(pro(), INS, "read", None, HolderSettings(space_status="unknown"), NOW),
        decide(pro(), INS, "deposit", "no-such-type", AUTHORIZED, NOW),
    ]
    for d in cases:
        assert d.rule and d.reason


# --- proxies: representatives (SPC_04, SPC_05) and requesters after death (ACC_13) -----------

PROXY_ID = "9b2f6c1e-0a4d-4c8e-9f31-5d7e2a6b4c10"


def proxy_token(kind: str = "representative") -> Claims:
    return Claims.model_validate(
        {
            "sub": PROXY_ID,
            "kind": kind,
            "name": "Paul Roux",
            "acts_for": INS,
            "iat": NOW,
            "exp": NOW + timedelta(hours=1),
        }
    )


def appointment(
    kind: str = "representative",
    role: str = "legal_representative",
    ins: str = INS,
    ends_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> Proxy:
    return Proxy(ins, kind, role, NOW - timedelta(days=1), ends_at, ended_at)


def test_a_representative_does_what_the_holder_does_while_appointed__SPC_04() -> None:
    settings = HolderSettings(space_status="open", proxy=appointment())
    d = decide(proxy_token(), INS, "read", None, settings, NOW)
    assert (d.granted, d.rule, d.include_masked) == (True, "ACC_01", True)
    assert "representative" in d.reason
    # At eighteen (the appointment's end), nothing more.
    ended = HolderSettings(space_status="open", proxy=appointment(ends_at=NOW))
    assert not decide(proxy_token(), INS, "read", None, ended, NOW).granted
    # Another holder's representative, or an end heard before the appointment: nothing.
    other = HolderSettings(space_status="open", proxy=appointment(ins="299127512345617"))
    assert decide(proxy_token(), INS, "read", None, other, NOW).rule == "SPC_04"
    unknown = HolderSettings(space_status="open", proxy=Proxy(INS, None, None, None, None, NOW))
    assert not decide(proxy_token(), INS, "read", None, unknown, NOW).granted


def test_a_protection_representative_acts_until_the_measure_is_ended__SPC_05() -> None:
    live = HolderSettings(space_status="open", proxy=appointment(role="protection_representative"))
    assert decide(proxy_token(), INS, "read", None, live, NOW).granted
    revoked = HolderSettings(
        space_status="open",
        proxy=appointment(role="protection_representative", ended_at=NOW - timedelta(minutes=1)),
    )
    d = decide(proxy_token(), INS, "read", None, revoked, NOW)
    assert (d.granted, d.rule) == (False, "SPC_05")


def test_a_requester_reads_only_after_death_and_only_reads__ACC_13() -> None:
    validated = appointment(kind="requester", role="heir")
    dead = HolderSettings(space_status="closed", proxy=validated, deceased=True)
    d = decide(proxy_token("requester"), INS, "read", None, dead, NOW)
    assert (d.granted, d.rule, d.include_masked) == (True, "ACC_13", False)
    assert not decide(
        proxy_token("requester"), INS, "deposit", "holder_document", dead, NOW
    ).granted
    alive = HolderSettings(space_status="open", proxy=validated)
    assert decide(proxy_token("requester"), INS, "read", None, alive, NOW).rule == "ACC_13"
    assert not decide(proxy_token("requester"), INS, "read", None, alive, NOW).granted
    nobody = HolderSettings(space_status="closed", deceased=True)
    assert not decide(proxy_token("requester"), INS, "read", None, nobody, NOW).granted
    # A representative's appointment is no requester's.
    as_representative = HolderSettings(space_status="closed", proxy=appointment(), deceased=True)
    assert not decide(proxy_token("requester"), INS, "read", None, as_representative, NOW).granted


# --- every actor the law names ------------------------------------------------------------------


def professional(
    profession: str = "physician",
    *,
    rpps: str = "10000000001",
    specialty: str | None = None,
    country: str | None = None,
) -> Claims:
    return pro(profession, rpps).model_copy(update={"specialty": specialty, "country": country})


def app(service_id: str = "carnet-vaccins") -> Claims:
    return Claims(sub=service_id, kind="app", name="Carnet", iat=NOW, exp=NOW + timedelta(hours=1))


def test_a_care_team_member_reads_within_their_profession_without_consent__ACC_06() -> None:
    team = HolderSettings(space_status="open", care_team=True)
    d = decide(pro("nurse"), INS, "read", None, team, NOW)
    assert (d.granted, d.rule, d.include_masked) == (True, "ACC_06", False)
    assert "imaging_report" not in d.document_types
    assert not decide(pro("nurse"), INS, "deposit", "imaging_report", team, NOW).granted


def test_a_blocked_care_team_member_is_still_refused__ACC_06__ACC_08() -> None:
    team = HolderSettings(space_status="open", care_team=True, blocked=True)
    assert decide(pro(), INS, "read", None, team, NOW).rule == "ACC_08"


def test_a_blocked_establishment_keeps_its_staff_out_but_not_the_treating_physician__ACC_08() -> (
    None
):
    blocked = HolderSettings(
        space_status="open", authorization=Authorization(), establishment_blocked=True
    )
    d = decide(pro(), INS, "read", None, blocked, NOW)
    assert (d.granted, d.rule) == (False, "ACC_08")
    assert not decide(pro(), INS, "deposit", "lab_report", blocked, NOW).granted
    treating = HolderSettings(
        space_status="open", establishment_blocked=True, treating_physician=True
    )
    assert decide(pro(), INS, "read", None, treating, NOW).rule == "ACC_04"


def test_the_regulating_physician_reads_in_an_emergency_never_masked__ACC_09() -> None:
    d = decide(pro("regulating_physician"), INS, "read", None, OPEN, NOW)
    assert (d.granted, d.rule, d.emergency, d.include_masked) == (True, "ACC_09", True, False)


def test_an_objection_to_emergency_access_refuses_the_samu_and_the_glass__ACC_09() -> None:
    objected = HolderSettings(space_status="open", emergency_objection=True)
    for actor, emergency in ((pro("regulating_physician"), False), (pro(), True)):
        d = decide(actor, INS, "read", None, objected, NOW, emergency=True, purpose="coma")
        assert (d.granted, d.rule) == (False, "ACC_09"), (actor.profession, emergency)


def test_breaking_the_glass_needs_a_reason_and_lasts_24_hours__ACC_09() -> None:
    assert decide(pro(), INS, "read", None, OPEN, NOW, emergency=True).rule == "ACC_09"
    assert not decide(pro(), INS, "read", None, OPEN, NOW, emergency=True, purpose=" ").granted
    d = decide(pro(), INS, "read", None, OPEN, NOW, emergency=True, purpose="arrêt cardiaque")
    assert (d.granted, d.emergency, d.include_masked) == (True, True, False)
    window = HolderSettings(space_status="open", emergency_until=NOW + timedelta(hours=24))
    assert decide(pro(), INS, "read", None, window, NOW + timedelta(hours=23)).granted
    later = decide(pro(), INS, "read", None, window, NOW + timedelta(hours=24))
    assert (later.granted, later.rule) == (False, "ACC_05")


def test_only_carers_break_the_glass_and_only_to_read__ACC_09() -> None:
    for profession in ("pharmacist", "social_worker", "occupational_physician"):
        d = decide(pro(profession), INS, "read", None, OPEN, NOW, emergency=True, purpose="x")
        assert not d.granted, profession
    d = decide(pro(), INS, "deposit", "lab_report", OPEN, NOW, emergency=True, purpose="x")
    assert not d.granted


def test_occupational_and_fire_brigade_physicians_need_express_consent__ACC_11() -> None:
    for profession in ("occupational_physician", "fire_brigade_physician"):
        assert decide(pro(profession), INS, "read", None, OPEN, NOW).rule == "ACC_11"
        plain = decide(pro(profession), INS, "read", None, AUTHORIZED, NOW)
        assert (plain.granted, plain.rule) == (False, "ACC_11")
        express = HolderSettings(space_status="open", authorization=Authorization(express=True))
        d = decide(pro(profession), INS, "read", None, express, NOW)
        assert (d.granted, d.rule) == (True, "ACC_11")
        assert ALL not in d.document_types


def test_social_and_medico_social_professionals_with_consent__ACC_12() -> None:
    for profession in ("social_worker", "medico_social_worker"):
        assert decide(pro(profession), INS, "read", None, OPEN, NOW).rule == "ACC_12"
        d = decide(pro(profession), INS, "read", None, AUTHORIZED, NOW)
        assert (d.granted, d.rule) == (True, "ACC_12")
        assert "lab_report" not in d.document_types


def test_a_requester_reads_what_their_role_allows_never_masked__ACC_13() -> None:
    def requester(role: str) -> HolderSettings:
        proxy = Proxy(INS, "requester", role, NOW - timedelta(days=1), None, None)
        return HolderSettings(space_status="closed", deceased=True, proxy=proxy)

    actor = Claims(sub="p", kind="requester", name="Heir", iat=NOW, exp=NOW + timedelta(hours=1))
    heir = decide(actor, INS, "read", None, requester("heir"), NOW)
    assert heir.granted and not heir.include_masked
    assert "occupational_health" not in heir.document_types and ALL not in heir.document_types
    expert = decide(actor, INS, "read", None, requester("court_expert"), NOW)
    assert expert.document_types == [ALL] and not expert.include_masked


def test_a_time_limited_establishment_authorization_ends_by_itself__ACC_14() -> None:
    until = NOW + timedelta(days=2)
    settings = HolderSettings(space_status="open", authorization=Authorization(until=until))
    assert decide(pro(), INS, "read", None, settings, NOW + timedelta(days=1)).granted
    assert decide(pro(), INS, "read", None, settings, until).rule == "ACC_14"


def test_an_app_reads_only_the_chosen_and_referenced_categories__ACC_15() -> None:
    grant = AppGrant(
        referenced=frozenset({"vaccinations", "results"}),
        chosen=frozenset({"vaccinations", "prescriptions"}),
    )
    settings = HolderSettings(space_status="open", app=grant)
    d = decide(app(), INS, "read", None, settings, NOW)
    assert (d.granted, d.rule, d.document_types, d.include_masked) == (
        True,
        "ACC_15",
        ["vaccination"],
        False,
    )
    assert not decide(app(), INS, "deposit", "vaccination", settings, NOW).granted
    unreferenced = HolderSettings(space_status="open", app=None)
    assert decide(app(), INS, "read", None, unreferenced, NOW).rule == "ACC_15"
    nothing_chosen = HolderSettings(
        space_status="open", app=AppGrant(grant.referenced, frozenset())
    )
    assert not decide(app(), INS, "read", None, nothing_chosen, NOW).granted


def test_an_eu_professional_is_decided_like_a_french_one__ACC_16() -> None:
    german = professional(rpps="DE-12345", country="DE")
    assert decide(german, INS, "read", None, OPEN, NOW).rule == "ACC_05"
    d = decide(german, INS, "read", None, AUTHORIZED, NOW)
    assert (d.granted, d.rule) == (True, "ACC_16")
    blocked = HolderSettings(space_status="open", authorization=Authorization(), blocked=True)
    assert decide(german, INS, "read", None, blocked, NOW).rule == "ACC_08"


def test_a_specialty_row_replaces_the_physicians__ACC_07() -> None:
    occupational = professional(specialty="occupational_medicine")
    d = decide(occupational, INS, "read", None, AUTHORIZED, NOW)
    assert d.granted and ALL not in d.document_types and "occupational_health" in d.document_types


# --- the matrix as data ----------------------------------------------------------------------


def test_the_shipped_matrix_has_a_row_for_every_profession_and_a_version__ACC_07() -> None:
    assert MATRIX.version
    assert set(MATRIX.professions) == set(PROFESSIONS)
    assert set(MATRIX.requesters) == set(REQUESTER_ROLES)


def test_a_matrix_with_a_mistake_is_refused_naming_it__ACC_07() -> None:
    good = MATRIX_FILE.read_text()
    cases = {
        good.replace('version = "', 'nonversion = "'): "no version",
        good.replace('"pharmacy_dispensation",', '"pharmacy_dispenstion",', 1): "unknown document",
        good.replace("[professions.dentist]", "[professions.banker]"): "unknown professions",
        good.replace("[requesters.heir]", "[requesters.insurer]"): "unknown requesters",
        good + "\n[professions.nurse.extra]\nread = []\n": "a row has",
        "version = [": "not TOML",
    }
    for text, complaint in cases.items():
        with pytest.raises(MatrixError, match=complaint):
            parse_matrix(text)


def test_a_changed_matrix_decides_differently_without_code__ACC_07() -> None:
    changed = parse_matrix(
        MATRIX_FILE.read_text()
        .replace('version = "', 'version = "test-', 1)
        .replace(
            '[professions.dentist]\nread = ["prescription",',
            '[professions.dentist]\nread = ["lab_report",',
        )
    )
    d = decide(pro("dentist"), INS, "read", None, AUTHORIZED, NOW, matrix=changed)
    assert "lab_report" in d.document_types
    assert (
        "lab_report"
        not in decide(pro("dentist"), INS, "read", None, AUTHORIZED, NOW).document_types
    )


# --- traces no one can rewrite ------------------------------------------------------------------


def _traces(n: int, ins: str = INS) -> list[dict[str, Any]]:
    traces: list[dict[str, Any]] = []
    previous = GENESIS
    for seq in range(1, n + 1):
        trace = {f: None for f in TRACE_FIELDS} | {
            "trace_id": uuid.uuid4(),
            "decision_id": uuid.uuid4(),
            "ins": ins,
            "at": NOW + timedelta(seconds=seq),
            "actor_kind": "professional",
            "actor_id": "10000000001",
            "actor_name": "Claire Martin",
            "action": "read",
            "outcome": "granted",
            "rule": "ACC_05",
            "reason": "authorized",
            "emergency": False,
        }
        previous = link(previous, trace_leaf(trace))
        traces.append(trace | {"seq": seq, "hash": previous})
    return traces


def test_an_intact_chain_verifies__ACC_03() -> None:
    traces = _traces(5)
    assert verify(INS, traces, 5, traces[-1]["hash"]) is None


def test_an_edited_trace_is_found_where_it_was_edited__ACC_03() -> None:
    traces = _traces(5)
    traces[2] = traces[2] | {"actor_name": "Quelqu'un d'autre"}
    found = verify(INS, traces, 5, traces[-1]["hash"])
    assert found is not None and (found.seq, "altered" in found.problem) == (3, True)


def test_a_deleted_trace_is_found_where_it_was_deleted__ACC_03() -> None:
    traces = _traces(5)
    del traces[1]
    found = verify(INS, traces, 5, traces[-1]["hash"])
    assert found is not None and (found.seq, "missing" in found.problem) == (2, True)
    newest_gone = _traces(5)[:4]
    found = verify(INS, newest_gone, 5, _traces(5)[-1]["hash"])
    assert found is not None and found.seq == 5


def test_a_chain_rewritten_whole_no_longer_matches_its_published_hashes__ACC_03() -> None:
    """Rewriting every hash after an edit passes `verify`, but not the copies of each link's
    hash that AccessLogged carried out of access: the chain is anchored outside."""
    original = _traces(3)
    edited = [dict(t) for t in original]
    edited[0]["actor_name"] = "X"
    previous = GENESIS
    for t in edited:
        previous = link(previous, trace_leaf(t))
        t["hash"] = previous
    assert verify(INS, edited, 3, edited[-1]["hash"]) is None
    assert [t["hash"] for t in edited] != [t["hash"] for t in original]


# --- properties over random actors, relations and states ---------------------------------------

_KINDS = (
    "professional",
    "professional",
    "holder",
    "representative",
    "app",
    "requester",
    "operator",
)
_PROFESSIONS = (*PROFESSIONS, *PROFESSIONS, "insurer", "banker", "employer", "pharma", "")
_RARELY = st.sampled_from((False, False, False, True))  # so that most draws reach a grant


@st.composite
def situations(draw: st.DrawFn) -> tuple[Claims, HolderSettings, str, str | None, bool]:
    kind = draw(st.sampled_from(_KINDS))
    actor = Claims(
        sub=draw(st.sampled_from((INS, INS, "10000000001", "299127512345617", "carnet"))),
        kind=kind,
        name="x",
        profession=draw(st.sampled_from(_PROFESSIONS)) if kind == "professional" else None,
        specialty=draw(st.sampled_from((None, "occupational_medicine", "cardiology"))),
        country=draw(st.sampled_from((None, "DE"))),
        iat=NOW,
        exp=NOW + timedelta(hours=1),
    )
    proxy = draw(
        st.one_of(
            st.none(),
            st.builds(
                Proxy,
                ins=st.sampled_from((INS, INS, "299127512345617")),
                kind=st.sampled_from(("representative", "requester", None)),
                role=st.sampled_from(
                    ("legal_representative", "protection_representative", "heir", "court_expert")
                ),
                starts_at=st.sampled_from((NOW - timedelta(days=1), None, NOW + timedelta(days=1))),
                ends_at=st.sampled_from(
                    (None, None, NOW - timedelta(hours=1), NOW + timedelta(days=1))
                ),
                ended_at=st.sampled_from((None, None, None, NOW - timedelta(hours=1))),
            ),
        )
    )
    settings = HolderSettings(
        space_status=draw(
            st.sampled_from(
                ("open", "open", "open", "open", "closed", "closed", "unknown", "announced")
            )
        ),
        authorization=draw(
            st.one_of(
                st.none(),
                st.builds(
                    Authorization,
                    until=st.sampled_from(
                        (None, NOW - timedelta(hours=1), NOW + timedelta(days=1))
                    ),
                    express=st.booleans(),
                ),
            )
        ),
        blocked=draw(_RARELY),
        establishment_blocked=draw(_RARELY),
        treating_physician=draw(_RARELY),
        care_team=draw(_RARELY),
        emergency_objection=draw(_RARELY),
        emergency_until=draw(
            st.sampled_from((None, NOW - timedelta(hours=1), NOW + timedelta(hours=1)))
        ),
        proxy=proxy,
        deceased=draw(_RARELY),
        app=draw(
            st.one_of(
                st.none(),
                st.builds(
                    AppGrant,
                    referenced=st.frozensets(st.sampled_from([c.value for c in DataCategory])),
                    chosen=st.frozensets(st.sampled_from([c.value for c in DataCategory])),
                ),
            )
        ),
    )
    action = draw(st.sampled_from(("read", "deposit", "message", "read_history", "copy", "mask")))
    document_type = draw(
        st.sampled_from((None, "lab_report", "holder_document", "administrative", "care_history"))
    )
    return actor, settings, action, document_type, draw(st.booleans())


@settings(max_examples=800, deadline=None)
@given(situations(), st.sampled_from((None, "arrêt cardiaque")))
def test_no_decision_breaks_the_laws_invariants__ACC_10__ACC_08__ACC_17__DOC_06(
    situation: tuple[Claims, HolderSettings, str, str | None, bool], purpose: str | None
) -> None:
    actor, holder_settings, action, document_type, emergency = situation
    d = decide(
        actor,
        INS,
        action,  # type: ignore[arg-type]
        document_type,
        holder_settings,
        NOW,
        emergency=emergency,
        purpose=purpose,
    )
    assert d.rule, "every decision names its rule (ACC_18)"
    if not d.granted:
        return
    # Outsiders, the operator and unknown professions are never let in, whatever consent (the
    # health insurance only feeds the care history, DOC_08).
    if actor.kind == "operator":
        assert (action, document_type, d.rule) == ("deposit", "care_history", "DOC_08")
    if actor.kind == "professional":
        assert actor.profession in PROFESSIONS
        # A blocked professional (or one of a blocked establishment) only as treating physician.
        if holder_settings.blocked or holder_settings.establishment_blocked:
            assert d.rule == "ACC_04"
    # A closed space grants no one but, after death, a requester the operator validated.
    if holder_settings.space_status == "closed":
        assert actor.kind == "requester" and holder_settings.deceased
    assert holder_settings.space_status in ("open", "closed")
    # Masked documents reach only the holder, their representatives and the treating physician
    # (the author sees their own through the dossier).
    if d.include_masked:
        assert actor.kind in ("holder", "representative") or d.rule == "ACC_04"
    # Held-back documents (DOC_07) are for professionals, never the holder's side.
    if d.include_held_back:
        assert actor.kind == "professional"
    # An emergency access never shows masked documents, and never against an objection.
    if d.emergency:
        assert not d.include_masked and not holder_settings.emergency_objection


def test_the_health_insurance_feeds_the_care_history_and_reads_nothing__DOC_08__ACC_10() -> None:
    d = decide(operator(), INS, "deposit", "care_history", OPEN, NOW)
    assert (d.granted, d.rule, d.document_types) == (True, "DOC_08", ["care_history"])
    for action, document_type in (
        ("read", None),
        ("deposit", "lab_report"),
        ("read", "care_history"),
    ):
        assert decide(operator(), INS, action, document_type, OPEN, NOW).rule == "ACC_10"
    closed = HolderSettings(space_status="closed")
    assert not decide(operator(), INS, "deposit", "care_history", closed, NOW).granted


def test_a_deposit_on_behalf_of_a_professional_is_decided_by_that_ones_relation__DOC_03() -> None:
    secretary = pro("administrative_staff")
    for author, rule in (
        (AUTHORIZED, "DOC_03"),
        (HolderSettings(space_status="open", care_team=True), "DOC_03"),
        (HolderSettings(space_status="open", treating_physician=True, blocked=True), "DOC_03"),
    ):
        d = decide(secretary, INS, "deposit", "lab_report", OPEN, NOW, on_behalf_of=author)
        assert (d.granted, d.rule) == (True, rule)
    for author, depositor, rule in (
        (OPEN, OPEN, "DOC_03"),  # the author is not authorized
        (
            HolderSettings(space_status="open", authorization=Authorization(), blocked=True),
            OPEN,
            "ACC_08",
        ),
        (AUTHORIZED, HolderSettings(space_status="open", blocked=True), "ACC_08"),
    ):
        d = decide(secretary, INS, "deposit", "lab_report", depositor, NOW, on_behalf_of=author)
        assert (d.granted, d.rule) == (False, rule)
    assert not decide(secretary, INS, "read", None, OPEN, NOW, on_behalf_of=AUTHORIZED).granted
    assert not decide(
        pro("banker"), INS, "deposit", "lab_report", OPEN, NOW, on_behalf_of=AUTHORIZED
    ).granted
