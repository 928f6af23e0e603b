"""A request's claim commits with its effects, and a second copy replays the first reply
(`libs.uow`), whether its key goes with the transaction's BEGIN or in a statement of its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from libs import db
from libs.runtime import Runtime
from libs.uow import AlreadyAnswered, RequestKey, unit_of_work

pytestmark = pytest.mark.integration

# A caller or subject with characters `libs.db.literal` refuses: its claim is parameterised.
KEYS = {"plain": "dossier|professional:10000000001", "not plain": "o'brien|holder:x y"}


def _request(scope: str) -> RequestKey:
    return RequestKey.of(scope, uuid.uuid4().hex, "TestCommand", {"n": 1})


async def _run(identity: Runtime, request: RequestKey, reply: dict[str, int]) -> None:
    async with unit_of_work(
        identity.pool, correlation_id="test", now=datetime.now(UTC), request=request
    ) as uow:
        uow.answer(reply)


@pytest.mark.parametrize("scope", KEYS.values(), ids=KEYS.keys())
async def test_a_request_done_once_replays_its_reply_and_a_failed_one_leaves_no_claim(
    identity: Runtime, scope: str
) -> None:
    request = _request(scope)
    assert db.plain(request.key) == (scope == KEYS["plain"])
    with pytest.raises(RuntimeError):
        async with unit_of_work(
            identity.pool, correlation_id="test", now=datetime.now(UTC), request=request
        ):
            raise RuntimeError("the use case failed")
    assert not await identity.pool.fetchval(
        "SELECT true FROM requests WHERE request_key = $1", request.key
    )
    await _run(identity, request, {"n": 1})
    with pytest.raises(AlreadyAnswered) as replayed:
        await _run(identity, request, {"n": 2})
    assert replayed.value.reply == {"n": 1}
    async with identity.pool.acquire() as conn:
        assert not conn.is_in_transaction()
