"""The holder's copy of their whole dossier (DOC_09), as a FHIR R4 Bundle, without I/O.

DOC_09: the holder may obtain a copy of the whole content of the dossier. A copy is only worth
something if the holder can open it elsewhere, so it is written in the format French health
software already exchanges (CI-SIS, the national interoperability framework, is built on FHIR
R4): a `collection` Bundle holding the holder's `Patient`, identified by the INS, and for each
document a `DocumentReference` (its type as its CI-SIS code, its status in the version chain,
its confidentiality) and a `Binary` with the bytes themselves.

The models come from `fhir.resources.R4B` (FHIR 4.3.0): since fhir.resources 7 the package
has no R4 (4.0.1) subpackage, and R4B keeps every element used here as R4 defines it, so the
JSON is R4 JSON. Building through the models runs the library's validation on every element.

Two hashes, on purpose. FHIR R4 defines `Attachment.hash` as SHA-1, so that is what a FHIR
reader checks; SHA-1 is broken against collisions, so the SHA-256 the dossier keeps for every
document is carried too, as an RFC 6920 `ni:` identifier, for a reader that wants a hash
nobody can forge. A document whose stored SHA-256 does not match its bytes is refused: a copy
must hold exactly what was deposited, not whatever decrypted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID, uuid5

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient

from libs.contracts.vocabulary import DOCUMENT_TYPE_CODES, DOCUMENT_TYPES

INS_NIR: Final = "urn:oid:1.2.250.1.213.1.4.8"  # the INS built on the NIR
CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
NAMED_INFORMATION: Final = "urn:ietf:rfc:6920"
# Ids of the entries that are not documents are derived, not drawn: the same dossier copied at
# the same instant gives the same bundle, and the module stays free of hidden inputs.
_NAMESPACE: Final = UUID("0f6d2f0e-5a53-5d8e-9c53-6b1f2b6c0d09")


@dataclass(frozen=True)
class ExportedDocument:
    """One document of the dossier, decrypted, as the copy needs it."""

    document_id: UUID
    document_type: str  # one of DOCUMENT_TYPES
    title: str
    media_type: str
    content: bytes
    sha256: bytes  # as stored at deposit
    deposited_at: datetime
    care_date: date | None
    author_id: str
    author_name: str | None
    version: int
    replaces: UUID | None
    current: bool  # False once a later version superseded it
    masked: bool
    # A document stored in parts is not copied inline (no message could hold it): its
    # attachment names it (`parts_url`) with its size and SHA-256, and the holder's app fetches
    # its parts (GetDocumentPart); `content` is empty then.
    parts: int | None = None
    size: int | None = None


def urn(uuid: UUID) -> str:
    return f"urn:uuid:{uuid}"


def parts_url(document_id: UUID, parts: int) -> str:
    return f"urn:dmp:document:{document_id}:parts:{parts}"


def named_information(sha256: bytes) -> str:
    """RFC 6920 §3: base64url without padding."""
    return "ni:///sha-256;" + base64.urlsafe_b64encode(sha256).decode().rstrip("=")


def dossier_bundle(
    ins: str,
    holder_name: str | None,
    documents: Sequence[ExportedDocument],
    generated_at: datetime,
) -> dict[str, Any]:
    """The JSON of the collection Bundle copying the whole dossier; ValueError if a document's
    bytes are not the ones deposited, or if the copy would not be valid FHIR."""
    ids = [d.document_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("a document appears twice in the copy")
    for document in documents:
        _check(document)

    patient_id = uuid5(_NAMESPACE, f"patient/{ins}")
    patient = Patient(
        id=str(patient_id),
        identifier=[{"use": "official", "system": INS_NIR, "value": ins}],
        name=[{"text": holder_name}] if holder_name else None,
    )
    entries = [BundleEntry(fullUrl=urn(patient_id), resource=patient)]
    present = set(ids)
    for document in documents:
        binary_id = _binary_id(document.document_id)
        entries.append(
            BundleEntry(
                fullUrl=urn(document.document_id),
                resource=_document_reference(document, patient_id, binary_id, present),
            )
        )
        if document.parts is not None:
            continue
        entries.append(
            BundleEntry(
                fullUrl=urn(binary_id),
                resource=Binary(
                    id=str(binary_id),
                    contentType=document.media_type,
                    # A server that serves the Binary alone applies the access rules of its
                    # DocumentReference (so a masked document stays masked).
                    securityContext={"reference": urn(document.document_id)},
                    data=base64.b64encode(document.content),
                ),
            )
        )

    bundle_id = uuid5(
        _NAMESPACE,
        "\n".join(
            [f"bundle/{ins}", generated_at.isoformat()]
            + [f"{d.document_id}/{d.sha256.hex()}" for d in documents]
        ),
    )
    bundle = Bundle(
        id=str(bundle_id),
        identifier={"system": "urn:ietf:rfc:3986", "value": urn(bundle_id)},
        type="collection",
        timestamp=generated_at,
        entry=entries,
    )
    return bundle.model_dump(mode="json", exclude_none=True)


def documents_in(bundle: Mapping[str, Any]) -> dict[UUID, bytes]:
    """Each DocumentReference's id and the bytes of its Binary, as a holder's app reads a copy
    back; ValueError if the bundle is not valid FHIR, or a Binary is missing or does not match
    the size and hashes its DocumentReference announces."""
    parsed = Bundle.model_validate(dict(bundle))
    binaries: dict[str, bytes] = {}
    references: list[DocumentReference] = []
    for entry in parsed.entry or []:
        resource = entry.resource
        if isinstance(resource, Binary) and entry.fullUrl is not None:
            binaries[entry.fullUrl] = resource.data or b""
        elif isinstance(resource, DocumentReference):
            references.append(resource)

    copied: dict[UUID, bytes] = {}
    for reference in references:
        attachment = reference.content[0].attachment
        # Url may parse to AnyUrl; the fullUrl it names is compared as text.
        url = str(attachment.url)
        if url.startswith("urn:dmp:document:"):
            continue  # in parts: fetched part by part, checked against its SHA-256
        if url not in binaries:
            raise ValueError(f"document {reference.id}: its content is not in the bundle")
        content = binaries[url]
        if attachment.size is not None and attachment.size != len(content):
            raise ValueError(f"document {reference.id}: the size does not match")
        if attachment.hash is not None and attachment.hash != hashlib.sha1(content).digest():
            raise ValueError(f"document {reference.id}: the SHA-1 does not match")
        sha256 = named_information(hashlib.sha256(content).digest())
        for identifier in reference.identifier or []:
            if identifier.system == NAMED_INFORMATION and identifier.value != sha256:
                raise ValueError(f"document {reference.id}: the SHA-256 does not match")
        copied[UUID(str(reference.id))] = content
    return copied


def _check(document: ExportedDocument) -> None:
    if document.document_type not in DOCUMENT_TYPES:
        raise ValueError(f"document {document.document_id}: unknown type")
    if document.parts is not None:
        if document.size is None:
            raise ValueError(f"document {document.document_id}: in parts, its size is needed")
        return
    if hashlib.sha256(document.content).digest() != document.sha256:
        raise ValueError(
            f"document {document.document_id}: its content does not match the SHA-256 recorded"
            " at deposit"
        )


def _attachment(document: ExportedDocument, binary_id: UUID) -> dict[str, Any]:
    if document.parts is not None:
        return {
            "contentType": document.media_type,
            "size": document.size,
            "title": document.title,
            "url": parts_url(document.document_id, document.parts),
        }
    return {
        "contentType": document.media_type,
        "size": len(document.content),
        "hash": base64.b64encode(hashlib.sha1(document.content).digest()),
        "title": document.title,
        "url": urn(binary_id),
    }


def _binary_id(document_id: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"binary/{document_id}")


def _document_reference(
    document: ExportedDocument, patient_id: UUID, binary_id: UUID, present: set[UUID]
) -> DocumentReference:
    system, code, display = DOCUMENT_TYPE_CODES[document.document_type]
    confidentiality = ("R", "restricted") if document.masked else ("N", "normal")
    # A link to a version that is not in the copy would dangle: the chain stops there.
    replaces = document.replaces if document.replaces in present else None
    return DocumentReference(
        id=str(document.document_id),
        identifier=[{"system": NAMED_INFORMATION, "value": named_information(document.sha256)}],
        status="current" if document.current else "superseded",
        docStatus="final",
        type={"coding": [{"system": system, "code": code, "display": display}]},
        subject={"reference": urn(patient_id)},
        date=document.deposited_at,
        author=[
            {
                "display": document.author_name or document.author_id,
                "identifier": {"value": document.author_id},
            }
        ],
        description=document.title,
        relatesTo=(
            [{"code": "replaces", "target": {"reference": urn(replaces)}}] if replaces else None
        ),
        securityLabel=[
            {
                "coding": [
                    {
                        "system": CONFIDENTIALITY,
                        "code": confidentiality[0],
                        "display": confidentiality[1],
                    }
                ]
            }
        ],
        context=(
            {"period": {"start": document.care_date}} if document.care_date is not None else None
        ),
        content=[{"attachment": _attachment(document, binary_id)}],
    )
