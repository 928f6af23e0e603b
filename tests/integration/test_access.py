"""access against real PostgreSQL and RabbitMQ: decisions, traces, events, history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs import spaces
from libs.bus import topology
from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.events import SpaceClosed, SpaceOpened
from libs.runtime import Runtime
from tests.support import infra
from tests.support.bus import EventTap, publish_event
from tests.support.people import new_nir, new_rpps
from tests.support.system import Keys, build_service
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def access(settings_values: dict[str, Any]) -> AsyncIterator[Runtime]:
    runtime = build_service("access", settings_values)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def open_space(access: Runtime, amqp_url: str) -> str:
    ins = new_nir()
    await publish_event(
        amqp_url,
        SpaceOpened(ins=ins, opened_at=access.now()),
        holder_key=ins,
        occurred_at=access.now(),
    )
    async with asyncio.timeout(10):
        while True:
            async with access.pool.acquire() as conn:
                if await spaces.status(conn, ins) == "open":
                    return ins
            await asyncio.sleep(0.05)


async def space_and_professional(
    access: Runtime, keys: Keys, amqp_url: str, profession: str = "physician"
) -> tuple[str, str, str, str]:
    """An open space, a professional, and their tokens: (ins, rpps, holder token, pro token)."""
    ins = await open_space(access, amqp_url)
    rpps = new_rpps()
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    pro = token_for(
        keys.identity_private,
        sub=rpps,
        kind="professional",
        profession=profession,
        now=access.now(),
    )
    return ins, rpps, holder, pro


@pytest.fixture(scope="module")
async def deciding(amqp_url: str) -> AsyncIterator[RpcClient]:
    """access.decide as the services call it: as a service, through dmp.internal."""
    rpc = RpcClient(
        infra.party_url(amqp_url, "dossier"),
        name="tests.as-dossier",
        timeout=10.0,
        exchange=topology.INTERNAL_EXCHANGE,
    )
    await rpc.connect()
    yield rpc
    await rpc.close()


async def decide(
    rpc: RpcClient, token: str, ins: str, action: str = "read", **extra: Any
) -> dict[str, Any]:
    return await rpc.call(
        "access.decide", "Decide", {"ins": ins, "action": action, **extra}, token=token
    )


async def test_authorized_professional_is_granted_traced_and_published__ACC_05__ACC_03(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins, rpps, holder, pro = await space_and_professional(access, keys, amqp_url)
    async with EventTap(amqp_url, "access.#") as tap:
        await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
        decision = await decide(deciding, pro, ins)
        granted = await tap.wait_for("AccessGranted", ins=ins)
        logged = await tap.wait_for("AccessLogged", ins=ins)
    assert decision["granted"] and decision["rule"] == "ACC_05"
    assert granted[0]["payload"]["decision_id"] == decision["decision_id"]
    assert logged[0]["payload"]["outcome"] == "granted"
    assert logged[0]["payload"]["actor_id"] == rpps


async def test_unauthorized_professional_is_denied_with_the_rule_named__ACC_18(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    stranger = token_for(
        keys.identity_private,
        sub=new_rpps(),
        kind="professional",
        profession="physician",
        now=access.now(),
    )
    async with EventTap(amqp_url, "access.#") as tap:
        decision = await decide(deciding, stranger, ins)
        denied = await tap.wait_for("AccessDenied", ins=ins)
        await tap.wait_for("AccessLogged", ins=ins, outcome="denied")
    assert not decision["granted"]
    assert decision["rule"] == "ACC_05" and decision["reason"]
    assert denied[0]["payload"]["rule"] == "ACC_05"


async def test_blocked_professional_is_denied__ACC_08(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins, rpps, holder, pro = await space_and_professional(access, keys, amqp_url)
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    await client.rpc.call(
        "access.commands", "BlockProfessional", {"ins": ins, "rpps": rpps}, token=holder
    )
    decision = await decide(deciding, pro, ins, "deposit", document_type="lab_report")
    assert (decision["granted"], decision["rule"]) == (False, "ACC_08")
    permissions = await client.rpc.call(
        "access.commands", "ListPermissions", {"ins": ins}, token=holder
    )
    assert [b["rpps"] for b in permissions["blocked"]] == [rpps]


async def test_holder_reads_access_history_newest_first_paginated__ACC_03(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    actors = [new_rpps() for _ in range(5)]
    for rpps in actors:
        token = token_for(
            keys.identity_private,
            sub=rpps,
            kind="professional",
            profession="nurse",
            now=access.now(),
        )
        await decide(deciding, token, ins)
    first = await client.send(cmd.ListAccessHistory(ins=ins, page_size=3), token=holder)
    assert first.next_cursor is not None
    second = await client.send(
        cmd.ListAccessHistory(ins=ins, page_size=3, cursor=first.next_cursor), token=holder
    )
    assert second.next_cursor is None
    assert [t.actor_id for t in first.traces + second.traces] == list(reversed(actors))
    assert all(t.outcome == "denied" and t.rule == "ACC_05" for t in first.traces)

    other = token_for(keys.identity_private, sub=new_nir(), kind="holder", now=access.now())
    with pytest.raises(RpcError) as refused:
        await client.send(cmd.ListAccessHistory(ins=ins), token=other)
    assert refused.value.code == "forbidden"


async def test_closed_space_denies_everyone__ACC_17(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins, rpps, holder, pro = await space_and_professional(access, keys, amqp_url)
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    assert (await decide(deciding, pro, ins))["granted"]
    await publish_event(
        amqp_url,
        SpaceClosed(ins=ins, closed_at=access.now(), requested_by="holder"),
        holder_key=ins,
        occurred_at=access.now(),
    )
    async with asyncio.timeout(10):
        while (await decide(deciding, pro, ins))["granted"]:
            await asyncio.sleep(0.05)
    for token in (pro, holder):
        decision = await decide(deciding, token, ins)
        assert (decision["granted"], decision["rule"]) == (False, "ACC_17")


async def test_forged_token_gets_a_clear_error_not_a_decision(
    access: Runtime, client: Client, deciding: RpcClient, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    with pytest.raises(RpcError) as refused:
        await decide(deciding, "forged.token", ins)
    assert refused.value.code == "unauthenticated"


async def test_a_client_cannot_reach_the_decision_point_directly(
    access: Runtime, client: Client, keys: Keys, amqp_url: str
) -> None:
    """Only services ask access.decide: a client's request has no route to it."""
    ins, _, _, pro = await space_and_professional(access, keys, amqp_url)
    with pytest.raises(RpcError) as refused:
        await client.rpc.call("access.decide", "Decide", {"ins": ins, "action": "read"}, token=pro)
    assert refused.value.code == "unavailable"


async def test_the_decision_point_answers_only_services(
    access: Runtime, keys: Keys, amqp_url: str
) -> None:
    """Even through a path a client cannot take, a non-service caller gets no decision."""
    ins, _, _, pro = await space_and_professional(access, keys, amqp_url)
    # ops may publish to the default exchange, which reaches any queue by its name.
    ops = RpcClient(infra.party_url(amqp_url, "ops"), name="tests.as-ops", exchange="")
    await ops.connect()
    try:
        with pytest.raises(RpcError) as refused:
            await ops.call("access.decide", "Decide", {"ins": ins, "action": "read"}, token=pro)
        assert refused.value.code == "forbidden"
    finally:
        await ops.close()


async def test_a_decision_is_replayed_for_its_retries_only_never_past_a_revocation(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    """The same request id within minutes: the first decision, one trace. Later, the old grant
    is not replayed (it could outrun a revocation): the id is refused as expired."""
    ins, rpps, holder, pro = await space_and_professional(access, keys, amqp_url)
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    ask = {"ins": ins, "action": "read"}
    first = await deciding.call("access.decide", "Decide", ask, token=pro, request_id="read-0001")
    again = await deciding.call("access.decide", "Decide", ask, token=pro, request_id="read-0001")
    assert again == first and first["granted"]
    async with access.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM traces WHERE ins = $1", ins) == 1
        await conn.execute(
            "UPDATE requests SET created_at = created_at - interval '6 minutes'"
            " WHERE request_key LIKE '%|read-0001'"
        )
    with pytest.raises(RpcError) as expired:
        await deciding.call("access.decide", "Decide", ask, token=pro, request_id="read-0001")
    assert expired.value.code == "request_id_expired"
