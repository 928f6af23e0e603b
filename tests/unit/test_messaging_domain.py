"""messaging's rules without I/O: sealing subjects and bodies, the shape of requests, the
deposit notice, and the events it reads and writes."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from libs.contracts.commands import ListMessages, SendMessage
from libs.contracts.envelope import envelope_for, event_class, open_envelope
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    MessageSent,
    MessageSentV1,
    public_name,
)
from libs.tokens import b64e, key_set, new_signing_key, public_jwks
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
