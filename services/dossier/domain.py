"""Dossier rules, without I/O: document types (DOC_01), the scope a decision grants (ACC_07,
DOC_06), and how a document's content is sealed at rest (DOC_11).

The access service decides; the dossier only applies the scope of the decision mechanically.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.contracts.commands import Decision
from libs.contracts.vocabulary import DOCUMENT_TYPES
from libs.errors import InvalidInput

SpaceStatus = Literal["open", "closed"]

# In a decision's document_types, this one value means "every type".
ALL_TYPES = "*"
NONCE_BYTES = 12
KEY_BYTES = 32
# Versioned, so that a later change of what is bound cannot be confused with this one.
_AAD_PREFIX = b"dmp/dossier/document-content/v1\x00"

M = TypeVar("M", bound=Mapping[str, Any])


# --- what may be deposited (DOC_01) ---------------------------------------------------------


def check_document_type(document_type: str) -> str:
    if document_type not in DOCUMENT_TYPES:
        raise InvalidInput(
            f"unknown document type {document_type!r}: expected one of {', '.join(DOCUMENT_TYPES)}"
        )
    return document_type


def decode_content(content_b64: str) -> bytes:
    """The document's bytes from standard base64 (RFC 4648 §4); InvalidInput otherwise."""
    try:
        content = base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "content_b64 is not valid base64 (standard alphabet, with padding)"
        ) from None
    if not content:
        raise InvalidInput("the document is empty: a document has content (DOC_01)")
    return content


def encode_content(content: bytes) -> str:
    return base64.b64encode(content).decode()


# --- what a decision lets through (ACC_07, DOC_06) ------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The part of a dossier a granted decision opens."""

    document_types: frozenset[str] | None  # None: every type
    include_masked: bool

    @classmethod
    def of(cls, decision: Decision) -> Scope:
        types = frozenset(decision.document_types)
        return cls(None if ALL_TYPES in types else types, decision.include_masked)

    def allows(self, document_type: str, masked: bool) -> bool:
        if masked and not self.include_masked:
            return False
        return self.document_types is None or document_type in self.document_types


def visible(documents: Iterable[M], scope: Scope) -> list[M]:
    """The documents (with `document_type` and `masked`) the scope lets through, in order."""
    return [d for d in documents if scope.allows(d["document_type"], bool(d["masked"]))]


# --- sealing the content at rest (DOC_11) ---------------------------------------------------


def associated_data(document_id: UUID, ins: str) -> bytes:
    """What the ciphertext is bound to: this document of this holder, nothing else.

    The document id is a fixed 16 bytes, so prefix + id + INS cannot be read two ways.
    """
    return _AAD_PREFIX + document_id.bytes + ins.encode()


def seal(key: bytes, nonce: bytes, content: bytes, document_id: UUID, ins: str) -> bytes:
    """AES-256-GCM; the nonce must be fresh and random for every document (12 bytes)."""
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, content, associated_data(document_id, ins))


def unseal(key: bytes, nonce: bytes, sealed: bytes, document_id: UUID, ins: str) -> bytes:
    """The content; raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return AESGCM(key).decrypt(nonce, sealed, associated_data(document_id, ins))
