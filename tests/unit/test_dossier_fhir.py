"""The holder's copy of the whole dossier as a FHIR R4 Bundle (DOC_09), without I/O."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference

from libs.contracts.vocabulary import DOCUMENT_TYPE_CODES, DOCUMENT_TYPES
from services.dossier import fhir
from services.dossier.fhir import ExportedDocument, documents_in, dossier_bundle

INS = "180057512345678"
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def document(
    content: bytes,
    document_type: str = "lab_report",
    *,
    masked: bool = False,
    version: int = 1,
    replaces: uuid.UUID | None = None,
    current: bool = True,
    care_date: date | None = None,
) -> ExportedDocument:
    return ExportedDocument(
        document_id=uuid.uuid4(),
        document_type=document_type,
        title=f"{document_type} v{version}",
        media_type="application/pdf",
        content=content,
        sha256=hashlib.sha256(content).digest(),
        deposited_at=datetime(2025, 1, version, 8, tzinfo=UTC),
        care_date=care_date,
        author_id="810000000001",
        author_name="Dr Claire Martin",
        version=version,
        replaces=replaces,
        current=current,
        masked=masked,
    )


def dossier() -> list[ExportedDocument]:
    first = document(b"%PDF-1.7 lab v1", current=False, care_date=date(2024, 12, 30))
    return [
        document(os.urandom(200 * 1024), "imaging_report"),
        document(b"%PDF-1.7 psychiatric letter", "professional_letter", masked=True),
        first,
        document(b"%PDF-1.7 lab v2", version=2, replaces=first.document_id),
    ]


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def by_id(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in resources(bundle, "DocumentReference")}


def test_the_copy_holds_every_document_decoding_to_its_original_bytes__DOC_09() -> None:
    documents = dossier()
    bundle = dossier_bundle(INS, "Sophie Durand", documents, NOW)

    copied = documents_in(bundle)

    assert copied == {d.document_id: d.content for d in documents}
    for d in documents:
        assert hashlib.sha256(copied[d.document_id]).digest() == d.sha256
    assert bundle["type"] == "collection"
    assert len(resources(bundle, "Binary")) == len(documents)
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    assert bundle["identifier"]["value"].startswith("urn:uuid:")
    assert datetime.fromisoformat(bundle["timestamp"]) == NOW


def test_each_document_carries_both_hashes_of_its_bytes__DOC_09() -> None:
    d = document(b"%PDF-1.7 report")
    reference = by_id(dossier_bundle(INS, None, [d], NOW))[str(d.document_id)]

    attachment = reference["content"][0]["attachment"]
    assert base64.b64decode(attachment["hash"]) == hashlib.sha1(d.content).digest()
    assert attachment["size"] == len(d.content)
    [identifier] = reference["identifier"]
    assert identifier["system"] == "urn:ietf:rfc:6920"
    digest = identifier["value"].removeprefix("ni:///sha-256;")
    assert base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)) == d.sha256


def test_the_patient_is_identified_by_the_ins__DOC_09() -> None:
    bundle = dossier_bundle(INS, "Sophie Durand", dossier(), NOW)

    [patient] = resources(bundle, "Patient")
    [identifier] = patient["identifier"]
    assert identifier["system"] == "urn:oid:1.2.250.1.213.1.4.8"
    assert identifier["value"] == INS
    assert patient["name"] == [{"text": "Sophie Durand"}]
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is patient)
    for reference in resources(bundle, "DocumentReference"):
        assert reference["subject"] == {"reference": patient_url}

    [anonymous] = resources(dossier_bundle(INS, None, [], NOW), "Patient")
    assert "name" not in anonymous


def test_each_type_carries_its_standard_code__DOC_09() -> None:
    documents = [document(t.encode(), t) for t in DOCUMENT_TYPES]
    references = by_id(dossier_bundle(INS, None, documents, NOW))

    for d in documents:
        system, code, display = DOCUMENT_TYPE_CODES[d.document_type]
        reference = references[str(d.document_id)]
        assert reference["type"]["coding"] == [{"system": system, "code": code, "display": display}]
        assert reference["docStatus"] == "final"
        assert reference["description"] == d.title
        assert reference["author"] == [
            {"display": "Dr Claire Martin", "identifier": {"value": "810000000001"}}
        ]


def test_a_masked_document_is_labelled_restricted__DOC_09() -> None:
    documents = dossier()
    references = by_id(dossier_bundle(INS, None, documents, NOW))

    for d in documents:
        [label] = references[str(d.document_id)]["securityLabel"]
        [coding] = label["coding"]
        assert coding["system"] == "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
        assert coding["code"] == ("R" if d.masked else "N")


def test_a_document_whose_hash_does_not_match_is_refused__DOC_09() -> None:
    good = document(b"%PDF-1.7 original")
    tampered = replace(good, content=b"%PDF-1.7 altered")

    with pytest.raises(ValueError, match="SHA-256"):
        dossier_bundle(INS, None, [document(b"other"), tampered], NOW)
    with pytest.raises(ValueError, match="SHA-256"):
        dossier_bundle(INS, None, [replace(good, sha256=good.sha256[:16])], NOW)


def test_a_copy_whose_bytes_were_altered_is_refused_when_read_back__DOC_09() -> None:
    bundle = dossier_bundle(INS, None, [document(b"%PDF-1.7 original")], NOW)
    [binary] = resources(bundle, "Binary")
    binary["data"] = base64.b64encode(b"%PDF-1.7 altered!").decode()

    with pytest.raises(ValueError, match="SHA-1"):
        documents_in(bundle)


def test_a_replaced_version_is_superseded_and_linked__DOC_09() -> None:
    documents = dossier()
    first, second = documents[2], documents[3]
    bundle = dossier_bundle(INS, None, documents, NOW)
    references = by_id(bundle)

    assert references[str(first.document_id)]["status"] == "superseded"
    assert references[str(second.document_id)]["status"] == "current"
    assert references[str(second.document_id)]["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"urn:uuid:{first.document_id}"}}
    ]
    assert f"urn:uuid:{first.document_id}" in {e["fullUrl"] for e in bundle["entry"]}
    assert "relatesTo" not in references[str(first.document_id)]
    assert references[str(first.document_id)]["context"] == {"period": {"start": "2024-12-30"}}

    # The replaced version is not in this copy: no link that would lead nowhere.
    alone = by_id(dossier_bundle(INS, None, [second], NOW))[str(second.document_id)]
    assert "relatesTo" not in alone


def test_the_bundle_revalidates_with_the_library_model__DOC_09() -> None:
    bundle = dossier_bundle(INS, "Sophie Durand", dossier(), NOW)

    parsed = Bundle.model_validate(bundle)

    assert parsed.type == "collection"
    assert parsed.model_dump(mode="json", exclude_none=True) == bundle
    kinds = [type(e.resource) for e in parsed.entry or []]
    assert kinds.count(DocumentReference) == kinds.count(Binary) == 4


def test_the_same_dossier_at_the_same_instant_gives_the_same_copy__DOC_09() -> None:
    documents = dossier()

    assert dossier_bundle(INS, None, documents, NOW) == dossier_bundle(INS, None, documents, NOW)
    assert fhir.named_information(b"\xff" * 32).endswith("_" * 42 + "8")
