"""identity against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import pytest

from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.logging import configure_logging
from libs.runtime import Runtime
from libs.tokens import issue_for, new_keypair, private_key
from tests.conftest import Keys, build_service
from tests.support import infra
from tests.support.bus import EventTap
from tests.support.people import new_nir, new_professional

pytestmark = pytest.mark.integration


async def test_wrong_nir_key_is_refused_and_nothing_stored__SPC_02(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    nir = new_nir()
    wrong = nir[:-2] + f"{(int(nir[-2:]) + 1) % 97:02d}"
    with pytest.raises(RpcError) as refused:
        await client.register_holder(
            operator_token, nir=wrong, first_name="A", last_name="B", birth_date=date(1985, 5, 1)
        )
    assert refused.value.code == "invalid_nir_key"
    assert "key" in refused.value.message
    async with identity.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons WHERE ins = $1", wrong) == 0


@pytest.mark.parametrize(
    "nir", ["12345", "985057512345678", "1850599123456", "1850575123456XX", ""]
)
async def test_malformed_nir_is_refused_with_a_clear_error__SPC_02(
    client: Client, operator_token: str, nir: str
) -> None:
    with pytest.raises(RpcError) as refused:
        await client.register_holder(
            operator_token, nir=nir, first_name="A", last_name="B", birth_date=date(1985, 5, 1)
        )
    assert refused.value.code == "invalid_nir"


async def test_registering_a_holder_announces_the_space__SPC_01(
    client: Client, operator_token: str, amqp_url: str
) -> None:
    nir = new_nir(year=90)
    async with EventTap(amqp_url, "identity.#") as tap:
        result = await client.register_holder(
            operator_token,
            nir=nir,
            first_name="Jeanne",
            last_name="Durand",
            birth_date=date(1990, 3, 2),
            email="jeanne@example.org",
        )
        announced = await tap.wait_for("SpaceAnnounced", ins=nir)
        contact = await tap.wait_for("ContactChanged", ins=nir)
    assert result["status"] == "announced"
    assert announced[0]["holder_key"] == nir
    assert contact[0]["payload"]["email"] == "jeanne@example.org"


async def test_forged_or_expired_token_is_refused(
    client: Client, identity: Runtime, keys: Keys
) -> None:
    forger_private, _ = new_keypair()
    now = identity.now()
    from datetime import timedelta

    forged = issue_for(
        private_key(forger_private),
        sub="x",
        kind="operator",
        name="x",
        now=now,
        ttl=timedelta(hours=1),
    )
    expired = issue_for(
        private_key(keys.identity_private),
        sub=keys.operator_id,
        kind="operator",
        name="x",
        now=now - timedelta(hours=2),
        ttl=timedelta(hours=1),
    )
    pro = new_professional()
    for token, reason in ((forged, "signature"), (expired, "expired"), ("garbage", "signature")):
        with pytest.raises(RpcError) as refused:
            await client.register_professional(
                token,
                rpps=pro.rpps,
                first_name=pro.first_name,
                last_name=pro.last_name,
                profession=pro.profession,
                card_public_key=pro.card_public,
            )
        assert refused.value.code == "unauthenticated"
        assert reason in refused.value.message


async def test_professional_signs_in_with_card_and_gets_a_verifiable_token(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    pro = new_professional("pharmacist")
    await client.register_professional(
        operator_token,
        rpps=pro.rpps,
        first_name=pro.first_name,
        last_name=pro.last_name,
        profession=pro.profession,
        card_public_key=pro.card_public,
    )
    token = await client.sign_in_with_card("professional", pro.rpps, pro.card_private)
    claims = identity.tokens.verify(token, identity.now())
    assert (claims.sub, claims.kind, claims.profession) == (pro.rpps, "professional", "pharmacist")

    impostor_private, _ = new_keypair()
    with pytest.raises(RpcError) as refused:
        await client.sign_in_with_card("professional", pro.rpps, impostor_private)
    assert refused.value.code == "unauthenticated"


async def test_ping_reports_ready_only_while_every_queue_has_its_consumer(
    client: Client, settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    runtime = build_service(
        "identity", settings_values, amqp_url=own_amqp_url, database_url=own_database_url
    )
    await runtime.start()
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.ping", timeout=5)
    await rpc.connect()
    try:
        ready = await rpc.call("identity.commands", "Ping", {})
        assert ready["ready"] is True, ready
        # The broker cancels the consumer of a deleted queue; nothing brings it back.
        await runtime.publisher.channel.queue_delete("identity.space-lifecycle")
        await asyncio.sleep(0.2)
        not_ready = await rpc.call("identity.commands", "Ping", {})
        assert not_ready["ready"] is False
        assert not_ready["consuming"] == {
            "identity.commands": True,
            "identity.space-lifecycle": False,
        }
    finally:
        await rpc.close()
        await runtime.stop()


async def test_logs_are_json_lines_carrying_service_and_correlation_id(
    settings_values: dict[str, Any],
    own_amqp_url: str,
    own_database_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    runtime = build_service(
        "identity",
        settings_values,
        amqp_url=own_amqp_url,
        database_url=own_database_url,
        log_level="INFO",
    )
    await runtime.start()
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.logs", timeout=5)
    await rpc.connect()
    try:
        with pytest.raises(RpcError):
            await rpc.call(
                "identity.commands",
                "SignInHolder",
                {"ins": new_nir(), "code": "123456"},
                correlation_id="corr-logs-1",
            )
    finally:
        await rpc.close()
        await runtime.stop()
        configure_logging("tests", "WARNING")
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    refused = [line for line in lines if line.get("event") == "command_refused"]
    assert refused and refused[0]["correlation_id"] == "corr-logs-1"
    assert refused[0]["service"] == "identity" and refused[0]["command"] == "SignInHolder"
