"""Tokens as identity would sign them, for tests of one service without identity running, and
tokens identity would never sign, for the tests that must see them refused."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from libs.tokens import (
    AUDIENCE,
    DEFAULT_ISSUER,
    TokenKind,
    current_signing_key,
    issue_for,
    public_jwks,
)


def token_for(
    identity_private: str,
    *,
    sub: str,
    kind: TokenKind,
    now: datetime,
    name: str = "Claire Martin",
    profession: str | None = None,
    **claims: Any,
) -> str:
    """`identity_private`: identity's signing keys (a private JWKS). `claims`: the others
    identity may sign (specialty, country, acts_for, role)."""
    return issue_for(
        identity_private,
        sub=sub,
        kind=kind,
        name=name,
        profession=profession,
        now=now,
        ttl=timedelta(hours=1),
        **claims,
    )


def payload_for(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A holder's token payload as identity signs it, changed by `overrides` (None: left out)."""
    payload = {
        "iss": DEFAULT_ISSUER,
        "aud": AUDIENCE,
        "sub": "185057512345678",
        "kind": "holder",
        "name": "Sophie Leroy",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "jti": str(uuid.uuid4()),
        **overrides,
    }
    return {name: value for name, value in payload.items() if value is not None}


def signed_by_identity(identity_private: str, payload: dict[str, Any]) -> str:
    """`payload` signed with identity's own current key: what only a bug could issue."""
    key = current_signing_key(identity_private)
    signer = jwt.PyJWK(key, algorithm="EdDSA").key
    return jwt.encode(payload, signer, algorithm="EdDSA", headers={"kid": key["kid"]})


def unsigned(identity_private: str, payload: dict[str, Any]) -> str:
    """`alg: none`, naming identity's key: no signature at all."""
    kid = current_signing_key(identity_private)["kid"]
    return jwt.encode(payload, "", algorithm="none", headers={"kid": kid})


def hs256_with_public_key(identity_private: str, payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with identity's *public* key, which anyone
    has, in the hope that a verifier uses it as an HMAC secret."""
    public = json.loads(public_jwks(identity_private))["keys"][0]
    return jwt.encode(payload, public["x"], algorithm="HS256", headers={"kid": public["kid"]})
