"""Tokens are EdDSA JWTs: what identity signs verifies everywhere, anything else is refused and
says why; keys rotate with two valid at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from libs import tokens
from libs.errors import Unauthenticated
from libs.tokens import TokenVerifier, key_set, new_signing_key, public_jwks
from services.identity.settings import IdentitySettings
from tests.support.tokens import (
    hs256_with_public_key,
    payload_for,
    signed_by_identity,
    token_for,
    unsigned,
)

NOW = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)
INS = "185057512345678"
RPPS = "10123456789"


@pytest.fixture(scope="module")
def identity_private() -> str:
    return key_set(new_signing_key())


@pytest.fixture(scope="module")
def verifier(identity_private: str) -> TokenVerifier:
    return TokenVerifier(public_jwks(identity_private))


def refusal(verifier: TokenVerifier, token: str | None, now: datetime = NOW) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token, now)
    return refused.value.message


def test_a_token_identity_signed_verifies_and_gives_back_its_claims(
    identity_private: str, verifier: TokenVerifier
) -> None:
    token = tokens.issue_for(
        identity_private,
        sub=RPPS,
        kind="professional",
        name="Claire Martin",
        profession="physician",
        specialty="cardiology",
        now=NOW,
        ttl=timedelta(hours=12),
    )

    claims = verifier.verify(token, NOW + timedelta(hours=11))

    assert (claims.sub, claims.kind, claims.name) == (RPPS, "professional", "Claire Martin")
    assert (claims.profession, claims.specialty) == ("physician", "cardiology")
    assert (claims.iat, claims.exp) == (NOW, NOW + timedelta(hours=12))


def test_a_token_is_a_jws_naming_its_key_with_every_registered_claim(
    identity_private: str,
) -> None:
    token = token_for(identity_private, sub=INS, kind="holder", now=NOW)

    header = json.loads(tokens.b64d(token.split(".")[0]))
    payload = json.loads(tokens.b64d(token.split(".")[1]))

    assert header["alg"] == "EdDSA"
    assert header["kid"] == json.loads(identity_private)["keys"][0]["kid"]
    assert payload["iss"] == tokens.DEFAULT_ISSUER
    assert payload["aud"] == tokens.AUDIENCE
    assert {"sub", "kind", "name", "iat", "exp", "jti"} <= payload.keys()


def test_a_missing_token_is_refused(verifier: TokenVerifier) -> None:
    assert "token is required" in refusal(verifier, None)
    assert "token is required" in refusal(verifier, "")


def test_garbage_is_refused_as_malformed(verifier: TokenVerifier) -> None:
    assert "malformed" in refusal(verifier, "not a token")
    assert "malformed" in refusal(verifier, "a.b.c")


def test_a_token_signed_by_an_unknown_key_is_refused(verifier: TokenVerifier) -> None:
    forged = token_for(key_set(new_signing_key()), sub=INS, kind="holder", now=NOW)

    assert "signed by an unknown key" in refusal(verifier, forged)


def test_a_token_forged_with_another_key_under_identitys_kid_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    kid = json.loads(identity_private)["keys"][0]["kid"]
    forged = token_for(key_set(new_signing_key(kid)), sub=INS, kind="holder", now=NOW)

    assert "signature is invalid" in refusal(verifier, forged)


def test_a_token_whose_claims_were_altered_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    header, _, signature = token_for(identity_private, sub=INS, kind="holder", now=NOW).split(".")
    altered = tokens.b64e(json.dumps(payload_for(NOW, kind="operator")).encode())

    assert "signature is invalid" in refusal(verifier, f"{header}.{altered}.{signature}")


def test_an_expired_token_is_refused_at_the_time_given(
    identity_private: str, verifier: TokenVerifier
) -> None:
    token = token_for(identity_private, sub=INS, kind="holder", now=NOW)

    assert "has expired" in refusal(verifier, token, NOW + timedelta(hours=1))


def test_expiry_follows_the_time_given_not_the_wall_clock(
    identity_private: str, verifier: TokenVerifier
) -> None:
    """The demo clock moves by years: a token from 1990 is valid in 1990, one from 2090 in 2090."""
    for then in (datetime(1990, 1, 1, tzinfo=UTC), datetime(2090, 1, 1, tzinfo=UTC)):
        token = token_for(identity_private, sub=INS, kind="holder", now=then)
        assert verifier.verify(token, then + timedelta(minutes=59)).sub == INS


def test_a_token_for_another_audience_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    for audience in ("another-system", [tokens.AUDIENCE, "another-system"]):
        token = signed_by_identity(identity_private, payload_for(NOW, aud=audience))
        assert "audience" in refusal(verifier, token)


def test_a_token_from_another_issuer_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    token = tokens.issue_for(
        identity_private,
        sub=INS,
        kind="holder",
        name="Sophie Leroy",
        now=NOW,
        ttl=timedelta(hours=1),
        issuer="https://identity.elsewhere.example",
    )

    assert "issuer" in refusal(verifier, token)


def test_an_unsigned_token_alg_none_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    token = unsigned(identity_private, payload_for(NOW))

    assert "algorithm 'none' is refused" in refusal(verifier, token)


def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    token = hs256_with_public_key(identity_private, payload_for(NOW))

    assert "algorithm 'HS256' is refused" in refusal(verifier, token)


def test_a_token_missing_a_registered_claim_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    for claim in ("iss", "aud", "exp", "jti"):
        token = signed_by_identity(identity_private, payload_for(NOW, **{claim: None}))
        assert f"no '{claim}' claim" in refusal(verifier, token)


def test_a_token_with_claims_identity_never_writes_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    for change in ({"kind": "administrator"}, {"name": 42}, {"role": "admin"}):
        token = signed_by_identity(identity_private, payload_for(NOW, **change))
        assert "claims are malformed" in refusal(verifier, token)


def test_during_a_rotation_tokens_of_the_old_and_the_new_key_both_verify() -> None:
    old, new = new_signing_key(), new_signing_key()
    by_old = token_for(key_set(old), sub=INS, kind="holder", now=NOW)
    by_new = token_for(key_set(new, old), sub=INS, kind="holder", now=NOW)

    verifier = TokenVerifier(public_jwks(key_set(new, old)))

    assert verifier.verify(by_old, NOW).sub == verifier.verify(by_new, NOW).sub == INS


def test_once_the_old_key_is_removed_its_tokens_are_refused() -> None:
    old, new = new_signing_key(), new_signing_key()
    by_old = token_for(key_set(old), sub=INS, kind="holder", now=NOW)

    verifier = TokenVerifier(public_jwks(key_set(new)))

    assert "signed by an unknown key" in refusal(verifier, by_old)


def test_identity_signs_with_the_first_key_of_its_set() -> None:
    first, second = new_signing_key("2031-05"), new_signing_key("2030-11")
    token = token_for(key_set(first, second), sub=INS, kind="holder", now=NOW)

    assert json.loads(tokens.b64d(token.split(".")[0]))["kid"] == "2031-05"


def test_the_published_jwks_holds_every_key_without_its_private_part() -> None:
    first, second = new_signing_key(), new_signing_key()

    published = json.loads(public_jwks(key_set(first, second)))["keys"]

    assert [key["kid"] for key in published] == [first["kid"], second["kid"]]
    assert all(key.keys() == {"kty", "crv", "x", "kid", "use", "alg"} for key in published)
    assert [key["x"] for key in published] == [first["x"], second["x"]]


def test_services_refuse_a_jwks_that_holds_a_private_key() -> None:
    with pytest.raises(ValueError, match="is private"):
        TokenVerifier(key_set(new_signing_key()))


def test_services_refuse_a_jwks_that_is_not_one() -> None:
    for document in ("", "{}", '{"keys": []}', '{"keys": [{"kty": "RSA", "kid": "a"}]}'):
        with pytest.raises(ValueError):
            TokenVerifier(document)


def test_identity_refuses_to_start_signing_with_a_key_it_does_not_publish() -> None:
    signing, other = key_set(new_signing_key()), key_set(new_signing_key())

    with pytest.raises(ValueError, match="not in IDENTITY_JWKS"):
        IdentitySettings(identity_signing_keys=signing, identity_jwks=public_jwks(other))
    IdentitySettings(identity_signing_keys=signing, identity_jwks=public_jwks(signing))


def test_the_jwks_command_prints_the_public_set_of_identitys_signing_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = key_set(new_signing_key(), new_signing_key())
    monkeypatch.setenv("IDENTITY_SIGNING_KEYS", signing)

    tokens.main(["jwks"])

    assert capsys.readouterr().out.strip() == public_jwks(signing)


def test_the_new_key_command_prints_a_set_of_one_fresh_signing_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tokens.main(["new-key"])

    (key,) = json.loads(capsys.readouterr().out)["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert {"d", "x", "kid"} <= key.keys()


def test_a_token_verified_before_still_expires_and_a_copy_altered_after_is_refused(
    identity_private: str, verifier: TokenVerifier
) -> None:
    """The verifier remembers tokens it has verified (a session sends the same one each time):
    a remembered token is still refused once expired, and what is remembered is the token's
    exact text, so altering a verified token is checked, and refused, as any other."""
    token = token_for(identity_private, sub=INS, kind="holder", now=NOW)
    assert verifier.verify(token, NOW).sub == INS
    assert verifier.verify(token, NOW + timedelta(minutes=59)).sub == INS  # remembered
    assert "has expired" in refusal(verifier, token, NOW + timedelta(hours=1))
    header, _, signature = token.split(".")
    altered = tokens.b64e(json.dumps(payload_for(NOW, kind="operator")).encode())
    assert "signature is invalid" in refusal(verifier, f"{header}.{altered}.{signature}")


def test_the_verifier_remembers_a_bounded_number_of_tokens(identity_private: str) -> None:
    verifier = TokenVerifier(public_jwks(identity_private))
    for i in range(tokens.VERIFIED_TOKENS_KEPT + 10):
        verifier.verify(token_for(identity_private, sub=f"1{i:014d}", kind="holder", now=NOW), NOW)
    assert len(verifier._verified) == tokens.VERIFIED_TOKENS_KEPT
