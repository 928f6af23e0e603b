"""How many tokens one process verifies per second (every request verifies one), in one run:

    .venv/bin/python -m bench.tokens                          # about 20 s
    .venv/bin/python -m bench.tokens --seconds 0.2 --rounds 3

- PyJWT: `libs.tokens.TokenVerifier.verify`, what every service runs (kid lookup, EdDSA
  signature, iss/aud, the `Claims` model, expiry against the clock), and `jwt.decode` alone;
- joserfc (measured only if installed: `.venv/bin/pip install joserfc`): the same work with its
  `KeySet`, `jwt.decode` and `JWTClaimsRegistry`, and `jwt.decode` alone;
- the home-made format tokens had before (base64url(claims JSON).base64url(Ed25519 signature)),
  rebuilt here: the signature, the `Claims` model, expiry;
- a bare Ed25519 signature check (cryptography), the floor under all of them.

One thread, one core. Each figure is the best of several rounds, the candidates taking turns
in each; on a shared machine trust the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt

from libs.tokens import (
    ALGORITHM,
    AUDIENCE,
    DEFAULT_ISSUER,
    Claims,
    TokenVerifier,
    b64d,
    b64e,
    current_signing_key,
    issue_for,
    key_set,
    new_signing_key,
    private_key,
    public_jwks,
    sign_bytes,
    verify_bytes,
)

NOW = datetime.now(UTC)


def calls_per_round(verify: Callable[[], object], seconds: float) -> int:
    """How many calls of `verify` take about `seconds`."""
    verify()  # warm caches and make sure it succeeds
    batch = 100
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            verify()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 10:
            return max(1, int(batch * seconds / elapsed))
        batch *= 2


def best_rates(
    candidates: dict[str, Callable[[], object]], seconds: float, rounds: int
) -> dict[str, float]:
    """Verifications per second, the best round of each. Rounds take every candidate in turn, so
    a burst of load from other processes does not fall on one candidate only."""
    calls = {name: calls_per_round(verify, seconds) for name, verify in candidates.items()}
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(rounds):
        for name, verify in candidates.items():
            started = time.perf_counter()
            for _ in range(calls[name]):
                verify()
            best[name] = max(best[name], calls[name] / (time.perf_counter() - started))
    return best


def home_made(signing_keys: str) -> tuple[Callable[[], object], str]:
    """The former format: the claims JSON and its signature, nothing else."""
    key = private_key(current_signing_key(signing_keys)["d"])
    public = key.public_key()
    claims = Claims(
        sub="185057512345678",
        kind="holder",
        name="Sophie Leroy",
        iat=NOW,
        exp=NOW + timedelta(hours=1),
    )
    body = b64e(claims.model_dump_json().encode())
    token = f"{body}.{sign_bytes(key, body.encode())}"

    def verify() -> Claims:
        body, _, signature = token.partition(".")
        if not verify_bytes(public, body.encode(), signature):
            raise ValueError("signature")
        parsed = Claims.model_validate_json(b64d(body))
        if parsed.exp <= NOW:
            raise ValueError("expired")
        return parsed

    return verify, token


def joserfc_verifiers(jwks: str, token: str) -> dict[str, Callable[[], object]] | None:
    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import KeySet
        from joserfc.jws import JWSRegistry
    except ImportError:
        return None
    keys = KeySet.import_key_set(json.loads(jwks))
    # joserfc warns on every use of "EdDSA", deprecated by RFC 9864 in favour of "Ed25519".
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    registry = JWSRegistry(algorithms=[ALGORITHM])

    def decode() -> object:
        return jose_jwt.decode(token, keys, algorithms=[ALGORITHM], registry=registry)

    def verify() -> Claims:
        decoded = jose_jwt.decode(token, keys, algorithms=[ALGORITHM], registry=registry)
        jose_jwt.JWTClaimsRegistry(
            now=int(NOW.timestamp()),
            iss={"essential": True, "value": DEFAULT_ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
        payload = {k: v for k, v in decoded.claims.items() if k not in ("iss", "aud")}
        return Claims.model_validate(payload)

    return {"joserfc: full verification": verify, "joserfc: jwt.decode alone": decode}


def main(seconds: float, rounds: int) -> None:
    signing_keys = key_set(new_signing_key())
    jwks = public_jwks(signing_keys)
    token = issue_for(
        signing_keys,
        sub="185057512345678",
        kind="holder",
        name="Sophie Leroy",
        now=NOW,
        ttl=timedelta(hours=1),
    )
    verifier = TokenVerifier(jwks)
    pyjwt_key = jwt.PyJWK(json.loads(jwks)["keys"][0], algorithm=ALGORITHM)
    home_made_verify, home_made_token = home_made(signing_keys)
    raw_key = private_key(current_signing_key(signing_keys)["d"])
    raw_signature = sign_bytes(raw_key, b"x" * 300)
    raw_public = raw_key.public_key()

    candidates: dict[str, Callable[[], object]] = {
        "PyJWT: TokenVerifier.verify (ours)": lambda: verifier.verify(token, NOW),
        "PyJWT: jwt.decode alone": lambda: jwt.decode(
            token,
            pyjwt_key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=DEFAULT_ISSUER,
            options={"verify_exp": False, "verify_iat": False},
        ),
    }
    jose = joserfc_verifiers(jwks, token)
    if jose is None:
        print("joserfc: not installed (.venv/bin/pip install joserfc), not measured")
    else:
        candidates |= jose
    candidates["home-made format (before): full verification"] = home_made_verify
    candidates["Ed25519 signature alone (cryptography)"] = lambda: verify_bytes(
        raw_public, b"x" * 300, raw_signature
    )

    print(f"token: JWT {len(token)} bytes; home-made {len(home_made_token)} bytes")
    width = max(len(name) for name in candidates)
    for name, per_second in best_rates(candidates, seconds, rounds).items():
        print(f"{name:<{width}}  {per_second:>9,.0f} verifications/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="one candidate's round")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.seconds, arguments.rounds)
