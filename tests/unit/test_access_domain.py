"""The decision table of the access service, rule by rule, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.tokens import Claims
from services.access.domain import ALL, Authorization, HolderSettings, Proxy, decide

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
