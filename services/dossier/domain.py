"""Dossier rules, without I/O: what may be deposited (DOC_01), the scope a decision grants
(ACC_07, DOC_06), how a document's content and title are sealed at rest (DOC_11), and how a read
is cut into pages that no reply can make too big for the broker.

The access service decides; the dossier only applies the scope of the decision mechanically.
Every check of a request's own shape (here, and in its contract) runs before access is asked,
so a request that could never be stored leaves no access trace and raises no alert.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

from libs import sealing
from libs.contracts.commands import Decision
from libs.contracts.vocabulary import DOCUMENT_TYPES
from libs.errors import InvalidInput

SpaceStatus = Literal["open", "closed"]

# In a decision's document_types, this one value means "every type".
ALL_TYPES = "*"
NONCE_BYTES = sealing.NONCE_BYTES
KEY_BYTES = sealing.KEY_BYTES
# What is sealed, each under its own nonce and with its own associated data.
CONTENT = "dossier/document-content"
TITLE = "dossier/document-title"

MAX_TITLE_CHARS = 300  # as DepositDocument bounds it
MAX_MEDIA_TYPE_CHARS = 100

M = TypeVar("M", bound=Mapping[str, Any])


# --- what may be deposited (DOC_01) ---------------------------------------------------------


def check_document_type(document_type: str) -> str:
    if document_type not in DOCUMENT_TYPES:
        raise InvalidInput(
            f"unknown document type {document_type!r}: expected one of {', '.join(DOCUMENT_TYPES)}"
        )
    return document_type


def decoded_size(content_b64: str) -> int:
    """How many bytes standard base64 text decodes to, without decoding it."""
    padding = len(content_b64[-2:]) - len(content_b64[-2:].rstrip("="))
    return len(content_b64) // 4 * 3 - padding


def decode_content(content_b64: str, max_bytes: int) -> bytes:
    """The document's bytes from standard base64 (RFC 4648 §4); InvalidInput otherwise.

    A document over `max_bytes` (decoded) is refused before it is decoded.
    """
    if decoded_size(content_b64) > max_bytes:
        raise InvalidInput(
            f"the document is larger than the limit of {max_bytes} bytes"
            f" ({max_bytes / 2**20:.1f} MiB) once decoded"
        )
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


# --- sealing at rest (DOC_11) ---------------------------------------------------------------


def associated_data(document_id: UUID, ins: str, part: str = CONTENT) -> bytes:
    """What a ciphertext is bound to: this part (content or title) of this document of this
    holder, nothing else (see libs.sealing)."""
    return sealing.associated_data(part, document_id, ins)


def seal(
    key: bytes, nonce: bytes, content: bytes, document_id: UUID, ins: str, part: str = CONTENT
) -> bytes:
    """AES-256-GCM; the nonce must be fresh and random for every sealed value (12 bytes)."""
    return sealing.seal(key, nonce, content, associated_data(document_id, ins, part))


def unseal(
    key: bytes, nonce: bytes, sealed: bytes, document_id: UUID, ins: str, part: str = CONTENT
) -> bytes:
    """The plaintext; raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return sealing.unseal(key, nonce, sealed, associated_data(document_id, ins, part))


def seal_title(key: bytes, nonce: bytes, title: str, document_id: UUID, ins: str) -> bytes:
    return seal(key, nonce, title.encode(), document_id, ins, TITLE)


def unseal_title(key: bytes, nonce: bytes, sealed: bytes, document_id: UUID, ins: str) -> str:
    return unseal(key, nonce, sealed, document_id, ins, TITLE).decode()


# --- pages of a read ------------------------------------------------------------------------

# A document's entry in a reply besides its content and its texts: ids, type, dates, field
# names, JSON punctuation. Generous, so that the estimate is never below the real size.
ENTRY_OVERHEAD_BYTES = 1024
# The longest author name an entry is sized for when the settings are checked.
_NAME_BYTES_ASSUMED = 1024


def reply_size(sealed_content_bytes: int, sealed_title_bytes: int, text_bytes: int) -> int:
    """An upper bound of a document's bytes in a read's reply, from stored sizes alone (nothing
    is decrypted to know it): sealed content and title, and the UTF-8 bytes of the other texts
    (author name, media type, ...).

    The content travels in base64 (4 characters per 3 bytes); texts as JSON strings, never more
    than 6 bytes (an escape) per byte of their UTF-8.
    """
    content = max(0, sealed_content_bytes - sealing.TAG_BYTES)
    texts = max(0, sealed_title_bytes - sealing.TAG_BYTES) + text_bytes
    return 4 * -(-content // 3) + 6 * texts + ENTRY_OVERHEAD_BYTES


def max_reply_size(max_document_bytes: int) -> int:
    """The largest entry a document within the cap makes (for the settings' check)."""
    return reply_size(
        max_document_bytes + sealing.TAG_BYTES,
        4 * MAX_TITLE_CHARS + sealing.TAG_BYTES,
        _NAME_BYTES_ASSUMED + MAX_MEDIA_TYPE_CHARS,
    )
