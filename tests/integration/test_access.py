"""access against real PostgreSQL and RabbitMQ: decisions, traces, events, history."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from libs import spaces
from libs.bus import topology
from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.events import (
    CareTeamDeclared,
    CareTeamEnded,
    CatalogueServiceDereferenced,
    CatalogueServiceReferenced,
    SpaceClosed,
    SpaceOpened,
    StaffJoined,
    StaffLeft,
    TreatingPhysicianDeclared,
)
from libs.runtime import Runtime
from services.access import verify_traces
from tests.support import infra
from tests.support.bus import EventTap, publish_event
from tests.support.people import new_finess, new_nir, new_rpps
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


# --- every actor the law names, with identity's facts published as identity publishes them -----


async def tell(access: Runtime, amqp_url: str, event: Any, key: str | None = None) -> None:
    """Publish identity's fact and wait until access has taken it in (its inbox has it)."""
    event_id = await publish_event(
        amqp_url, event, holder_key=key or getattr(event, "ins", ""), occurred_at=access.now()
    )
    async with asyncio.timeout(10):
        while True:
            async with access.pool.acquire() as conn:
                if await conn.fetchval("SELECT true FROM inbox WHERE message_id = $1", event_id):
                    return
            await asyncio.sleep(0.05)


def pro_token(
    access: Runtime, keys: Keys, rpps: str, profession: str = "physician", **c: Any
) -> str:
    return token_for(
        keys.identity_private,
        sub=rpps,
        kind="professional",
        profession=profession,
        now=access.now(),
        **c,
    )


async def test_a_care_team_member_reads_while_the_episode_lasts__ACC_06(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    nurse, outsider = new_rpps(), new_rpps()
    episode = uuid.uuid4()
    await tell(
        access,
        amqp_url,
        CareTeamDeclared(
            episode_id=episode,
            ins=ins,
            finess=new_finess(),
            members=[nurse],
            starts_at=access.now(),
            ends_at=None,
        ),
    )
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    seen = await client.send(cmd.ListPermissions(ins=ins), token=holder)
    assert [(t.episode_id, t.members) for t in seen.care_teams] == [(episode, [nurse])]
    decision = await decide(deciding, pro_token(access, keys, nurse, "nurse"), ins)
    assert (decision["granted"], decision["rule"], decision["include_masked"]) == (
        True,
        "ACC_06",
        False,
    )
    assert "imaging_report" not in decision["document_types"]  # still the nurse's matrix row
    other = await decide(deciding, pro_token(access, keys, outsider), ins)
    assert (other["granted"], other["rule"]) == (False, "ACC_05")  # members by name only
    await tell(access, amqp_url, CareTeamEnded(episode_id=episode, ins=ins, ended_at=access.now()))
    after = await decide(deciding, pro_token(access, keys, nurse, "nurse"), ins)
    assert (after["granted"], after["rule"]) == (False, "ACC_05")
    assert (await client.send(cmd.ListPermissions(ins=ins), token=holder)).care_teams == []


async def test_the_holder_lets_an_establishment_in_and_blocks_it__ACC_08__ACC_14(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    finess, doctor, treating = new_finess(), new_rpps(), new_rpps()
    for rpps in (doctor, treating):
        await tell(
            access,
            amqp_url,
            StaffJoined(finess=finess, rpps=rpps, at=access.now()),
            key=f"finess:{finess}",
        )
    await tell(
        access, amqp_url, TreatingPhysicianDeclared(ins=ins, rpps=treating, since=access.now())
    )
    until = access.now() + timedelta(days=30)
    await client.send(cmd.AuthorizeEstablishment(ins=ins, finess=finess, until=until), token=holder)
    granted = await decide(deciding, pro_token(access, keys, doctor), ins)
    assert (granted["granted"], granted["rule"]) == (True, "ACC_05")

    await client.send(cmd.BlockEstablishment(ins=ins, finess=finess), token=holder)
    for action, extra in (("read", {}), ("deposit", {"document_type": "lab_report"})):
        blocked = await decide(deciding, pro_token(access, keys, doctor), ins, action, **extra)
        assert (blocked["granted"], blocked["rule"]) == (False, "ACC_08")
    still = await decide(deciding, pro_token(access, keys, treating), ins)
    assert (still["granted"], still["rule"]) == (True, "ACC_04")  # never blockable

    await client.send(cmd.UnblockEstablishment(ins=ins, finess=finess), token=holder)
    assert (await decide(deciding, pro_token(access, keys, doctor), ins))["granted"]
    await tell(
        access,
        amqp_url,
        StaffLeft(finess=finess, rpps=doctor, at=access.now()),
        key=f"finess:{finess}",
    )
    left = await decide(deciding, pro_token(access, keys, doctor), ins)
    assert (left["granted"], left["rule"]) == (False, "ACC_05")


async def test_the_samu_reads_in_an_emergency_unless_the_holder_objected__ACC_09(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    samu = pro_token(access, keys, new_rpps(), "regulating_physician")
    async with EventTap(amqp_url, "access.#") as tap:
        decision = await decide(deciding, samu, ins)
        logged = await tap.wait_for("AccessLogged", ins=ins)
    assert (decision["granted"], decision["rule"], decision["emergency"]) == (True, "ACC_09", True)
    assert not decision["include_masked"]
    assert logged[0]["payload"]["emergency"] is True  # the holder is told it was an emergency

    await client.send(cmd.SetEmergencyObjection(ins=ins, objected=True), token=holder)
    refused = await decide(deciding, samu, ins)
    assert (refused["granted"], refused["rule"]) == (False, "ACC_09")
    permissions = await client.send(cmd.ListPermissions(ins=ins), token=holder)
    assert permissions.emergency_objection
    await client.send(cmd.SetEmergencyObjection(ins=ins, objected=False), token=holder)
    assert (await decide(deciding, samu, ins))["granted"]


async def test_breaking_the_glass_needs_a_reason_opens_24_hours_and_the_holder_sees_why__ACC_09(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    rpps = new_rpps()
    doctor = pro_token(access, keys, rpps)
    no_reason = await decide(deciding, doctor, ins, emergency=True)
    assert (no_reason["granted"], no_reason["rule"]) == (False, "ACC_09")
    glass = await decide(deciding, doctor, ins, emergency=True, purpose="arrêt cardio-respiratoire")
    assert (glass["granted"], glass["emergency"], glass["include_masked"]) == (True, True, False)
    again = await decide(deciding, doctor, ins)  # within the 24 hours, no new reason needed
    assert (again["granted"], again["rule"]) == (True, "ACC_09")
    async with access.pool.acquire() as conn:
        window = await conn.fetchval(
            "SELECT until - started_at FROM emergency_accesses WHERE ins = $1", ins
        )
    assert window == timedelta(hours=24)
    history = await client.send(cmd.ListAccessHistory(ins=ins), token=holder)
    assert [t.purpose for t in history.traces if t.emergency] == [None, "arrêt cardio-respiratoire"]


async def test_an_occupational_physician_reads_only_with_express_consent__ACC_11(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    rpps = new_rpps()
    token = pro_token(access, keys, rpps, "occupational_physician")
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    plain = await decide(deciding, token, ins)
    assert (plain["granted"], plain["rule"]) == (False, "ACC_11")
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps, express=True), token=holder)
    express = await decide(deciding, token, ins)
    assert (express["granted"], express["rule"]) == (True, "ACC_11")
    assert "occupational_health" in express["document_types"]
    assert "lab_report" not in express["document_types"]


async def test_a_social_worker_reads_with_consent_and_only_their_part__ACC_12(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    rpps = new_rpps()
    token = pro_token(access, keys, rpps, "social_worker")
    assert (await decide(deciding, token, ins))["rule"] == "ACC_12"
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    decision = await decide(deciding, token, ins)
    assert (decision["granted"], decision["rule"]) == (True, "ACC_12")
    assert sorted(decision["document_types"]) == ["identity", "liaison_letter"]


async def test_a_catalogue_app_sees_the_chosen_categories_until_dereferenced__ACC_15(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    service_id = f"carnet-{uuid.uuid4().hex[:8]}"
    app = token_for(keys.identity_private, sub=service_id, kind="app", now=access.now())
    unknown = await decide(deciding, app, ins)
    assert (unknown["granted"], unknown["rule"]) == (False, "ACC_15")
    await tell(
        access,
        amqp_url,
        CatalogueServiceReferenced(
            service_id=service_id, categories=["vaccinations", "results"], at=access.now()
        ),
        key=f"app:{service_id}",
    )
    assert not (await decide(deciding, app, ins))["granted"]  # the holder chose nothing yet
    await client.send(
        cmd.SetAppAccess(
            ins=ins, service_id=service_id, categories=["vaccinations", "prescriptions"]
        ),
        token=holder,
    )
    decision = await decide(deciding, app, ins)
    assert (decision["granted"], decision["rule"], decision["document_types"]) == (
        True,
        "ACC_15",
        ["vaccination"],  # prescriptions: chosen, but not what the catalogue references it for
    )
    assert not (await decide(deciding, app, ins, "deposit", document_type="vaccination"))["granted"]
    permissions = await client.send(cmd.ListPermissions(ins=ins), token=holder)
    assert [(a.service_id, a.referenced) for a in permissions.apps] == [(service_id, True)]
    await tell(
        access,
        amqp_url,
        CatalogueServiceDereferenced(service_id=service_id, at=access.now()),
        key=f"app:{service_id}",
    )
    gone = await decide(deciding, app, ins)
    assert (gone["granted"], gone["rule"]) == (False, "ACC_15")


async def test_an_eu_professional_is_let_in_under_the_same_rules__ACC_16(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    rpps = f"DE-{uuid.uuid4().hex[:10]}"
    token = pro_token(access, keys, rpps, country="DE")
    assert (await decide(deciding, token, ins))["rule"] == "ACC_05"
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    granted = await decide(deciding, token, ins)
    assert (granted["granted"], granted["rule"]) == (True, "ACC_16")
    await client.send(cmd.BlockProfessional(ins=ins, rpps=rpps), token=holder)
    assert (await decide(deciding, token, ins))["rule"] == "ACC_08"


async def test_a_closed_space_takes_no_command_of_access_from_its_holder__ACC_17(
    access: Runtime, client: Client, keys: Keys, amqp_url: str
) -> None:
    ins, rpps, holder, _ = await space_and_professional(access, keys, amqp_url)
    await tell(
        access, amqp_url, SpaceClosed(ins=ins, closed_at=access.now(), requested_by="holder")
    )
    for command in (
        cmd.ListAccessHistory(ins=ins),
        cmd.ListPermissions(ins=ins),
        cmd.AuthorizeProfessional(ins=ins, rpps=rpps),
        cmd.SetEmergencyObjection(ins=ins, objected=True),
    ):
        with pytest.raises(RpcError) as refused:
            await client.send(command, token=holder)
        assert (refused.value.code, refused.value.rule) == ("space_closed", "ACC_17"), command


async def test_the_holder_sees_every_permission_and_changes_it_at_any_time__ACC_02(
    access: Runtime, client: Client, keys: Keys, amqp_url: str
) -> None:
    ins, rpps, holder, _ = await space_and_professional(access, keys, amqp_url)
    finess, other = new_finess(), new_finess()
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps, express=True), token=holder)
    await client.send(cmd.AuthorizeEstablishment(ins=ins, finess=finess), token=holder)
    await client.send(cmd.BlockEstablishment(ins=ins, finess=other), token=holder)
    await client.send(
        cmd.SetAppAccess(ins=ins, service_id="agenda", categories=["vaccinations"]), token=holder
    )
    await client.send(cmd.SetEmergencyObjection(ins=ins, objected=True), token=holder)
    seen = await client.send(cmd.ListPermissions(ins=ins), token=holder)
    assert [(a.rpps, a.express) for a in seen.authorized] == [(rpps, True)]
    assert [e.finess for e in seen.authorized_establishments] == [finess]
    assert [e.finess for e in seen.blocked_establishments] == [other]
    assert [(a.service_id, a.categories, a.referenced) for a in seen.apps] == [
        ("agenda", ["vaccinations"], False)
    ]
    assert seen.emergency_objection

    await client.send(cmd.RevokeEstablishmentAuthorization(ins=ins, finess=finess), token=holder)
    await client.send(cmd.UnblockEstablishment(ins=ins, finess=other), token=holder)
    await client.send(cmd.SetAppAccess(ins=ins, service_id="agenda", categories=[]), token=holder)
    await client.send(cmd.SetEmergencyObjection(ins=ins, objected=False), token=holder)
    await client.send(cmd.RevokeAuthorization(ins=ins, rpps=rpps), token=holder)
    assert await client.send(cmd.ListPermissions(ins=ins), token=holder) == cmd.Permissions(
        authorized=[], blocked=[]
    )
    stranger = token_for(keys.identity_private, sub=new_nir(), kind="holder", now=access.now())
    with pytest.raises(RpcError) as refused:
        await client.send(cmd.ListPermissions(ins=ins), token=stranger)
    assert refused.value.code == "forbidden"


async def test_a_consent_collected_for_another_professional_shows_who_and_why__ACC_05(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins, gp, holder, gp_token = await space_and_professional(access, keys, amqp_url)
    cardiologist, stranger = new_rpps(), new_rpps()
    collect = cmd.CollectConsent(
        ins=ins, rpps=cardiologist, reason_code="referral", reason="avis cardiologique"
    )
    with pytest.raises(RpcError) as refused:  # without access of their own: no
        await client.send(collect, token=pro_token(access, keys, stranger))
    assert refused.value.code == "access_denied"
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=gp), token=holder)
    await client.send(collect, token=gp_token)
    assert (await decide(deciding, pro_token(access, keys, cardiologist), ins))["granted"]
    seen = await client.send(cmd.ListPermissions(ins=ins), token=holder)
    collected = next(a for a in seen.authorized if a.rpps == cardiologist)
    assert (collected.collected_by, collected.reason_code, collected.reason) == (
        gp,
        "referral",
        "avis cardiologique",
    )
    history = await client.send(cmd.ListAccessHistory(ins=ins, actor_id=gp), token=holder)
    assert [(t.action, t.outcome) for t in history.traces] == [("collect_consent", "granted")]


async def test_the_holder_is_told_who_collected_a_consent_and_why_by_ids_and_codes__ACC_05(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    """AccessLogged carries for whom a consent was collected, and on each access resting on it
    who collected it, with the reason's code (never its free text): the notifier's alert says
    both."""
    ins, gp, holder, gp_token = await space_and_professional(access, keys, amqp_url)
    cardiologist = new_rpps()
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=gp), token=holder)
    async with EventTap(amqp_url, "access.#") as tap:
        await client.send(
            cmd.CollectConsent(
                ins=ins, rpps=cardiologist, reason_code="second_opinion", reason="avis rythmo"
            ),
            token=gp_token,
        )
        [collected] = await tap.wait_for("AccessLogged", ins=ins, action="collect_consent")
        assert (await decide(deciding, pro_token(access, keys, cardiologist), ins))["granted"]
        [used] = await tap.wait_for("AccessLogged", ins=ins, actor_id=cardiologist)
        await decide(deciding, gp_token, ins)  # the gp's own consent: nothing collected
        [own] = await tap.wait_for("AccessLogged", ins=ins, actor_id=gp, action="read")
    about = ("consent_for", "consent_collected_by", "consent_reason")
    assert [collected["payload"][k] for k in about] == [cardiologist, None, "second_opinion"]
    assert [used["payload"][k] for k in about] == [None, gp, "second_opinion"]
    assert [own["payload"][k] for k in about] == [None, None, None]
    assert "avis rythmo" not in str(collected) + str(used)


async def test_the_history_comes_by_keyset_by_actor_and_by_period__ACC_03(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    holder = token_for(keys.identity_private, sub=ins, kind="holder", now=access.now())
    actors = [new_rpps() for _ in range(3)]
    start = access.now()
    for _ in range(3):
        for rpps in actors:
            await decide(deciding, pro_token(access, keys, rpps, "nurse"), ins)
    seen: list[cmd.AccessTrace] = []
    cursor = None
    while True:
        page = await client.send(
            cmd.ListAccessHistory(ins=ins, page_size=4, cursor=cursor), token=holder
        )
        seen += page.traces
        if (cursor := page.next_cursor) is None:
            break
    assert len(seen) == 9 and len({t.trace_id for t in seen}) == 9
    assert [t.at for t in seen] == sorted((t.at for t in seen), reverse=True)
    mine = await client.send(cmd.ListAccessHistory(ins=ins, actor_id=actors[1]), token=holder)
    assert [t.actor_id for t in mine.traces] == [actors[1]] * 3
    none = await client.send(
        cmd.ListAccessHistory(ins=ins, until=start - timedelta(seconds=1)), token=holder
    )
    assert none.traces == []
    all_since = await client.send(cmd.ListAccessHistory(ins=ins, since=start), token=holder)
    assert len(all_since.traces) == 9
    with pytest.raises(RpcError) as bad:
        await client.send(cmd.ListAccessHistory(ins=ins, cursor="bm90LWEtY3Vyc29y"), token=holder)
    assert bad.value.code == "invalid_input"


async def test_traces_cannot_be_rewritten_and_an_edit_or_deletion_is_found__ACC_03(
    access: Runtime, deciding: RpcClient, keys: Keys, amqp_url: str, database_url: str
) -> None:
    ins = await open_space(access, amqp_url)
    tokens = [pro_token(access, keys, new_rpps()) for _ in range(4)]
    # Decisions at once for one holder (as several replicas would take them): one chain.
    await asyncio.gather(*(decide(deciding, t, ins) for t in tokens * 3))
    assert await verify_traces.main(["--ins", ins, "--database-url", database_url]) == 0
    async with access.pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT array_agg(seq ORDER BY seq) FROM traces WHERE ins = $1", ins
        ) == list(range(1, 13))
        # The service's own connection cannot change or delete a trace.
        for statement in (
            "UPDATE traces SET actor_name = 'X' WHERE ins = $1",
            "DELETE FROM traces WHERE ins = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, ins)
    # Someone with the database's keys goes round the trigger: verification finds them out.
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("SET session_replication_role = replica")  # triggers off
        await admin.execute(
            "UPDATE access.traces SET actor_name = 'Quelqu''un' WHERE ins = $1 AND seq = 5", ins
        )
        report = await verify_traces.verify_traces(access.pool, [ins])
        assert [(b.seq, "altered" in b.problem) for b in report.breaks] == [(5, True)]
        await admin.execute(
            "UPDATE access.traces SET actor_name = $2 WHERE ins = $1 AND seq = 5",
            ins,
            "Claire Martin",
        )
        assert (await verify_traces.verify_traces(access.pool, [ins])).breaks == []
        await admin.execute("DELETE FROM access.traces WHERE ins = $1 AND seq = 9", ins)
        report = await verify_traces.verify_traces(access.pool, [ins])
        assert [(b.seq, "missing" in b.problem) for b in report.breaks] == [(9, True)]
        assert await verify_traces.main(["--ins", ins, "--database-url", database_url]) == 1
    finally:
        await admin.close()


async def _command(*args: str, **env: str) -> tuple[int, str]:
    done = await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await done.communicate()
    assert done.returncode is not None
    return done.returncode, out.decode()


async def test_a_backup_restored_with_pg_restore_is_migrated_and_its_traces_verify__ACC_03(
    access: Runtime, deciding: RpcClient, keys: Keys, amqp_url: str, database_url: str
) -> None:
    """The guide's restore (deploy/README.md): `pg_dump -Fc` of the database, `pg_restore` into
    a new one, `python -m libs.migrate`, then `python -m services.access.verify_traces`: the
    restored chains verify as the originals do, holder by holder and all together."""
    ins = await open_space(access, amqp_url)
    await asyncio.gather(
        *(decide(deciding, pro_token(access, keys, new_rpps()), ins) for _ in "abc")
    )
    restored_name = f"restored_{uuid.uuid4().hex[:10]}"
    restored = infra.with_database(database_url, restored_name)
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{restored_name}"')
        with tempfile.TemporaryDirectory() as folder:
            dump = os.path.join(folder, "dmp.dump")
            code, out = await _command("pg_dump", "-Fc", "-f", dump, "-d", database_url)
            assert code == 0, out
            code, out = await _command("pg_restore", "--exit-on-error", "-d", restored, dump)
            assert code == 0, out
        code, out = await _command(
            sys.executable,
            "-m",
            "libs.migrate",
            "access",
            DATABASE_ADMIN_URL=restored,
            DB_ROLE_PREFIX=infra.db_prefix(database_url),
        )
        assert code == 0, out
        verify = (sys.executable, "-m", "services.access.verify_traces")
        code, out = await _command(*verify, "--ins", ins, DATABASE_URL=restored)
        assert (code, out.strip()) == (0, "1 holders, 3 traces checked, 0 broken")
        # Every holder: the restored copy says what the original says (other tests break some
        # chains on purpose, which the copy must keep showing).
        original = await _command(*verify, DATABASE_URL=database_url)
        assert await _command(*verify, DATABASE_URL=restored) == original
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)')
        await admin.close()


async def test_every_decision_leaves_exactly_one_trace_and_one_access_logged__ACC_03__ACC_18(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    """A random mix of actors and relations: as many traces and AccessLogged as decisions."""
    rng = random.Random(8)
    ins, rpps, holder, _ = await space_and_professional(access, keys, amqp_url)
    await client.send(cmd.AuthorizeProfessional(ins=ins, rpps=rpps), token=holder)
    tokens = [
        holder,
        pro_token(access, keys, rpps),
        pro_token(access, keys, new_rpps(), "regulating_physician"),
        pro_token(access, keys, new_rpps(), "pharmacist"),
        pro_token(access, keys, new_rpps(), "administrative_staff"),
        token_for(keys.identity_private, sub="agenda", kind="app", now=access.now()),
        token_for(keys.identity_private, sub=new_nir(), kind="holder", now=access.now()),
    ]
    asks = [
        (rng.choice(tokens), rng.choice(["read", "deposit", "message", "read_history"]))
        for _ in range(30)
    ]
    async with EventTap(amqp_url, "access.#") as tap:
        decisions = await asyncio.gather(
            *(decide(deciding, t, ins, a, document_type="lab_report") for t, a in asks)
        )
        await tap.wait_for("AccessLogged", ins=ins, count=30)
        await asyncio.sleep(0.5)
        logged = tap.of_type("AccessLogged", ins=ins)
    async with access.pool.acquire() as conn:
        traced = await conn.fetch("SELECT decision_id FROM traces WHERE ins = $1", ins)
    ids = sorted(d["decision_id"] for d in decisions)
    assert sorted(str(r["decision_id"]) for r in traced) == ids
    assert sorted(e["payload"]["decision_id"] for e in logged) == ids


async def test_at_the_holders_request_the_treating_physician_does_what_the_holder_does__ACC_04(
    access: Runtime, client: Client, deciding: RpcClient, keys: Keys, amqp_url: str
) -> None:
    ins, gp, holder, gp_token = await space_and_professional(access, keys, amqp_url)
    await tell(access, amqp_url, TreatingPhysicianDeclared(ins=ins, rpps=gp, since=access.now()))
    specialist = new_rpps()
    authorize = cmd.AuthorizeProfessional(ins=ins, rpps=specialist)
    with pytest.raises(RpcError) as not_yet:
        await client.send(authorize, token=gp_token)
    assert not_yet.value.code == "forbidden"
    with pytest.raises(RpcError) as not_theirs:  # the request is the holder's, never theirs
        await client.send(cmd.DelegateToTreatingPhysician(ins=ins, delegated=True), token=gp_token)
    assert not_theirs.value.code == "forbidden"

    await client.send(cmd.DelegateToTreatingPhysician(ins=ins, delegated=True), token=holder)
    await client.send(authorize, token=gp_token)
    assert (await decide(deciding, pro_token(access, keys, specialist), ins))["granted"]
    seen = await client.send(cmd.ListPermissions(ins=ins), token=gp_token)
    assert (seen.treating_physician, seen.treating_physician_delegated) == (gp, True)
    assert [a.rpps for a in seen.authorized] == [specialist]

    await client.send(cmd.DelegateToTreatingPhysician(ins=ins, delegated=False), token=holder)
    with pytest.raises(RpcError) as lifted:
        await client.send(cmd.ListAccessHistory(ins=ins), token=gp_token)
    assert lifted.value.code == "forbidden"
