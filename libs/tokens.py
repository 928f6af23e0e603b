"""Tokens: JWS/JWT signed by identity with EdDSA (Ed25519), verified locally by every service.

Identity signs with the first key of its private JWKS (`IDENTITY_SIGNING_KEYS`); every service
verifies with the public JWKS (`IDENTITY_JWKS`), choosing the key by the token's `kid`. Expiry
is checked against the system's clock (`now`), which demos and tests move by years, so the
library's own wall-clock checks are turned off.

Rotating identity's key without signing anyone out:
1. `python -m libs.tokens new-key`; append its key to IDENTITY_SIGNING_KEYS (second: identity
   still signs with the old one), set IDENTITY_JWKS to `python -m libs.tokens jwks`, redeploy.
2. Move the new key first in IDENTITY_SIGNING_KEYS and redeploy identity: it now signs with it.
3. Once the old key's last token has expired (the longest lifetime is 12 h), remove the old key
   from both and redeploy.

Professionals' and operators' cards are raw Ed25519 keys (`new_keypair`, `sign_bytes`, …): they
sign challenges, not tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.types import Options
from pydantic import Field, ValidationError

from libs.contracts.envelope import Contract
from libs.contracts.events import ProxyRole
from libs.errors import Unauthenticated

ALGORITHM = "EdDSA"
# Every service of the system is the audience of every token: one constant.
AUDIENCE = "mon-espace-sante"
DEFAULT_ISSUER = "https://identity.mon-espace-sante.example"

# How many verified tokens a verifier remembers (a few MB at most).
VERIFIED_TOKENS_KEPT = 4096
# The claims carried besides `Claims`' own.
_ENVELOPE_CLAIMS = ("iss", "aud")
_DECODE_OPTIONS: Options = {
    "require": ["iss", "aud", "sub", "iat", "exp", "jti"],
    # Checked against the system's clock in `TokenVerifier.verify`, not the wall clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "strict_aud": True,
}


# Who signs in: a proxy (representative, requester) acts for a holder with its own credential.
TokenKind = Literal["holder", "professional", "operator", "representative", "requester", "app"]


class Claims(Contract):
    # INS for a holder, RPPS for a professional, operator id for an operator, the proxy's id for
    # a representative or a requester.
    sub: str
    kind: TokenKind
    name: str
    profession: str | None = None
    specialty: str | None = None
    # A proxy's: the INS of the holder it acts for, and in what role (SPC_04, SPC_05, ACC_13).
    acts_for: str | None = None
    role: ProxyRole | None = None
    # A professional of another EU or EEA state: their state (ACC_16).
    country: str | None = None
    iat: datetime
    exp: datetime
    jti: UUID = Field(default_factory=uuid4)


# --- Raw Ed25519 keys: the cards' challenge signatures ------------------------------------------


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


# --- Identity's signing keys, as JWKs -----------------------------------------------------------


def new_signing_key(kid: str | None = None) -> dict[str, str]:
    """A private OKP JWK; its `kid` is by default its RFC 7638 thumbprint."""
    key = Ed25519PrivateKey.generate()
    x = b64e(key.public_key().public_bytes_raw())
    if kid is None:
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
        kid = b64e(hashlib.sha256(canonical.encode()).digest())
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "d": b64e(key.private_bytes_raw()),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }


def key_set(*keys: dict[str, str]) -> str:
    """A JWKS document holding `keys`, in that order."""
    return json.dumps({"keys": list(keys)}, separators=(",", ":"))


def jwks_keys(document: str, *, private: bool) -> list[dict[str, Any]]:
    """The keys of a JWKS document, each checked to be an Ed25519 signing key with a `kid`."""
    try:
        keys = json.loads(document)["keys"]
    except (ValueError, TypeError, KeyError):
        raise ValueError('a JWKS is JSON: {"keys": [...]}') from None
    if not isinstance(keys, list) or not keys:
        raise ValueError("the JWKS holds no key")
    for key in keys:
        if not isinstance(key, dict) or (key.get("kty"), key.get("crv")) != ("OKP", "Ed25519"):
            raise ValueError("every key of the JWKS must be an Ed25519 (OKP) key")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ValueError("every key of the JWKS needs a kid")
        if key.get("alg", ALGORITHM) != ALGORITHM or key.get("use", "sig") != "sig":
            raise ValueError(f"key {key['kid']}: only EdDSA signing keys are accepted")
        if private and "d" not in key:
            raise ValueError(f"key {key['kid']} has no private part (d): it cannot sign")
        if not private and "d" in key:
            # Handed to every service, it would let any of them sign tokens.
            raise ValueError(f"key {key['kid']} is private: give services the public JWKS")
    kids = [key["kid"] for key in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("two keys of the JWKS share a kid")
    return keys


def public_jwks(private_jwks: str) -> str:
    """What identity publishes: every key of its private JWKS, without the private part."""
    public = ("kty", "crv", "x", "kid", "use", "alg")
    return key_set(
        *(
            {name: key[name] for name in public if name in key}
            for key in jwks_keys(private_jwks, private=True)
        )
    )


def current_signing_key(private_jwks: str) -> dict[str, Any]:
    """The key identity signs with: the first of its JWKS."""
    return jwks_keys(private_jwks, private=True)[0]


# --- Tokens ------------------------------------------------------------------------------------


def _numeric_date(moment: datetime) -> int:
    return int(moment.timestamp())


def issue(private_jwks: str, claims: Claims, *, issuer: str = DEFAULT_ISSUER) -> str:
    key = current_signing_key(private_jwks)
    payload = {
        "iss": issuer,
        "aud": AUDIENCE,
        **claims.model_dump(mode="json", exclude_none=True),
        "iat": _numeric_date(claims.iat),
        "exp": _numeric_date(claims.exp),
    }
    signer = jwt.PyJWK(key, algorithm=ALGORITHM).key
    return jwt.encode(payload, signer, algorithm=ALGORITHM, headers={"kid": key["kid"]})


def issue_for(
    private_jwks: str,
    *,
    sub: str,
    kind: TokenKind,
    name: str,
    now: datetime,
    ttl: timedelta,
    profession: str | None = None,
    specialty: str | None = None,
    acts_for: str | None = None,
    role: ProxyRole | None = None,
    country: str | None = None,
    issuer: str = DEFAULT_ISSUER,
) -> str:
    claims = Claims(
        sub=sub,
        kind=kind,
        name=name,
        profession=profession,
        specialty=specialty,
        acts_for=acts_for,
        role=role,
        country=country,
        iat=now,
        exp=now + ttl,
    )
    return issue(private_jwks, claims, issuer=issuer)


def _unverified_header(token: str) -> dict[str, Any]:
    """The header, to choose the key by: `jwt.decode` then checks all of it again.

    Read here rather than with `jwt.get_unverified_header`, which decodes and checks the whole
    token: on every request, that costs about as much as the signature."""
    try:
        header = json.loads(b64d(token.partition(".")[0]))
    except (ValueError, RecursionError):  # bad base64, UTF-8 or JSON; JSON nested too deep
        header = None
    if not isinstance(header, dict):
        raise Unauthenticated("the token is malformed")
    return header


class TokenVerifier:
    """Accepts tokens signed by any key of identity's public JWKS, for this system, from
    `issuer`, unexpired at the `now` given."""

    def __init__(self, jwks: str, *, issuer: str = DEFAULT_ISSUER) -> None:
        self._keys = {
            key["kid"]: jwt.PyJWK(key, algorithm=ALGORITHM)
            for key in jwks_keys(jwks, private=False)
        }
        self._issuer = issuer
        # Tokens already verified, newest last: a caller sends the same token with every
        # request of its session, and the signature check (Ed25519, then the claims) was about
        # a twentieth of each service's CPU under load. What is cached is what the token says,
        # which its signature fixes; expiry is checked on every use against the system's clock.
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    def verify(self, token: str | None, now: datetime) -> Claims:
        if not token:
            raise Unauthenticated("a signed token is required")
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signed(token)
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        if claims.exp <= now:
            raise Unauthenticated("the token has expired")
        return claims

    def _verify_signed(self, token: str) -> Claims:
        header = _unverified_header(token)
        algorithm = header.get("alg")
        if algorithm != ALGORITHM:
            shown = str(algorithm)[:16]  # the sender's text: a few characters are enough
            raise Unauthenticated(
                f"the token's algorithm {shown!r} is refused: only EdDSA is accepted"
            )
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("the token was signed by an unknown key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options=_DECODE_OPTIONS,
            )
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature is invalid") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"the token's audience is not {AUDIENCE}") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated(f"the token's issuer is not {self._issuer}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token is malformed") from None
        try:
            claims = Claims.model_validate(
                {k: v for k, v in payload.items() if k not in _ENVELOPE_CLAIMS}
            )
        except ValidationError:
            raise Unauthenticated("the token's claims are malformed") from None
        return claims


def main(argv: list[str]) -> None:
    if argv == ["new-key"]:
        print(key_set(new_signing_key()))
    elif argv == ["jwks"]:
        signing_keys = os.environ.get("IDENTITY_SIGNING_KEYS")
        if not signing_keys:
            raise SystemExit("jwks: IDENTITY_SIGNING_KEYS is not set")
        try:
            print(public_jwks(signing_keys))
        except ValueError as exc:
            raise SystemExit(f"jwks: IDENTITY_SIGNING_KEYS: {exc}") from None
    else:
        raise SystemExit(
            "usage: python -m libs.tokens new-key   # a fresh private JWKS (one signing key)\n"
            "       python -m libs.tokens jwks      # the public JWKS of IDENTITY_SIGNING_KEYS"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
