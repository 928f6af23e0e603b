"""messaging's rules without I/O: sealing subjects, bodies and attachments, the shape of
requests, who takes part in a thread, what an attachment must be, who is told of a deposit, and
the events it reads and writes."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from libs.contracts.commands import ListMessages, ListThreads, SendMessage, StartThread
from libs.contracts.envelope import envelope_for, event_class, open_envelope
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    MessageSent,
    MessageSentV1,
    public_name,
)
from libs.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.tokens import Claims, b64e, key_set, new_signing_key, public_jwks
from services.messaging import domain

INS = "185057512345678"
AT = datetime(2025, 3, 5, 9, 5, tzinfo=UTC)


def test_subject_and_body_are_sealed_bound_to_their_message_holder_and_part() -> None:
    key = secrets.token_bytes(32)
    message_id = uuid.uuid4()
    subject_nonce, body_nonce = secrets.token_bytes(12), secrets.token_bytes(12)
    subject = domain.seal_text(
        key, subject_nonce, "Résultats de votre biopsie", message_id, INS, domain.SUBJECT
    )
    body = domain.seal_text(key, body_nonce, "Tout va bien.", message_id, INS, domain.BODY)
    assert b"biopsie" not in subject and b"bien" not in body
    assert (
        domain.unseal_text(key, subject_nonce, subject, message_id, INS, domain.SUBJECT)
        == "Résultats de votre biopsie"
    )
    assert (
        domain.unseal_text(key, body_nonce, body, message_id, INS, domain.BODY) == "Tout va bien."
    )
    wrongs: list[Callable[[], str]] = [
        lambda: domain.unseal_text(key, subject_nonce, subject, message_id, INS, domain.BODY),
        lambda: domain.unseal_text(key, body_nonce, body, uuid.uuid4(), INS, domain.BODY),
        lambda: domain.unseal_text(key, body_nonce, body, message_id, "285057512345678", "x"),
        lambda: domain.unseal_text(
            secrets.token_bytes(32), body_nonce, body, message_id, INS, domain.BODY
        ),
    ]
    for wrong in wrongs:
        with pytest.raises(InvalidTag):
            wrong()


def test_settings_need_their_own_aes_256_key_kept_out_of_reprs() -> None:
    from services.messaging.main import Settings

    public = public_jwks(key_set(new_signing_key()))
    with pytest.raises(ValueError, match="messaging_content_key"):
        Settings(identity_jwks=public)
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(identity_jwks=public, messaging_content_key=b64e(secrets.token_bytes(16)))
    settings = Settings(identity_jwks=public, messaging_content_key=b64e(secrets.token_bytes(32)))
    assert settings.messaging_content_key not in repr(settings)
    assert domain.max_reply_size() <= settings.list_reply_budget_bytes


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Résultats\x00"},
        {"subject": "Ligne\nautre"},
        {"subject": ""},
        {"subject": "x" * 301},
        {"body": "texte\x00"},
        {"body": "texte\x1b[2J"},
        {"body": "a\rb"},
        {"body": "\ud800"},
        {"body": "x" * 100_001},
        {"ins": "１85057512345678"},
    ],
)
def test_a_message_with_control_characters_or_out_of_bounds_is_refused(
    change: dict[str, str],
) -> None:
    with pytest.raises(ValidationError):
        SendMessage.model_validate({"ins": INS, "subject": "Bonjour", "body": "Un mot", **change})


def test_a_body_keeps_its_lines_and_tabs() -> None:
    sent = SendMessage(ins=INS, subject="Bonjour", body="Ligne 1\r\nLigne 2\n\tfin")
    assert sent.body == "Ligne 1\nLigne 2\n\tfin"


def test_a_listing_page_is_bounded() -> None:
    with pytest.raises(ValidationError):
        ListMessages(ins=INS, page_size=201)
    with pytest.raises(ValidationError):
        ListMessages(ins=INS, cursor="not a cursor!")
    assert ListMessages(ins=INS).page_size == 50


def test_only_a_professionals_deposit_is_sent_to_the_holder__MSG_02() -> None:
    assert domain.posts_deposit_notice("professional")
    assert not domain.posts_deposit_notice("holder")
    assert not domain.posts_deposit_notice("operator")
    assert domain.deposit_notice("Dr Claire Martin").startswith("Dr Claire Martin a déposé")
    assert domain.deposit_notice(None).startswith("Un professionnel de santé a déposé")


# --- the events: no free text, and version 1 still read ---------------------------------------


def test_version_2_events_carry_no_title_subject_or_body() -> None:
    assert {"title", "content", "content_b64"}.isdisjoint(DocumentDeposited.model_fields)
    assert {"subject", "body"}.isdisjoint(MessageSent.model_fields)
    assert (DocumentDeposited.VERSION, MessageSent.VERSION) == (2, 2)
    assert DocumentDeposited.routing_key() == "dossier.document_deposited.v2"
    assert MessageSent.routing_key() == "messaging.message_sent.v2"


def test_only_a_professionals_name_travels() -> None:
    assert public_name("professional", "Claire Martin") == "Claire Martin"
    assert public_name("holder", "Sophie Leroy") is None
    assert public_name("operator", "agent 12") is None


def test_version_1_events_stay_readable_and_read_as_version_2_without_free_text() -> None:
    deposited = DocumentDepositedV1(
        document_id=uuid.uuid4(),
        ins=INS,
        document_type="lab_report",
        title="Suivi VIH",
        author_id="10123456789",
        author_name="Claire Martin",
        deposited_at=AT,
    )
    envelope = envelope_for(deposited, holder_key=INS, occurred_at=AT, correlation_id="c")
    assert (envelope.type, envelope.version) == ("DocumentDeposited", 1)
    opened = open_envelope(envelope)
    assert isinstance(opened, DocumentDepositedV1)
    upgraded = opened.upgraded()
    assert isinstance(upgraded, DocumentDeposited)
    assert "Suivi" not in upgraded.model_dump_json()
    assert (upgraded.author_kind, upgraded.author_name) == ("professional", "Claire Martin")

    sent = MessageSentV1(
        message_id=uuid.uuid4(),
        ins=INS,
        sender_kind="holder",
        sender_id=INS,
        sender_name="Sophie Leroy",
        subject="Ma biopsie",
        sent_at=AT,
    )
    assert event_class("MessageSent", 1) is MessageSentV1
    assert event_class("MessageSent", 2) is MessageSent
    read = sent.upgraded()
    assert "biopsie" not in read.model_dump_json() and read.sender_name is None


# --- threads: who takes part, who reads, who writes (MSG_01, MSG_03) ---------------------------

RPPS = "10123456789"
OTHER = "10987654321"


def claims(kind: str, sub: str, acts_for: str | None = None) -> Claims:
    return Claims(sub=sub, kind=kind, name="X", acts_for=acts_for, iat=AT, exp=AT)  # type: ignore[arg-type]


def test_the_holders_side_is_the_holder_or_their_representative_for_their_space__MSG_03() -> None:
    assert domain.party_of(claims("holder", INS), INS) == domain.Party(
        "holder", INS, "holder", asks_access=False
    )
    # A representative acts for the holder; access tells whether the appointment holds.
    assert domain.party_of(claims("representative", "p-1", acts_for=INS), INS) == domain.Party(
        "holder", INS, "representative", asks_access=True
    )
    assert domain.party_of(claims("professional", RPPS), INS) == domain.Party(
        "professional", RPPS, "professional", asks_access=True
    )
    for outsider in (
        claims("holder", "285057512345678"),
        claims("representative", "p-1", acts_for="285057512345678"),
        claims("operator", "cnam-agent-1"),
        claims("app", "app-1"),
        claims("requester", "p-2", acts_for=INS),
    ):
        with pytest.raises(Forbidden):
            domain.party_of(outsider, INS)
    with pytest.raises(Forbidden) as refused:
        domain.box_reader(claims("professional", RPPS), INS)
    assert refused.value.code == "not_your_box"


def test_the_holder_names_whom_they_write_to_a_professional_writes_to_the_holder__MSG_01() -> None:
    holder = domain.party_of(claims("holder", INS), INS)
    doctor = domain.party_of(claims("professional", RPPS), INS)
    assert domain.participants_of_new_thread(holder, INS, [RPPS, OTHER, RPPS]) == [
        ("holder", INS),
        ("professional", RPPS),
        ("professional", OTHER),
    ]
    assert domain.participants_of_new_thread(doctor, INS, []) == [
        ("holder", INS),
        ("professional", RPPS),
    ]
    with pytest.raises(InvalidInput):
        domain.participants_of_new_thread(holder, INS, [])
    with pytest.raises(InvalidInput):
        domain.participants_of_new_thread(doctor, INS, [OTHER])
    # Without a thread: the holder's own, as the single box was; a professional's, with her.
    assert domain.own_thread(holder, INS) == [("holder", INS)]
    assert domain.own_thread(doctor, INS) == [("holder", INS), ("professional", RPPS)]


def test_only_participants_read_and_no_one_answers_a_notice__MSG_03() -> None:
    thread = uuid.uuid4()
    participants: domain.Participants = [("holder", INS), ("professional", RPPS)]
    holder = domain.party_of(claims("holder", INS), INS)
    doctor = domain.party_of(claims("professional", RPPS), INS)
    stranger = domain.party_of(claims("professional", OTHER), INS)
    for party in (holder, doctor):
        domain.check_reads(party, participants, thread)
        domain.check_writes(party, "conversation", participants, thread)
    with pytest.raises(NotFound):
        domain.check_reads(stranger, participants, thread)
    with pytest.raises(NotFound):
        domain.check_writes(stranger, "conversation", participants, thread)
    with pytest.raises(Conflict):
        domain.check_writes(doctor, "notices", participants, thread)
    # A professional reads what was written to them; a representative's appointment is asked.
    assert not domain.reads_ask_access(doctor)
    assert domain.reads_ask_access(domain.party_of(claims("representative", "p", INS), INS))


def test_a_thread_contract_is_bounded() -> None:
    with pytest.raises(ValidationError):
        StartThread(ins=INS, subject="S", body="B", professionals=[RPPS] * 21)
    with pytest.raises(ValidationError):
        StartThread(ins=INS, subject="S", body="B", professionals=["not an rpps"])
    with pytest.raises(ValidationError):
        ListThreads(page_size=101)
    assert SendMessage(ins=INS, subject="S", body="B").thread_id is None


# --- attachments (MSG_01) ----------------------------------------------------------------------

LIMITS = domain.AttachmentLimits(
    max_bytes=1000, max_count=2, max_total_bytes=1500, types=frozenset(domain.ATTACHMENT_TYPES)
)
CDA = b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- CR -->\n<ClinicalDocument xmlns="urn:hl7-org:v3">'


def file(content: bytes, media_type: str, sha256: str | None = None) -> tuple[str, str, str, None]:
    return (
        media_type,
        base64.b64encode(content).decode(),
        sha256 or hashlib.sha256(content).hexdigest(),
        None,
    )


@pytest.mark.parametrize(
    ("content", "media_type", "stored_as"),
    [
        (b"%PDF-1.4 ...", "application/pdf", "application/pdf"),
        (b"\xff\xd8\xff\xe0 jfif", "image/jpeg", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n....", "IMAGE/PNG", "image/png"),
        ("Tension : 12/8\n\tà revoir".encode(), "text/plain", "text/plain"),
        (CDA, "text/xml", "application/hl7-cda+xml"),
        (CDA, "application/hl7-cda+xml", "application/hl7-cda+xml"),
        (b'<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">', "application/xml", domain.CDA),
    ],
)
def test_an_attachment_of_an_allowed_type_whose_bytes_say_so_is_accepted__MSG_01(
    content: bytes, media_type: str, stored_as: str
) -> None:
    [checked] = domain.check_attachments([file(content, media_type)], LIMITS)
    assert (checked.media_type, checked.content) == (stored_as, content)
    assert checked.sha256 == hashlib.sha256(content).digest()


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([file(b"\x89PNG\r\n\x1a\n", "application/pdf")], "is not"),
        ([file(b"%PDF-1.4", "image/jpeg")], "is not"),
        ([file(b"GIF89a....", "image/gif")], "not accepted"),
        ([file(b"PK\x03\x04", "application/zip")], "not accepted"),
        ([file(b"\xff\xfe\x00t", "text/plain")], "is not"),
        ([file(b"bell\x07", "text/plain")], "is not"),
        ([file(b"<html><body/></html>", "text/xml")], "is not"),
        ([file(b'<ClinicalDocument xmlns="urn:other">', "text/xml")], "is not"),
        ([file(b'<!DOCTYPE d [<!ENTITY a "a">]><ClinicalDocument/>', "text/xml")], "is not"),
        ([file(b"%PDF-" + b"x" * 996, "application/pdf")], "larger than the limit"),
        ([file(b"%PDF-1", "application/pdf")] * 3, "at most 2"),
        ([file(b"%PDF-" + b"x" * 795, "application/pdf")] * 2, "together"),
        ([file(b"%PDF-1", "application/pdf", "0" * 64)], "SHA-256"),
        ([("application/pdf", "JVBERi0x!", "0" * 64, None)], "base64"),
        ([file(b"", "text/plain")], "empty"),
    ],
)
def test_an_attachment_not_what_it_claims_or_over_the_limits_is_refused_clearly__MSG_01(
    files: list[tuple[str, str, str, str | None]], why: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.check_attachments(files, LIMITS)
    assert why in refused.value.message


def test_an_attachment_at_the_cap_is_accepted__MSG_01() -> None:
    [checked] = domain.check_attachments([file(b"%PDF-" + b"x" * 995, "application/pdf")], LIMITS)
    assert len(checked.content) == LIMITS.max_bytes


def test_an_attachment_is_sealed_bound_to_its_message_place_and_holder() -> None:
    key, nonce, message_id = secrets.token_bytes(32), secrets.token_bytes(12), uuid.uuid4()
    part = domain.attachment_part(0, "content")
    sealed = domain.seal_attachment(key, nonce, b"%PDF-secret", message_id, INS, part)
    assert b"secret" not in sealed
    assert domain.unseal_attachment(key, nonce, sealed, message_id, INS, part) == b"%PDF-secret"
    for wrong in (
        lambda: domain.unseal_attachment(key, nonce, sealed, uuid.uuid4(), INS, part),
        lambda: domain.unseal_attachment(key, nonce, sealed, message_id, "285057512345678", part),
        lambda: domain.unseal_attachment(
            key, nonce, sealed, message_id, INS, domain.attachment_part(1, "content")
        ),
        lambda: domain.unseal_attachment(
            key, nonce, sealed, message_id, INS, domain.attachment_part(0, "name")
        ),
    ):
        with pytest.raises(InvalidTag):
            wrong()


def test_attachment_settings_must_fit_a_request_and_be_types_that_can_be_checked() -> None:
    from services.messaging.main import Settings

    public = public_jwks(key_set(new_signing_key()))
    key = b64e(secrets.token_bytes(32))
    settings = Settings(identity_jwks=public, messaging_content_key=key)
    assert settings.attachment_limits().max_bytes == 10 * 2**20
    assert settings.attachment_limits().types == frozenset(domain.ATTACHMENT_TYPES)
    with pytest.raises(ValueError, match="max_message_bytes"):
        Settings(
            identity_jwks=public, messaging_content_key=key, max_message_attachment_bytes=30 * 2**20
        )
    with pytest.raises(ValueError, match="cannot be checked"):
        Settings(identity_jwks=public, messaging_content_key=key, attachment_types=["image/gif"])


# --- deposits told to the treating physician and the prescriber (MSG_02) ----------------------


def test_a_deposit_goes_to_the_holder_the_treating_physician_and_the_prescriber__MSG_02() -> None:
    author, physician, prescriber = "10000000001", "10000000002", "10000000003"
    told = domain.deposit_recipients(INS, author, physician, prescriber)
    assert [(r.side, r.id, r.role) for r in told] == [
        ("holder", INS, "holder"),
        ("professional", physician, "treating_physician"),
        ("professional", prescriber, "prescriber"),
    ]
    assert [r.id for r in domain.deposit_recipients(INS, author, None, None)] == [INS]
    # Never its author; once each.
    assert [r.id for r in domain.deposit_recipients(INS, physician, physician, prescriber)] == [
        INS,
        prescriber,
    ]
    assert [r.id for r in domain.deposit_recipients(INS, prescriber, physician, prescriber)] == [
        INS,
        physician,
    ]
    assert [r.role for r in domain.deposit_recipients(INS, author, physician, physician)] == [
        "holder",
        "treating_physician",
    ]


def test_a_notice_names_the_author_and_type_never_title_or_content__MSG_02() -> None:
    subject, body = domain.notice("treating_physician", "Dr Anne Biologiste", "lab_report")
    assert "Dr Anne Biologiste" in body and "lab_report" in body and "médecin traitant" in body
    assert subject == domain.PATIENT_DEPOSIT_SUBJECT
    assert "prescripteur" in domain.notice("prescriber", None, "imaging_report")[1]
    assert domain.notice("holder", "Dr X", "lab_report") == (
        domain.DEPOSIT_SUBJECT,
        domain.deposit_notice("Dr X"),
    )


def test_a_deposit_names_its_prescriber_by_id_only_and_older_events_still_read__MSG_02() -> None:
    deposited = DocumentDeposited(
        document_id=uuid.uuid4(),
        ins=INS,
        document_type="lab_report",
        author_kind="professional",
        author_id=RPPS,
        author_name="Claire Martin",
        deposited_at=AT,
    )
    assert deposited.prescriber_id is None
    assert (
        DocumentDeposited.model_validate(
            deposited.model_dump() | {"prescriber_id": OTHER}
        ).prescriber_id
        == OTHER
    )
    sent = MessageSent.model_validate(
        {
            "message_id": str(uuid.uuid4()),
            "ins": INS,
            "sender_kind": "holder",
            "sender_id": INS,
            "sender_name": None,
            "sent_at": AT.isoformat(),
        }
    )
    assert (sent.thread_id, sent.attachments) == (None, 0)


def test_an_establishment_takes_part_through_its_staff_of_the_moment__MSG_01__MSG_03() -> None:
    ins, finess = "185057512345678", "750712184"
    holder = domain.Party("holder", ins, "holder", asks_access=False)
    thread = domain.participants_of_new_thread(holder, ins, [], [finess, finess])
    assert thread == [("holder", ins), ("establishment", finess)]
    staff = domain.Party("professional", "10000000001", "professional", True, frozenset({finess}))
    outsider = domain.Party("professional", "10000000002", "professional", True)
    assert staff.takes_part(thread) and not outsider.takes_part(thread)
    with pytest.raises(NotFound):
        domain.check_reads(outsider, thread, uuid.uuid4())
    # A professional cannot bring an establishment in: the holder decides who reads.
    with pytest.raises(InvalidInput):
        domain.participants_of_new_thread(staff, ins, [], [finess])
    with pytest.raises(InvalidInput):
        domain.participants_of_new_thread(holder, ins, [], [])
