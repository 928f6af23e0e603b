"""The dossier's rules without I/O: types, scope, sealing, sizes, the shape of requests."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from libs.contracts.commands import Decision, DepositDocument, ReadDossier
from libs.contracts.vocabulary import DOCUMENT_TYPES
from libs.errors import InvalidInput
from services.dossier import domain

LIMIT = 10 * 2**20


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
        domain.decode_content(text, LIMIT)


def test_content_round_trips_through_base64() -> None:
    raw = secrets.token_bytes(100)
    assert domain.decode_content(domain.encode_content(raw), LIMIT) == raw
    assert domain.decode_content(base64.b64encode(b"%PDF-1.7").decode(), LIMIT) == b"%PDF-1.7"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 299, 300, 301])
def test_the_decoded_size_is_known_without_decoding(size: int) -> None:
    assert domain.decoded_size(base64.b64encode(b"x" * size).decode()) == size


def test_a_document_over_the_cap_is_refused_clearly_and_one_at_the_cap_accepted__DOC_01() -> None:
    assert domain.decode_content(base64.b64encode(b"x" * 300).decode(), 300) == b"x" * 300
    with pytest.raises(InvalidInput) as refused:
        domain.decode_content(base64.b64encode(b"x" * 301).decode(), 300)
    assert "larger than the limit of 300 bytes" in refused.value.message


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


def test_a_title_is_sealed_bound_to_its_document_holder_and_being_a_title__DOC_11() -> None:
    key, nonce = secrets.token_bytes(32), secrets.token_bytes(12)
    document_id, ins = uuid.uuid4(), "185057512345678"
    title = "Suivi VIH - charge virale"
    sealed = domain.seal_title(key, nonce, title, document_id, ins)
    assert title.encode() not in sealed and b"VIH" not in sealed
    assert domain.unseal_title(key, nonce, sealed, document_id, ins) == title
    with pytest.raises(InvalidTag):
        domain.unseal_title(key, nonce, sealed, document_id, "285057512345678")
    with pytest.raises(InvalidTag):
        domain.unseal_title(key, nonce, sealed, uuid.uuid4(), ins)
    # A title moved into the content column (or back) does not open as the other.
    with pytest.raises(InvalidTag):
        domain.unseal(key, nonce, sealed, document_id, ins)
    content = domain.seal(key, nonce, b"Suivi", document_id, ins)
    with pytest.raises(InvalidTag):
        domain.unseal_title(key, nonce, content, document_id, ins)


def test_the_content_sealing_is_unchanged_for_documents_already_stored__DOC_11() -> None:
    # Documents sealed before the helper moved to libs.sealing still open.
    document_id = uuid.uuid4()
    assert domain.associated_data(document_id, "1850575") == (
        b"dmp/dossier/document-content/v1\x00" + document_id.bytes + b"1850575"
    )


def test_sealing_refuses_a_key_or_nonce_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        domain.seal(secrets.token_bytes(16), secrets.token_bytes(12), b"x", uuid.uuid4(), "i")
    with pytest.raises(ValueError):
        domain.seal(secrets.token_bytes(32), secrets.token_bytes(8), b"x", uuid.uuid4(), "i")


def test_settings_refuse_a_budget_one_document_could_not_fit_in() -> None:
    from libs.tokens import b64e, key_set, new_signing_key, public_jwks
    from services.dossier.main import Settings

    public = public_jwks(key_set(new_signing_key()))
    key = b64e(secrets.token_bytes(32))
    with pytest.raises(ValueError, match="must fit"):
        Settings(
            identity_jwks=public,
            dossier_content_key=key,
            max_document_bytes=30 * 2**20,
            read_reply_budget_bytes=32 * 2**20,
        )
    with pytest.raises(ValueError, match="128 MiB"):
        Settings(identity_jwks=public, dossier_content_key=key, read_reply_budget_bytes=2**27)
    settings = Settings(identity_jwks=public, dossier_content_key=key)
    assert domain.max_reply_size(settings.max_document_bytes) <= settings.read_reply_budget_bytes


def test_a_reply_size_estimate_is_never_below_the_real_entry() -> None:
    content = secrets.token_bytes(3001)
    title = 'Compte rendu "opératoire" \\ 2025 ✓'
    entry = {
        "document_id": str(uuid.uuid4()),
        "document_type": "operative_report",
        "title": title,
        "media_type": "application/pdf",
        "author_id": "10123456789",
        "author_name": "Claire Martin",
        "deposited_at": "2025-03-05T09:05:00.123456+00:00",
        "content_b64": domain.encode_content(content),
    }
    real = len(json.dumps(entry, ensure_ascii=False).encode())
    estimate = domain.reply_size(
        len(content) + 16,
        len(title.encode()) + 16,
        len(b"10123456789Claire Martinapplication/pdf"),
    )
    assert real <= estimate < real + 2048


# --- the request's shape, checked before access is asked ------------------------------------


def deposit(**change: Any) -> DepositDocument:
    return DepositDocument.model_validate(
        {
            "ins": "185057512345678",
            "document_type": "lab_report",
            "title": "Bilan sanguin",
            "content_b64": "eA==",
            **change,
        }
    )


@pytest.mark.parametrize(
    "title",
    [
        "Bilan\x00",
        "Bilan\nsanguin",
        "Bil\ran",
        "\x1b[31mBilan",
        "Bilan\u202e",
        "\ud800",
        "x" * 301,
        " ",
    ],
)
def test_a_title_with_control_characters_or_out_of_bounds_is_refused_at_the_edge(
    title: str,
) -> None:
    with pytest.raises(ValidationError):
        deposit(title=title)


@pytest.mark.parametrize(
    "media_type",
    [
        "application",
        "text/plain; charset=utf-8",
        "text/plain\x00",
        "text/plaın",
        "ａpplication/pdf",
        "/pdf",
        "application/" + "x" * 100,
        "application/pdf\n",
    ],
)
def test_a_media_type_must_be_a_bounded_ascii_type_and_subtype(media_type: str) -> None:
    with pytest.raises(ValidationError):
        deposit(media_type=media_type)


@pytest.mark.parametrize("media_type", ["application/pdf", "image/jpeg", "application/fhir+json"])
def test_ordinary_media_types_are_accepted(media_type: str) -> None:
    assert deposit(media_type=media_type).media_type == media_type


@pytest.mark.parametrize("ins", ["18505751234567", "１85057512345678", "185057512345678\n", ""])
def test_an_ins_that_is_not_fifteen_ascii_characters_is_refused(ins: str) -> None:
    with pytest.raises(ValidationError):
        deposit(ins=ins)


def test_a_read_page_is_bounded_and_its_cursor_checked() -> None:
    with pytest.raises(ValidationError):
        ReadDossier(ins="185057512345678", page_size=101)
    with pytest.raises(ValidationError):
        ReadDossier(ins="185057512345678", cursor="a" * 81)
    assert ReadDossier(ins="185057512345678").page_size == 20


def test_settings_refuse_a_content_key_that_is_not_aes_256__DOC_11() -> None:
    from libs.tokens import b64e, key_set, new_signing_key, public_jwks
    from services.dossier.main import Settings

    public = public_jwks(key_set(new_signing_key()))
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(identity_jwks=public, dossier_content_key=b64e(secrets.token_bytes(16)))
    settings = Settings(identity_jwks=public, dossier_content_key=b64e(secrets.token_bytes(32)))
    assert settings.dossier_content_key not in repr(settings)


def test_each_document_has_its_own_key_wrapped_by_the_master_key__DOC_11() -> None:
    master, ins = secrets.token_bytes(32), "185057512345678"
    first, second = uuid.uuid4(), uuid.uuid4()
    a = domain.seal_document(master, "k1", b"same", "t", first, ins)
    b = domain.seal_document(master, "k1", b"same", "t", second, ins)
    key_a = domain.unwrap_key({"k1": master}, a.key, first, ins)
    assert key_a != domain.unwrap_key({"k1": master}, b.key, second, ins) and key_a != master
    row = {
        "key_id": a.key.key_id,
        "key_nonce": a.key.nonce,
        "wrapped_key": a.key.wrapped,
        "nonce": a.nonce,
        "content": a.content,
        "title_nonce": a.title_nonce,
        "title_sealed": a.title,
    }
    assert domain.open_document({"k1": master}, row, first, ins) == (b"same", "t")
    with pytest.raises(InvalidTag):  # a wrapped key moved to another document does not open
        domain.unwrap_key({"k1": master}, a.key, second, ins)
    with pytest.raises(KeyError):  # its master key is not configured
        domain.open_document({"k2": master}, row, first, ins)


def test_rewrapping_changes_the_master_key_not_the_document__DOC_11() -> None:
    old, new, ins, document_id = (
        secrets.token_bytes(32),
        secrets.token_bytes(32),
        "1850575123456",
        uuid.uuid4(),
    )
    sealed = domain.seal_document(old, "k1", b"contenu", "titre", document_id, ins)
    masters = {"k1": old, "k2": new}
    moved = domain.rewrap(masters, "k2", sealed.key, document_id, ins)
    assert moved.key_id == "k2"
    assert domain.unwrap_key({"k2": new}, moved, document_id, ins) == domain.unwrap_key(
        {"k1": old}, sealed.key, document_id, ins
    )
    # A row from before document keys (sealed under the master key itself): its master key
    # becomes its document key, wrapped under the new one.
    legacy = domain.WrappedKey("k1", None, None)
    assert domain.unwrap_key(masters, legacy, document_id, ins) == old
    wrapped = domain.rewrap(masters, "k2", legacy, document_id, ins)
    assert domain.unwrap_key({"k2": new}, wrapped, document_id, ins) == old


def test_a_document_is_refused_when_it_is_not_what_it_claims__DOC_01() -> None:
    pdf = b"%PDF-1.7 resultat"
    assert domain.check_claims(pdf, "application/pdf", None, None) == "application/pdf"
    assert domain.check_claims(pdf, None, None, None) == "application/pdf"  # recognised
    assert domain.check_claims(b"texte", None, None, None) == "application/octet-stream"
    assert domain.check_claims(b"texte", "text/plain", None, None) == "text/plain"
    digest = hashlib.sha256(pdf).hexdigest()
    assert domain.check_claims(pdf, "application/pdf", digest.upper(), len(pdf))
    for media_type, sha256, size, complaint in (
        ("image/png", None, None, "not image/png"),
        ("application/pdf", "0" * 64, None, "SHA-256"),
        ("application/pdf", None, len(pdf) + 1, "declared"),
    ):
        with pytest.raises(InvalidInput, match=complaint):
            domain.check_claims(pdf, media_type, sha256, size)
