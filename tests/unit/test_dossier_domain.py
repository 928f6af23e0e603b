"""The dossier's rules without I/O: types, scope, sealing."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from libs.contracts.commands import Decision
from libs.contracts.vocabulary import DOCUMENT_TYPES
from libs.errors import InvalidInput
from services.dossier import domain


def decision(types: list[str], include_masked: bool = False) -> Decision:
    return Decision(
        decision_id=uuid.uuid4(),
        granted=True,
        rule="ACC_07",
        reason="profession matrix",
        document_types=types,
        include_masked=include_masked,
    )


def doc(document_type: str, masked: bool = False, title: str = "") -> dict[str, Any]:
    return {"document_type": document_type, "masked": masked, "title": title or document_type}


DOSSIER = [
    doc("lab_report", title="newest"),
    doc("prescription"),
    doc("lab_report", masked=True, title="masked lab"),
    doc("advance_directives"),
    doc("imaging_report", title="oldest"),
]


def test_only_types_in_scope_are_returned__ACC_07() -> None:
    scope = domain.Scope.of(decision(["lab_report", "imaging_report"]))
    seen = domain.visible(DOSSIER, scope)
    assert [d["title"] for d in seen] == ["newest", "oldest"]


def test_wildcard_scope_opens_every_type_in_order__ACC_01() -> None:
    scope = domain.Scope.of(decision(["*"]))
    assert scope.document_types is None
    assert [d["title"] for d in domain.visible(DOSSIER, scope)] == [
        "newest",
        "prescription",
        "advance_directives",
        "oldest",
    ]


def test_an_empty_scope_opens_nothing__ACC_07() -> None:
    assert domain.visible(DOSSIER, domain.Scope.of(decision([]))) == []


def test_masked_documents_are_hidden_unless_scope_includes_them__DOC_06() -> None:
    hidden = domain.Scope.of(decision(["lab_report"]))
    shown = domain.Scope.of(decision(["lab_report"], include_masked=True))
    assert [d["title"] for d in domain.visible(DOSSIER, hidden)] == ["newest"]
    assert [d["title"] for d in domain.visible(DOSSIER, shown)] == ["newest", "masked lab"]


def test_including_masked_documents_never_widens_the_types__ACC_04() -> None:
    scope = domain.Scope.of(decision(["prescription"], include_masked=True))
    assert not scope.allows("lab_report", masked=True)
    assert scope.allows("prescription", masked=True)


@pytest.mark.parametrize("document_type", DOCUMENT_TYPES)
def test_every_type_of_the_dossier_is_accepted__DOC_01(document_type: str) -> None:
    assert domain.check_document_type(document_type) == document_type


@pytest.mark.parametrize("document_type", ["horoscope", "", "LAB_REPORT", "*"])
def test_an_unknown_document_type_is_refused_clearly__DOC_01(document_type: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.check_document_type(document_type)
    assert "unknown document type" in refused.value.message
    assert "lab_report" in refused.value.message  # says what is expected


@pytest.mark.parametrize("text", ["not base64!", "abc", "YWJj\n", "YW-j", ""])
def test_content_that_is_not_base64_or_empty_is_refused__DOC_01(text: str) -> None:
    with pytest.raises(InvalidInput):
        domain.decode_content(text)


def test_content_round_trips_through_base64() -> None:
    raw = secrets.token_bytes(100)
    assert domain.decode_content(domain.encode_content(raw)) == raw
    assert domain.decode_content(base64.b64encode(b"%PDF-1.7").decode()) == b"%PDF-1.7"


def test_sealed_content_hides_the_plaintext_and_opens_with_the_key__DOC_11() -> None:
    key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    document_id, ins = uuid.uuid4(), "185057512345678"
    plaintext = b"Compte rendu: glycemie 1.02 g/L, HbA1c 6.1 %"
    sealed = domain.seal(key, nonce, plaintext, document_id, ins)
    assert plaintext not in sealed
    assert len(sealed) == len(plaintext) + 16  # GCM tag
    assert domain.unseal(key, nonce, sealed, document_id, ins) == plaintext


def test_sealed_content_is_bound_to_its_document_and_holder__DOC_11() -> None:
    key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    document_id, ins = uuid.uuid4(), "185057512345678"
    sealed = domain.seal(key, nonce, b"secret", document_id, ins)
    with pytest.raises(InvalidTag):
        domain.unseal(key, nonce, sealed, document_id, "285057512345678")
    with pytest.raises(InvalidTag):
        domain.unseal(key, nonce, sealed, uuid.uuid4(), ins)
    with pytest.raises(InvalidTag):
        domain.unseal(secrets.token_bytes(32), nonce, sealed, document_id, ins)
    tampered = bytes([sealed[0] ^ 1]) + sealed[1:]
    with pytest.raises(InvalidTag):
        domain.unseal(key, nonce, tampered, document_id, ins)


def test_associated_data_names_the_document_and_the_holder_unambiguously__DOC_11() -> None:
    document_id = uuid.uuid4()
    aad = domain.associated_data(document_id, "185057512345678")
    assert document_id.bytes in aad and aad.endswith(b"185057512345678")
    assert aad != domain.associated_data(document_id, "18505751234567")
    assert aad != domain.associated_data(uuid.uuid4(), "185057512345678")


def test_sealing_refuses_a_key_or_nonce_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        domain.seal(secrets.token_bytes(16), secrets.token_bytes(12), b"x", uuid.uuid4(), "i")
    with pytest.raises(ValueError):
        domain.seal(secrets.token_bytes(32), secrets.token_bytes(8), b"x", uuid.uuid4(), "i")


def test_settings_refuse_a_content_key_that_is_not_aes_256__DOC_11() -> None:
    from libs.tokens import b64e, new_keypair
    from services.dossier.main import Settings

    _, public = new_keypair()
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(identity_public_key=public, dossier_content_key=b64e(secrets.token_bytes(16)))
    settings = Settings(
        identity_public_key=public, dossier_content_key=b64e(secrets.token_bytes(32))
    )
    assert settings.dossier_content_key not in repr(settings)
