"""identity against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import date, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.clock import advance
from libs.contracts import commands as cmd
from libs.contracts.commands import IDENTITY, GetSigningKeys
from libs.logging import configure_logging
from libs.runtime import Runtime
from libs.tokens import TokenVerifier, issue_for, key_set, new_keypair, new_signing_key
from tests.support import infra
from tests.support.actors import CODE_SUBJECT, sign_in_professional
from tests.support.bus import EventTap
from tests.support.people import new_nir, new_professional
from tests.support.smtp import SmtpServer
from tests.support.system import Keys, build_service

pytestmark = pytest.mark.integration


async def test_wrong_nir_key_is_refused_and_nothing_stored__SPC_02(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    nir = new_nir()
    wrong = nir[:-2] + f"{(int(nir[-2:]) + 1) % 97:02d}"
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.RegisterHolder(
                nir=wrong, first_name="A", last_name="B", birth_date=date(1985, 5, 1)
            ),
            token=operator_token,
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
        await client.send(
            cmd.RegisterHolder(nir=nir, first_name="A", last_name="B", birth_date=date(1985, 5, 1)),
            token=operator_token,
        )
    assert refused.value.code == "invalid_nir"


async def test_registering_a_holder_announces_the_space__SPC_01(
    client: Client, operator_token: str, amqp_url: str
) -> None:
    nir = new_nir(year=90)
    async with EventTap(amqp_url, "identity.#") as tap:
        result = await client.send(
            cmd.RegisterHolder(
                nir=nir,
                first_name="Jeanne",
                last_name="Durand",
                birth_date=date(1990, 3, 2),
                email="jeanne@example.org",
            ),
            token=operator_token,
        )
        announced = await tap.wait_for("SpaceAnnounced", ins=nir)
        contact = await tap.wait_for("ContactChanged", ins=nir)
    assert result.status == "announced"
    assert announced[0]["holder_key"] == nir
    # Contact details stay in identity: the bus learns only which channels exist.
    assert contact[0]["version"] == 2
    assert contact[0]["payload"] == {
        "ins": nir,
        "channels": ["email"],
        "time_zone": "Europe/Paris",  # until the holder chooses theirs
    }
    assert "jeanne" not in json.dumps(contact[0]).lower()


async def test_forged_or_expired_token_is_refused(
    client: Client, identity: Runtime, keys: Keys
) -> None:
    now = identity.now()
    forged = issue_for(
        key_set(new_signing_key()),
        sub="x",
        kind="operator",
        name="x",
        now=now,
        ttl=timedelta(hours=1),
    )
    expired = issue_for(
        keys.identity_private,
        sub=keys.operator_id,
        kind="operator",
        name="x",
        now=now - timedelta(hours=2),
        ttl=timedelta(hours=1),
    )
    pro = new_professional()
    for token, reason in ((forged, "unknown key"), (expired, "expired"), ("garbage", "malformed")):
        with pytest.raises(RpcError) as refused:
            await client.send(
                pro.registration(),
                token=token,
            )
        assert refused.value.code == "unauthenticated"
        assert reason in refused.value.message


async def test_professional_signs_in_with_card_and_gets_a_verifiable_token(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    pro = new_professional("pharmacist")
    await client.send(
        pro.registration(),
        token=operator_token,
    )
    token = await sign_in_professional(client, pro)
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
            "identity.contacts": True,
            "identity.purges": True,
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


# --- holder sign-in codes (SPC_03) ------------------------------------------------------------


async def _holder(
    client: Client,
    operator_token: str,
    identity: Runtime,
    *,
    email: str | None,
    open_space: bool = True,
    birth_date: date = date(1985, 5, 1),
) -> str:
    nir = new_nir()
    await client.send(
        cmd.RegisterHolder(
            nir=nir,
            first_name="Jeanne",
            last_name="Durand",
            birth_date=birth_date,
            email=email,
            legal_representative_email="parent@example.org" if birth_date.year > 2010 else None,
        ),
        token=operator_token,
    )
    if open_space:
        # Setup: the six weeks are retention's business, proven elsewhere (SPC_01).
        await identity.pool.execute("UPDATE spaces SET status = 'open' WHERE ins = $1", nir)
    return nir


def _new_email() -> str:
    return f"holder-{uuid.uuid4().hex[:10]}@example.org"


def _code_in(mail: EmailMessage) -> str:
    found = re.search(r"\b([0-9]{6})\b", str(mail.get_content()))
    assert found is not None
    return found[1]


async def test_a_code_request_gets_the_same_answer_whatever_the_ins__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    email = _new_email()
    registered = await _holder(client, operator_token, identity, email=email)
    no_email = await _holder(client, operator_token, identity, email=None)
    # An announced space gets codes (its person may object, SPC_01); an objected one never will.
    objected = await _holder(client, operator_token, identity, email=_new_email(), open_space=False)
    await client.send(cmd.ObjectToSpace(ins=objected), token=operator_token)
    minor = await _holder(
        client, operator_token, identity, email=_new_email(), birth_date=date(2015, 1, 1)
    )
    replies = [
        await client.send(cmd.RequestHolderCode(ins=ins))
        for ins in (registered, new_nir(), no_email, objected, minor)
    ]
    assert all(reply == replies[0] for reply in replies), replies
    assert replies[0].sent is True and "@" not in replies[0].model_dump_json()
    mails = await smtp.mailbox.wait_for(email, 1, subject=CODE_SUBJECT)
    assert len(_code_in(mails[0])) == 6
    async with identity.pool.acquire() as conn:
        live = await conn.fetch(
            "SELECT subject FROM sign_in_codes WHERE subject = ANY($1)",
            [registered, no_email, objected, minor],
        )
    assert [r["subject"] for r in live] == [registered]


async def test_a_new_code_revokes_the_previous_one_and_a_used_code_is_gone__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    email = _new_email()
    ins = await _holder(client, operator_token, identity, email=email)
    await client.send(cmd.RequestHolderCode(ins=ins))
    first = _code_in((await smtp.mailbox.wait_for(email, 1, subject=CODE_SUBJECT))[0])
    await client.send(cmd.RequestHolderCode(ins=ins))
    second = _code_in((await smtp.mailbox.wait_for(email, 2, subject=CODE_SUBJECT))[-1])
    assert (
        await identity.pool.fetchval("SELECT count(*) FROM sign_in_codes WHERE subject = $1", ins)
        == 1
    )
    if first != second:
        with pytest.raises(RpcError) as refused:
            await client.send(cmd.SignInHolder(ins=ins, code=first))
        assert refused.value.code == "unauthenticated"
    token = (await client.send(cmd.SignInHolder(ins=ins, code=second))).token
    assert identity.tokens.verify(token, identity.now()).sub == ins
    assert (
        await identity.pool.fetchval("SELECT count(*) FROM sign_in_codes WHERE subject = $1", ins)
        == 0
    )
    with pytest.raises(RpcError):
        await client.send(cmd.SignInHolder(ins=ins, code=second))  # used: gone


async def test_wrong_codes_lock_the_holder_whatever_the_code__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    email = _new_email()
    ins = await _holder(client, operator_token, identity, email=email)
    await client.send(cmd.RequestHolderCode(ins=ins))
    code = _code_in((await smtp.mailbox.wait_for(email, 1, subject=CODE_SUBJECT))[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        with pytest.raises(RpcError) as refused:
            await client.send(cmd.SignInHolder(ins=ins, code=wrong))
        assert refused.value.code == "unauthenticated"
    # A new code does not reset the count: the lock is the holder's, not the code's.
    await client.send(cmd.RequestHolderCode(ins=ins))
    code = _code_in((await smtp.mailbox.wait_for(email, 2, subject=CODE_SUBJECT))[-1])
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(RpcError) as refused:
        await client.send(cmd.SignInHolder(ins=ins, code=wrong))
    assert refused.value.code == "sign_in_locked"
    with pytest.raises(RpcError) as refused:
        await client.send(cmd.SignInHolder(ins=ins, code=code))  # even the right one, locked
    assert refused.value.code == "sign_in_locked"
    assert (
        await identity.pool.fetchval("SELECT count(*) FROM sign_in_codes WHERE subject = $1", ins)
        == 0
    )


async def test_an_unknown_ins_locks_the_same_way__SPC_03(client: Client, identity: Runtime) -> None:
    ins = new_nir()
    codes = []
    for _ in range(5):
        with pytest.raises(RpcError) as refused:
            await client.send(cmd.SignInHolder(ins=ins, code="123456"))
        codes.append(refused.value.code)
    assert codes == ["unauthenticated"] * 4 + ["sign_in_locked"]


async def test_code_requests_are_limited_per_ins_whether_or_not_it_exists__SPC_03(
    client: Client, operator_token: str, identity: Runtime, smtp: SmtpServer
) -> None:
    email = _new_email()
    registered = await _holder(client, operator_token, identity, email=email)
    for ins in (registered, new_nir()):
        for _ in range(5):
            await client.send(cmd.RequestHolderCode(ins=ins))
        with pytest.raises(RpcError) as refused:
            await client.send(cmd.RequestHolderCode(ins=ins))
        assert refused.value.code == "rate_limited"
    await smtp.mailbox.wait_for(email, 5, subject=CODE_SUBJECT)
    await asyncio.sleep(0.5)
    assert len(smtp.mailbox.to(email, CODE_SUBJECT)) == 5


async def test_code_requests_are_limited_per_caller__SPC_03(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    runtime = build_service(
        "identity",
        settings_values,
        amqp_url=own_amqp_url,
        database_url=own_database_url,
        code_requests_per_caller=3,
    )
    await runtime.start()
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.caller-limit", timeout=5)
    await rpc.connect()
    try:
        for _ in range(3):
            await rpc.call("identity.commands", "RequestHolderCode", {"ins": new_nir()})
        with pytest.raises(RpcError) as refused:
            await rpc.call("identity.commands", "RequestHolderCode", {"ins": new_nir()})
        assert refused.value.code == "rate_limited"
        key = await runtime.pool.fetchval(
            "SELECT key FROM rate_windows WHERE key LIKE 'caller:%' AND count > 3"
        )
        assert key == f"caller:{infra.bus_prefix(own_amqp_url)}practice-software"
    finally:
        await rpc.close()
        await runtime.stop()


async def test_expired_challenges_and_codes_are_pruned_on_schedule__SPC_03(
    settings_values: dict[str, Any], own_amqp_url: str, own_database_url: str
) -> None:
    runtime = build_service(
        "identity",
        settings_values,
        amqp_url=own_amqp_url,
        database_url=own_database_url,
        prune_interval_seconds=0.2,
    )
    await runtime.start()
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.prune", timeout=5)
    await rpc.connect()
    try:
        asked = await rpc.call(
            "identity.commands", "RequestChallenge", {"kind": "operator", "subject": "nobody"}
        )
        assert await runtime.pool.fetchval(
            "SELECT count(*) FROM challenges WHERE challenge = $1", asked["challenge"]
        )
        await advance(own_database_url, timedelta(minutes=3))
        async with asyncio.timeout(10):
            while await runtime.pool.fetchval(
                "SELECT count(*) FROM challenges WHERE challenge = $1", asked["challenge"]
            ):
                await asyncio.sleep(0.1)
    finally:
        await rpc.close()
        await runtime.stop()


# --- identity.contacts: the notifier's only -------------------------------------------------


async def test_a_client_calling_get_alert_contact_is_refused__NTF_04(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    ins = await _holder(client, operator_token, identity, email=_new_email())
    # A client cannot even reach the queue: it is bound to the services' exchange only.
    with pytest.raises(RpcError) as refused:
        await client.rpc.call("identity.contacts", "GetAlertContact", {"ins": ins})
    assert refused.value.code in ("unavailable", "forbidden")
    # A service other than the notifier reaches it and is refused by identity.
    with pytest.raises(RpcError) as refused:
        await identity.rpc.call("identity.contacts", "GetAlertContact", {"ins": ins})
    assert refused.value.code == "forbidden"
    for command, payload in [("GetAlertContacts", {"ins": [ins]})]:
        with pytest.raises(RpcError) as refused:
            await client.rpc.call("identity.contacts", command, payload)
        assert refused.value.code in ("unavailable", "forbidden")
        with pytest.raises(RpcError) as refused:
            await identity.rpc.call("identity.contacts", command, payload)
        assert refused.value.code == "forbidden"


# --- input at the edge (issue 5, item 8) ----------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "jeanne@example.org\r\nBcc: all@example.org"),
        ("first_name", "Jeanne\x00"),
        ("first_name", "J" * 5000),
        ("phone", "not a phone"),
    ],
)
async def test_bad_contact_input_is_refused_and_nothing_stored(
    client: Client, operator_token: str, identity: Runtime, field: str, value: str
) -> None:
    nir = new_nir()
    values: dict[str, Any] = {
        "nir": nir,
        "first_name": "Jeanne",
        "last_name": "Durand",
        "birth_date": "1985-05-01",
        field: value,
    }
    with pytest.raises(RpcError) as refused:
        # Raw, as a hostile client sends it: the contract would refuse it before it left.
        await client.rpc.call(IDENTITY, "RegisterHolder", values, token=operator_token)
    assert refused.value.code == "invalid_input"
    assert await identity.pool.fetchval("SELECT count(*) FROM persons WHERE ins = $1", nir) == 0


async def test_a_nir_in_full_width_digits_is_refused__SPC_02(
    client: Client, operator_token: str
) -> None:
    nir = new_nir().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.RegisterHolder(nir=nir, first_name="A", last_name="B", birth_date=date(1985, 5, 1)),
            token=operator_token,
        )
    assert refused.value.code == "invalid_nir"


async def test_the_published_keys_verify_identitys_tokens(
    client: Client, operator_token: str, identity: Runtime
) -> None:
    """What a client or a gateway fetches to check tokens itself (the same JWKS `python -m
    libs.tokens jwks` writes for ops)."""
    jwks = await client.send(GetSigningKeys())
    verifier = TokenVerifier(jwks.model_dump_json(exclude_none=True))
    assert verifier.verify(operator_token, identity.now()).kind == "operator"
    assert '"d"' not in jwks.model_dump_json()  # no private part


@pytest.mark.parametrize("profession", ["insurer", "bank", "employer", "Physician"])
async def test_no_outsider_can_be_registered_as_a_professional__ACC_10(
    client: Client, operator_token: str, identity: Runtime, profession: str
) -> None:
    """Professions are a closed list: an insurer, a bank or an employer has no word to register
    as, so access never has anything to grant them."""
    pro = new_professional()
    payload = {**pro.registration().model_dump(mode="json"), "profession": profession}
    with pytest.raises(RpcError) as refused:
        await client.rpc.call(
            "identity.commands", "RegisterProfessional", payload, token=operator_token
        )
    assert refused.value.code == "invalid_input"
    assert "profession" in refused.value.message
    async with identity.pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM professionals WHERE rpps = $1", pro.rpps) == 0
        )


async def test_a_specialty_outside_the_list_is_refused(client: Client, operator_token: str) -> None:
    pro = new_professional()
    payload = {**pro.registration().model_dump(mode="json"), "specialty": "astrology"}
    with pytest.raises(RpcError) as refused:
        await client.rpc.call(
            "identity.commands", "RegisterProfessional", payload, token=operator_token
        )
    assert refused.value.code == "invalid_input"
