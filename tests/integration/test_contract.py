"""The contract as the runtime enforces it, on the real broker and database: names and versions,
typed replies (a reply that drifts from its type is never sent), and refusals with their rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.bus.rpc import RpcClient, RpcError
from libs.contracts.envelope import Contract
from libs.contracts.rpc import Command, ErrorCode
from libs.errors import Forbidden
from libs.runtime import CommandContext, Runtime
from tests.support.probe_harness import probe_serving

pytestmark = pytest.mark.integration

QUEUE = "probe.commands"


class Counted(Contract):
    count: int


class Count(Command[Counted]):
    QUEUE = QUEUE
    AUTHENTICATED = False

    items: list[str]


class CountV2(Command[Counted]):
    QUEUE = QUEUE
    NAME = "Count"
    VERSION = 2
    AUTHENTICATED = False

    items: list[str]
    distinct: bool = False


class Drift(Command[Counted]):
    """Its use case answers in a shape its reply type does not have."""

    QUEUE = QUEUE
    AUTHENTICATED = False


class Refuse(Command[Counted]):
    QUEUE = QUEUE
    AUTHENTICATED = False


async def count(_ctx: CommandContext, c: Count) -> Counted:
    return Counted(count=len(c.items))


async def count_v2(_ctx: CommandContext, c: CountV2) -> Counted:
    return Counted(count=len(set(c.items)) if c.distinct else len(c.items))


async def drift(_ctx: CommandContext, _c: Drift) -> dict[str, Any]:
    return {"count": "many", "patient_name": "Sophie Leroy"}


async def refuse(_ctx: CommandContext, _c: Refuse) -> Counted:
    raise Forbidden("refused by rule ACC_08: blocked", code=ErrorCode.ACCESS_DENIED, rule="ACC_08")


@pytest.fixture(scope="module")
async def rpc(settings_values: dict[str, Any]) -> AsyncIterator[RpcClient]:
    def register(runtime: Runtime) -> None:
        runtime.handle(Count, count)
        runtime.handle(CountV2, count_v2)
        runtime.handle(Drift, drift)
        runtime.handle(Refuse, refuse)

    async with probe_serving(settings_values, register, name="contract") as client:
        yield client


async def test_each_version_of_a_command_is_served_by_its_own_contract(rpc: RpcClient) -> None:
    assert await rpc.send(Count(items=["a", "a", "b"])) == Counted(count=3)
    assert await rpc.send(CountV2(items=["a", "a", "b"], distinct=True)) == Counted(count=2)


async def test_an_unknown_version_or_name_is_refused_saying_which(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as refused:
        await rpc.call(QUEUE, "Count", {"items": []}, version=3)
    assert refused.value.code == ErrorCode.UNSUPPORTED_VERSION
    assert "versions served: 1, 2" in refused.value.message
    with pytest.raises(RpcError) as unknown:
        await rpc.call(QUEUE, "Tally", {})
    assert unknown.value.code == ErrorCode.UNKNOWN_COMMAND


async def test_a_reply_that_drifts_from_its_type_is_never_sent(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as failed:
        await rpc.send(Drift())
    assert failed.value.code == ErrorCode.INTERNAL_ERROR
    assert "Sophie" not in failed.value.message


async def test_a_refusal_carries_the_rule_that_refused__ACC_18(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as refused:
        await rpc.send(Refuse())
    assert (refused.value.code, refused.value.rule) == (ErrorCode.ACCESS_DENIED, "ACC_08")
