"""A request's fingerprint tells a retry from another request under the same id; a deposit's
is hashed a slice at a time, and must be the digest the whole canonical JSON gives (a retry
across an upgrade is still recognised)."""

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from libs.uow import fingerprint

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# Long enough to be sliced, with what JSON escapes: quotes, controls, accents, astral characters.
_long = st.lists(st.sampled_from(['"', "\\", "\n", "\x01", "é", "😀", "A", "/"]), min_size=1).map(
    lambda pieces: "".join(pieces) * (70_000 // len(pieces) + 1)
)


def _whole(command: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps([command, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@given(st.text(), st.dictionaries(st.text(), _json, max_size=4), _long, st.text())
def test_a_document_sliced_gives_the_digest_of_the_whole_request(
    command: str, payload: dict[str, Any], document: str, name: str
) -> None:
    payload = {**payload, name: document}
    assert fingerprint(command, payload) == _whole(command, payload)


@given(st.text(), st.dictionaries(st.text(), _json, max_size=4))
def test_a_small_request_gives_the_digest_of_its_canonical_json(
    command: str, payload: dict[str, Any]
) -> None:
    assert fingerprint(command, payload) == _whole(command, payload)


def test_requests_differing_only_in_their_document_differ() -> None:
    base = "QUJD" * 50_000
    assert fingerprint("DepositDocument", {"content_b64": base}) != fingerprint(
        "DepositDocument", {"content_b64": base[:-4] + "QUJE"}
    )
