"""hypothesis strategies for hostile input: what a careless or malicious client would send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from libs.contracts.rpc import Request
from libs.tokens import b64e, key_set, new_signing_key
from tests.hostile.catalog import HOLDER_INS, Target
from tests.support.tokens import (
    hs256_with_public_key,
    payload_for,
    signed_by_identity,
    token_for,
    unsigned,
)

# Digits Python's `\d` and `int()` accept but an identifier must not: full-width, Arabic-Indic,
# Persian, Devanagari, mathematical bold.
FOREIGN_DIGITS = ("０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")
# A few MB at most: big enough to be refused by every bound, small enough to keep the suite fast.
HUGE = st.integers(min_value=100_000, max_value=3_000_000)

wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
controls = st.text(
    alphabet=st.characters(categories=["Cc", "Cf", "Co", "Zl", "Zp"]), min_size=1, max_size=4
)


def with_foreign_digits(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from(FOREIGN_DIGITS).map(
        lambda digits: value.translate(str.maketrans("0123456789", digits))
    )


def huge_text() -> st.SearchStrategy[str]:
    return st.tuples(HUGE, st.sampled_from(["A", "é", "7", "\x00", "\u202e"])).map(
        lambda t: t[1] * t[0]
    )


def hostile_text(like: str | None) -> st.SearchStrategy[Any]:
    """A hostile stand-in for a field whose legitimate value is `like`."""
    options = [
        wrong_types,
        huge_text(),
        st.text(max_size=40),
        st.tuples(st.text(max_size=8), controls, st.text(max_size=8)).map("".join),
    ]
    if isinstance(like, str):
        options += [
            st.tuples(st.just(like), controls).map("".join),
            st.just(like + "\x00"),
            st.just(like[:3] + "\ud800" + like[3:]),  # a lone surrogate
            st.just(" " + like + "\n"),
        ]
        if any(c.isdigit() for c in like):
            options.append(with_foreign_digits(like))
    return st.one_of(*options)


def hostile_payloads(target: Target) -> st.SearchStrategy[Any]:
    """Payloads for `target`: not an object, a field missing, unknown, or hostile."""
    template = target.template
    fields = sorted({*template, *target.model.model_fields})
    required = sorted(n for n, f in target.model.model_fields.items() if f.is_required())

    def mutated(name: str) -> st.SearchStrategy[dict[str, Any]]:
        return hostile_text(template.get(name)).map(lambda v: {**template, name: v})

    options = [
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers())),
        st.text(min_size=1, max_size=20)
        .filter(lambda n: n not in fields)
        .map(lambda n: {**template, n: "x"}),
    ]
    if fields:  # a command may have none (GetSigningKeys): then only the above apply
        options.append(st.sampled_from(fields).flatmap(mutated))
    if required:
        options.append(
            st.sampled_from(required).map(lambda n: {k: v for k, v in template.items() if k != n})
        )
    return st.one_of(*options)


def refused_by_contract(target: Target, body: bytes) -> bool:
    """Whether the runtime refuses `body` before any handler runs (as `_run_command` checks)."""
    try:
        request = Request.model_validate_json(body)
        target.model.model_validate(request.payload)
    except ValidationError:
        return True
    return False


def hostile_tokens(identity_private: str) -> st.SearchStrategy[Any]:
    """Tokens nobody should be let in with: absent, garbage, forged, expired, tampered, unsigned
    or HMAC-signed, for another audience or from another issuer."""
    now = datetime.now(UTC)
    forged = token_for(key_set(new_signing_key()), sub=HOLDER_INS, kind="holder", now=now)
    expired = token_for(
        identity_private, sub=HOLDER_INS, kind="holder", now=now - timedelta(days=2)
    )
    genuine = token_for(identity_private, sub=HOLDER_INS, kind="operator", now=now)
    header, claims, signature = genuine.split(".")
    wanted = payload_for(now, sub=HOLDER_INS, kind="operator")
    return st.one_of(
        st.none(),
        st.just(""),
        st.just(forged),
        st.just(expired),
        st.just(f"{header}.{claims}.{signature[::-1]}"),  # tampered signature
        st.just(f"{header}.{b64e(b'{}')}.{signature}"),  # claims swapped under the signature
        st.just(unsigned(identity_private, wanted)),
        st.just(hs256_with_public_key(identity_private, wanted)),
        st.just(signed_by_identity(identity_private, {**wanted, "aud": "another-system"})),
        st.just(signed_by_identity(identity_private, {**wanted, "iss": "https://elsewhere"})),
        st.text(max_size=60),
        st.tuples(st.text(max_size=20), st.text(max_size=20)).map(".".join),
        huge_text(),
        st.tuples(st.just(genuine), controls).map("".join),
        wrong_types.filter(lambda v: v is not None),
    )


def malformed_requests(commands: set[str]) -> st.SearchStrategy[bytes]:
    """Request bodies no command queue can take: broken bytes, wrong shapes, unknown names."""

    def request(**fields: Any) -> bytes:
        body: dict[str, Any] = {"command": "Ping", "correlation_id": "hostile", "payload": {}}
        body.update(fields)
        return json.dumps({k: v for k, v in body.items() if v is not _MISSING}).encode()

    valid = request()
    names = st.one_of(
        st.text(max_size=30),
        st.sampled_from(sorted(commands)).flatmap(
            lambda n: st.sampled_from(
                [n.lower(), n.upper(), f" {n}", f"{n}\x00", f"{n}\n", n.replace("i", "\u0131")]
            )
        ),
        huge_text(),
    ).filter(lambda n: n not in commands)
    return st.one_of(
        st.binary(max_size=300),
        st.integers(min_value=1, max_value=len(valid) - 1).map(lambda i: valid[:i]),
        st.just(b"\xff" + valid),
        st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=20), st.integers()).map(
            lambda v: json.dumps(v).encode()
        ),
        names.map(lambda n: request(command=n)),
        wrong_types.filter(lambda v: not isinstance(v, str)).map(lambda v: request(command=v)),
        st.sampled_from(["command", "correlation_id"]).map(lambda f: request(**{f: _MISSING})),
        wrong_types.filter(lambda v: not isinstance(v, str)).map(
            lambda v: request(correlation_id=v)
        ),
        wrong_types.filter(lambda v: v is not None and not isinstance(v, str)).map(
            lambda v: request(token=v)
        ),
        wrong_types.filter(lambda v: not isinstance(v, dict)).map(lambda v: request(payload=v)),
        st.text(min_size=1, max_size=10)
        .filter(lambda k: k not in Request.model_fields)
        .map(lambda k: request(**{k: 1})),
    )


_MISSING: Any = object()
