"""Health data sealed at rest with AES-256-GCM, each ciphertext bound to where it belongs.

Used by the services that keep health data: the dossier (document contents and titles, DOC_11)
and messaging (subjects and bodies). Each keeps its own key, in its own settings.

- A fresh random 12-byte nonce for every sealed value (`new_nonce`): under one key a nonce must
  never be used twice, not even for two columns of the same row.
- The associated data names what the value is (a versioned purpose such as
  `dossier/document-title`), the row it belongs to (a 16-byte id) and its holder (INS), so a
  ciphertext copied onto another row, another holder or another column fails to open.
"""

from __future__ import annotations

import binascii
import re
import secrets
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.tokens import b64d

NONCE_BYTES = 12
KEY_BYTES = 32
TAG_BYTES = 16

_PURPOSE = re.compile(r"[a-z0-9-]+(?:/[a-z0-9-]+)*", re.ASCII)


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def associated_data(purpose: str, row_id: UUID, holder: str) -> bytes:
    """`dmp/<purpose>/v1 NUL <16-byte id> <holder>`: the id has a fixed size and the purpose no
    NUL, so the bytes cannot be read two ways."""
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"a sealing purpose is lowercase words separated by '/', not {purpose!r}")
    return f"dmp/{purpose}/v1".encode() + b"\x00" + row_id.bytes + holder.encode()


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """The ciphertext followed by the 16-byte GCM tag."""
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext; raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return AESGCM(key).decrypt(nonce, sealed, aad)


def check_key(value: str, name: str) -> str:
    """For settings: `value` is an AES-256 key, 32 bytes in base64url without padding.

    The message never includes the value itself.
    """
    try:
        raw = b64d(value)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64url") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{name} must decode to 32 bytes (AES-256), not {len(raw)}")
    return value
