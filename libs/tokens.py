"""Ed25519-signed tokens: identity signs, every service verifies locally with the public key.

Format: base64url(claims JSON) "." base64url(signature of the first part). Small, dependency-free
to verify, and a forged or altered token fails on the signature.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, ValidationError

from libs.contracts.envelope import Contract
from libs.errors import Unauthenticated


class Claims(Contract):
    sub: str  # INS for a holder, RPPS for a professional, operator id for an operator
    kind: Literal["holder", "professional", "operator"]
    name: str
    profession: str | None = None
    specialty: str | None = None
    iat: datetime
    exp: datetime
    jti: UUID = Field(default_factory=uuid4)


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_keypair() -> tuple[str, str]:
    """(private, public) as base64url of the raw 32-byte keys."""
    key = Ed25519PrivateKey.generate()
    return b64e(key.private_bytes_raw()), b64e(key.public_key().public_bytes_raw())


def private_key(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64d(text))


def public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64d(text))


def sign_bytes(key: Ed25519PrivateKey, data: bytes) -> str:
    return b64e(key.sign(data))


def verify_bytes(key: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(b64d(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def issue(key: Ed25519PrivateKey, claims: Claims) -> str:
    body = b64e(claims.model_dump_json().encode())
    return f"{body}.{sign_bytes(key, body.encode())}"


def issue_for(
    key: Ed25519PrivateKey,
    *,
    sub: str,
    kind: Literal["holder", "professional", "operator"],
    name: str,
    now: datetime,
    ttl: timedelta,
    profession: str | None = None,
    specialty: str | None = None,
) -> str:
    claims = Claims(
        sub=sub,
        kind=kind,
        name=name,
        profession=profession,
        specialty=specialty,
        iat=now,
        exp=now + ttl,
    )
    return issue(key, claims)


class TokenVerifier:
    def __init__(self, public_key_b64: str) -> None:
        self._key = public_key(public_key_b64)

    def verify(self, token: str | None, now: datetime) -> Claims:
        if not token:
            raise Unauthenticated("a signed token is required")
        body, sep, signature = token.partition(".")
        if not sep or not verify_bytes(self._key, body.encode(), signature):
            raise Unauthenticated("the token's signature is invalid")
        try:
            claims = Claims.model_validate_json(b64d(body))
        except (ValidationError, ValueError):
            raise Unauthenticated("the token is malformed") from None
        if claims.exp <= now:
            raise Unauthenticated("the token has expired")
        return claims
