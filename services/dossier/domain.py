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
import hashlib
import secrets
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
DOCUMENT_KEY = "dossier/document-key"

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
        # base64.b64decode(validate=True) without its ASCII copy of the text (a2b_base64 reads
        # a str in place): one copy of a deposit fewer while it is decoded.
        content = binascii.a2b_base64(content_b64, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            "content_b64 is not valid base64 (standard alphabet, with padding)"
        ) from None
    if not content:
        raise InvalidInput("the document is empty: a document has content (DOC_01)")
    return content


# DOC_01: a document is what it claims. The media types whose bytes announce themselves are
# checked by their signature; others (text, XML, CDA) are taken as declared.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/zip": (b"PK\x03\x04",),
}


def check_claims(
    content: bytes, media_type: str | None, sha256_hex: str | None, size: int | None
) -> str:
    """The document's media type; InvalidInput when the content is not what the deposit says:
    its size, its SHA-256 (the sender's, so that a corrupted transfer is refused), its media
    type's signature. Not said, the media type is recognised from the signature."""
    if size is not None and size != len(content):
        raise InvalidInput(f"the document has {len(content)} bytes, not the {size} declared")
    if sha256_hex is not None and hashlib.sha256(content).hexdigest() != sha256_hex.lower():
        raise InvalidInput("the document's SHA-256 is not the one declared: it was altered")
    if media_type is None:
        return next(
            (known for known, marks in _SIGNATURES.items() if content.startswith(marks)),
            "application/octet-stream",
        )
    signatures = _SIGNATURES.get(media_type.lower())
    if signatures is not None and not content.startswith(signatures):
        raise InvalidInput(f"the content is not {media_type}: its first bytes say otherwise")
    return media_type


def check_replacement(
    replaced: Mapping[str, Any] | None, author_id: str, document_type: str
) -> int:
    """The new version's number; InvalidInput/NotFound-worthy reasons otherwise: a document is
    replaced only by its own author (the holder corrects what they entered, DOC_05), with the
    same type, and only its current version."""
    if replaced is None:
        raise InvalidInput("replaces: no such document in this dossier")
    if replaced["author_id"] != author_id:
        raise InvalidInput("replaces: only the author of a document deposits a new version")
    if replaced["document_type"] != document_type:
        raise InvalidInput("replaces: a new version keeps the document's type")
    if replaced["replaced_by"] is not None:
        raise InvalidInput("replaces: this version was already replaced; replace the newest")
    return int(replaced["version"]) + 1


def encode_content(content: bytes) -> str:
    return base64.b64encode(content).decode()


# --- what a decision lets through (ACC_07, DOC_06) ------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The part of a dossier a granted decision opens."""

    document_types: frozenset[str] | None  # None: every type
    include_masked: bool
    # DOC_06: a masked document stays visible to its author (a professional reading).
    author: str | None = None
    # DOC_07: held-back documents, not yet released to the holder (professionals only).
    include_held_back: bool = False

    @classmethod
    def of(cls, decision: Decision, author: str | None = None) -> Scope:
        types = frozenset(decision.document_types)
        return cls(
            None if ALL_TYPES in types else types,
            decision.include_masked,
            author,
            decision.include_held_back,
        )

    def allows(
        self,
        document_type: str,
        masked: bool,
        author_id: str | None = None,
        withheld: bool = False,
    ) -> bool:
        if masked and not self.include_masked and not (self.author and author_id == self.author):
            return False
        if withheld and not self.include_held_back:
            return False
        return self.document_types is None or document_type in self.document_types


def visible(documents: Iterable[M], scope: Scope) -> list[M]:
    """The documents (with `document_type`, `masked`, `author_id`) the scope lets through, in
    order."""
    return [
        d
        for d in documents
        if scope.allows(
            d["document_type"],
            bool(d["masked"]),
            d.get("author_id"),
            bool(d.get("held_back")) and d.get("released_at") is None,
        )
    ]


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


# --- a key per document, wrapped by a master key (DOC_11) ------------------------------------
#
# Each document's content and title are sealed under a key of its own (a data key); the data
# key is stored sealed ("wrapped") under a master key named by its id. Rotating the master key
# re-wraps 32-byte data keys, never the documents: a background pass moves every row to the new
# master key while both stay readable. Rows written before data keys existed were sealed under
# the master key itself; re-wrapping them wraps that old master key as their data key.


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    nonce: bytes | None  # None: sealed directly under the master key (before data keys)
    wrapped: bytes | None


def new_document_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def wrap_key(
    master: bytes, key_id: str, data_key: bytes, document_id: UUID, ins: str
) -> WrappedKey:
    nonce = sealing.new_nonce()
    wrapped = seal(master, nonce, data_key, document_id, ins, DOCUMENT_KEY)
    return WrappedKey(key_id, nonce, wrapped)


def unwrap_key(
    masters: Mapping[str, bytes], wrapped: WrappedKey, document_id: UUID, ins: str
) -> bytes:
    """The document's data key; KeyError if its master key is not configured (any more)."""
    master = masters[wrapped.key_id]
    if wrapped.wrapped is None or wrapped.nonce is None:
        return master
    return unseal(master, wrapped.nonce, wrapped.wrapped, document_id, ins, DOCUMENT_KEY)


def rewrap(
    masters: Mapping[str, bytes],
    current_id: str,
    wrapped: WrappedKey,
    document_id: UUID,
    ins: str,
) -> WrappedKey:
    """The same data key, wrapped under the current master key."""
    data_key = unwrap_key(masters, wrapped, document_id, ins)
    return wrap_key(masters[current_id], current_id, data_key, document_id, ins)


@dataclass(frozen=True)
class SealedDocument:
    """What is stored of a document's content and title: sealed under its data key, which is
    wrapped under a master key; and the content's size and SHA-256 (of the bytes as deposited,
    so that "unchanged" is checkable without the key)."""

    key: WrappedKey
    nonce: bytes | None  # None: stored in parts
    content: bytes | None
    title_nonce: bytes
    title: bytes
    size: int
    sha256: bytes
    parts: int | None = None


def seal_document(
    master: bytes, key_id: str, content: bytes, title: str, document_id: UUID, ins: str
) -> SealedDocument:
    data_key = new_document_key()
    nonce, title_nonce = sealing.new_nonce(), sealing.new_nonce()
    return SealedDocument(
        key=wrap_key(master, key_id, data_key, document_id, ins),
        nonce=nonce,
        content=seal(data_key, nonce, content, document_id, ins),
        title_nonce=title_nonce,
        title=seal_title(data_key, title_nonce, title, document_id, ins),
        size=len(content),
        sha256=hashlib.sha256(content).digest(),
    )


def open_document(
    masters: Mapping[str, bytes], row: Mapping[str, Any], document_id: UUID, ins: str
) -> tuple[bytes, str | None]:
    """The content and title of a stored row; InvalidTag if anything was altered or moved,
    KeyError if its master key is not configured."""
    data_key = unwrap_key(
        masters, WrappedKey(row["key_id"], row["key_nonce"], row["wrapped_key"]), document_id, ins
    )
    content = (
        b""  # stored in parts: each is opened on its own (open_part)
        if row["content"] is None
        else unseal(data_key, row["nonce"], row["content"], document_id, ins)
    )
    title = (
        None  # deposited before titles were sealed (migration 0002): demo data only
        if row["title_sealed"] is None
        else unseal_title(data_key, row["title_nonce"], row["title_sealed"], document_id, ins)
    )
    return content, title


def part_purpose(index: int) -> str:
    """Each part is bound to its place, so that parts cannot be swapped or moved."""
    return f"dossier/document-part/{index}"


def seal_part(
    data_key: bytes, part: bytes, index: int, document_id: UUID, ins: str
) -> tuple[bytes, bytes]:
    nonce = sealing.new_nonce()
    return nonce, seal(data_key, nonce, part, document_id, ins, part_purpose(index))


def open_part(
    data_key: bytes, nonce: bytes, sealed: bytes, index: int, document_id: UUID, ins: str
) -> bytes:
    return unseal(data_key, nonce, sealed, document_id, ins, part_purpose(index))


def part_count(size: int, part_bytes: int) -> int:
    return -(-size // part_bytes)


def expected_part_size(size: int, part_bytes: int, index: int) -> int:
    """Every part is `part_bytes` long but the last, which has the rest."""
    parts = part_count(size, part_bytes)
    if index >= parts:
        raise InvalidInput(f"index {index} is past the last part ({parts - 1})")
    return part_bytes if index < parts - 1 else size - part_bytes * (parts - 1)


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
