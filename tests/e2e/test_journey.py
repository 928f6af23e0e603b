"""One holder's journey through all six services, step by step, through the bus only.

The steps share one journey (module scope) and run in file order; each asserts its own outcome.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest

from libs.bus.rpc import RpcError
from libs.bus.tap import EventTap
from libs.client import Client
from libs.clock import advance
from libs.runtime import Runtime
from services.notifier.domain import mail_subject
from tests.support.people import Professional, new_nir, new_professional
from tests.support.smtp import SmtpServer
from tests.support.system import Keys

pytestmark = pytest.mark.e2e

SECRET = b"%PDF-1.4 Hemoglobine 13.5 g/dL - resultat confidentiel"
TITLE = "Bilan sanguin - serologie"
# What the holder and her doctor write to each other: none of it may travel on the bus.
HOLDER_SUBJECT, HOLDER_BODY = "Question sur ma sérologie", "Dois-je refaire la prise de sang ?"
DOCTOR_SUBJECT = "Votre sérologie VIH"
DOCTOR_BODY = "Le résultat est négatif.\nAucun nouveau prélèvement n'est nécessaire."


@dataclass
class Journey:
    tap: EventTap
    ins: str = ""
    email: str = ""
    martin: Professional = field(default_factory=lambda: new_professional("physician", "Martin"))
    bernard: Professional = field(default_factory=lambda: new_professional("physician", "Bernard"))
    tokens: dict[str, str] = field(default_factory=dict)
    document_id: str = ""


@pytest.fixture(scope="module")
async def journey(system: dict[str, Runtime], amqp_url: str) -> Any:
    async with EventTap(amqp_url, "#") as tap:
        yield Journey(tap=tap)


async def test_1_identity_registers_holder_refuses_bad_nir_and_opens_the_space__SPC_01__SPC_02(
    journey: Journey, client: Client, keys: Keys, database_url: str
) -> None:
    operator = await client.sign_in_with_card("operator", keys.operator_id, keys.operator_private)
    nir = new_nir(sex=2, year=87)
    wrong_key = nir[:-2] + f"{(int(nir[-2:]) % 96) + 1:02d}"
    with pytest.raises(RpcError) as refused:
        await client.register_holder(
            operator,
            nir=wrong_key,
            first_name="Sophie",
            last_name="Leroy",
            birth_date=date(1987, 6, 14),
        )
    assert refused.value.code == "invalid_nir_key"

    journey.ins, journey.email = nir, f"sophie.{nir[-6:]}@example.org"
    announced = await client.register_holder(
        operator,
        nir=nir,
        first_name="Sophie",
        last_name="Leroy",
        birth_date=date(1987, 6, 14),
        email=journey.email,
    )
    assert announced["status"] == "announced"
    for pro in (journey.martin, journey.bernard):
        await client.register_professional(
            operator,
            rpps=pro.rpps,
            first_name=pro.first_name,
            last_name=pro.last_name,
            profession=pro.profession,
            card_public_key=pro.card_public,
        )
    await journey.tap.wait_for("SpaceAnnounced", ins=nir)
    assert not journey.tap.of_type("SpaceOpened", ins=nir)

    # Six weeks pass for every service at once: retention fires, identity opens the space.
    await advance(database_url, timedelta(weeks=6, minutes=1))
    opened = await journey.tap.wait_for("SpaceOpened", ins=nir, timeout=30)
    assert len(opened) == 1
    assert journey.tap.of_type("SpaceOpeningDue", ins=nir)


async def code_sent_to(smtp: SmtpServer, email: str) -> str:
    """The sign-in code mailed to `email` (the space's opening alert may arrive first)."""
    async with asyncio.timeout(15):
        while True:
            for mail in smtp.mailbox.to(email):
                if "code" in mail["Subject"]:
                    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                    if found := re.search(r"\b([0-9]{6})\b", text):
                        return found[1]
            await asyncio.sleep(0.05)


async def test_2_professional_and_holder_sign_in_and_holder_authorizes__SPC_03__ACC_05(
    journey: Journey, client: Client, smtp: SmtpServer
) -> None:
    journey.tokens["martin"] = await client.sign_in_with_card(
        "professional", journey.martin.rpps, journey.martin.card_private
    )
    journey.tokens["bernard"] = await client.sign_in_with_card(
        "professional", journey.bernard.rpps, journey.bernard.card_private
    )
    await client.request_holder_code(journey.ins)
    code = await code_sent_to(smtp, journey.email)
    with pytest.raises(RpcError):
        await client.sign_in_holder(journey.ins, "000000" if code != "000000" else "111111")
    journey.tokens["holder"] = await client.sign_in_holder(journey.ins, code)
    await client.authorize(journey.tokens["holder"], journey.ins, journey.martin.rpps)


async def test_3_deposit_is_granted_stored_encrypted_and_published__DOC_02__DOC_11__ACC_18(
    journey: Journey, client: Client, system: dict[str, Runtime]
) -> None:
    deposit = await client.deposit(
        journey.tokens["martin"],
        journey.ins,
        document_type="lab_report",
        title=TITLE,
        content=SECRET,
    )
    journey.document_id = deposit["document_id"]
    assert deposit["rule"] == "ACC_05"
    deposited = await journey.tap.wait_for("DocumentDeposited", ins=journey.ins)
    assert deposited[0]["payload"]["document_id"] == journey.document_id
    assert "content" not in str(deposited[0]["payload"]).lower().replace("document_id", "")
    await journey.tap.wait_for("AccessGranted", ins=journey.ins, action="deposit")
    await journey.tap.wait_for("AccessLogged", ins=journey.ins, action="deposit")
    async with system["dossier"].pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM documents WHERE ins = $1", journey.ins)
    assert len(rows) == 1
    stored = b"".join(v for v in rows[0].values() if isinstance(v, bytes))
    assert SECRET not in stored and b"Hemoglobine" not in stored


async def test_4_authorized_professional_reads_the_dossier__ACC_05__ACC_03(
    journey: Journey, client: Client
) -> None:
    dossier = await client.read_dossier(journey.tokens["martin"], journey.ins)
    assert dossier["rule"] == "ACC_05"
    assert [d["document_id"] for d in dossier["documents"]] == [journey.document_id]
    assert base64.b64decode(dossier["documents"][0]["content_b64"]) == SECRET
    await journey.tap.wait_for("AccessLogged", ins=journey.ins, action="read", outcome="granted")


async def test_5_unauthorized_professional_is_denied_traced_and_nothing_leaks__ACC_05__ACC_18(
    journey: Journey, client: Client
) -> None:
    with pytest.raises(RpcError) as refused:
        await client.read_dossier(journey.tokens["bernard"], journey.ins)
    assert refused.value.code == "access_denied"
    assert "ACC_05" in refused.value.message
    for secret in (TITLE, "Hemoglobine", journey.document_id):
        assert secret not in refused.value.message
    denied = await journey.tap.wait_for("AccessDenied", ins=journey.ins)
    assert denied[0]["payload"]["actor_id"] == journey.bernard.rpps
    assert denied[0]["payload"]["rule"] == "ACC_05"


async def test_6_holder_is_alerted_exactly_once_per_access_by_a_professional__NTF_01(
    journey: Journey, client: Client, smtp: SmtpServer
) -> None:
    # Two accesses by a professional (deposit, read); the denied attempt is in the history.
    granted = [
        e
        for e in journey.tap.of_type("AccessLogged", ins=journey.ins, outcome="granted")
        if e["payload"]["actor_kind"] != "holder"
    ]
    assert len(granted) == 2
    # Alerts: the space opening (NTF_02), the two accesses (NTF_01), and the secure message that
    # told her of the deposit (MSG_02, NTF_03).
    await journey.tap.wait_for("HolderAlerted", ins=journey.ins, count=4, timeout=30)
    alerts = (await client.alerts(journey.tokens["holder"], journey.ins))["alerts"]
    kinds = sorted(a["kind"] for a in alerts)
    assert kinds == ["access", "access", "new_message", "space_opened"]
    mails = await smtp.mailbox.wait_for(journey.email, 1 + 4, timeout=30)  # code + 4 alerts
    access_mails = [m for m in mails if m["Subject"] == mail_subject("access")]
    assert len(access_mails) == 2
    for mail in access_mails:
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Martin" in text  # who
        for secret in (TITLE, "Hemoglobine", "lab_report", "Bilan"):
            assert secret not in text and secret not in mail["Subject"]
    # Nothing more arrives: exactly one alert per access, never two.
    await asyncio.sleep(1.0)
    assert len(journey.tap.of_type("HolderAlerted", ins=journey.ins)) == 4
    assert len(smtp.mailbox.to(journey.email)) == 5


async def test_7_holder_reads_access_history_newest_first_paginated__ACC_03(
    journey: Journey, client: Client
) -> None:
    first = await client.access_history(journey.tokens["holder"], journey.ins, page=1, page_size=2)
    second = await client.access_history(journey.tokens["holder"], journey.ins, page=2, page_size=2)
    traces = first["traces"] + second["traces"]
    assert first["total"] == 3
    assert [(t["actor_id"], t["action"], t["outcome"]) for t in traces] == [
        (journey.bernard.rpps, "read", "denied"),
        (journey.martin.rpps, "read", "granted"),
        (journey.martin.rpps, "deposit", "granted"),
    ]
    assert all(t["rule"] for t in traces)


async def test_7b_holder_and_doctor_exchange_secure_messages_sealed_at_rest__MSG_01__MSG_03(
    journey: Journey, client: Client, system: dict[str, Runtime]
) -> None:
    await client.send_message(journey.tokens["holder"], journey.ins, HOLDER_SUBJECT, HOLDER_BODY)
    await client.send_message(journey.tokens["martin"], journey.ins, DOCTOR_SUBJECT, DOCTOR_BODY)
    box = await client.list_messages(journey.tokens["holder"], journey.ins)
    assert [(m["subject"], m["body"]) for m in box["messages"][:2]] == [
        (DOCTOR_SUBJECT, DOCTOR_BODY),
        (HOLDER_SUBJECT, HOLDER_BODY),
    ]
    assert box["messages"][2]["origin"] == "deposit"  # the deposit's notice (MSG_02)
    # The doctor's message is alerted (NTF_03), the holder's own is not.
    await journey.tap.wait_for("HolderAlerted", ins=journey.ins, count=5, timeout=30)
    async with system["messaging"].pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM messages WHERE ins = $1", journey.ins)
    at_rest = repr([dict(r) for r in rows])
    for secret in ("sérologie", "prise de sang", "négatif", "VIH"):
        assert secret not in at_rest


async def test_7c_a_retried_deposit_is_stored_traced_and_alerted_once_with_the_first_reply(
    journey: Journey, client: Client, system: dict[str, Runtime]
) -> None:
    """The same request id, sent again and three times at once: one document, one decision,
    one trace, one alert; every caller gets the first reply. Another payload under it is
    refused."""

    async def counts() -> tuple[int, int, int]:
        """(documents, deposit traces, access alerts), once every granted access by a
        professional so far has its alert (NTF_01; a permission to message is not alerted,
        the message is)."""
        async with asyncio.timeout(15):
            while True:
                async with system["dossier"].pool.acquire() as conn:
                    documents = await conn.fetchval(
                        "SELECT count(*) FROM documents WHERE ins = $1", journey.ins
                    )
                async with system["access"].pool.acquire() as conn:
                    traces = await conn.fetchval(
                        "SELECT count(*) FROM traces WHERE ins = $1 AND action = 'deposit'",
                        journey.ins,
                    )
                    granted = await conn.fetchval(
                        "SELECT count(*) FROM traces WHERE ins = $1 AND outcome = 'granted'"
                        " AND actor_kind = 'professional' AND action <> 'message'",
                        journey.ins,
                    )
                async with system["notifier"].pool.acquire() as conn:
                    alerts = await conn.fetchval(
                        "SELECT count(*) FROM alerts WHERE ins = $1 AND kind = 'access'",
                        journey.ins,
                    )
                if alerts == granted:
                    return documents, traces, alerts
                await asyncio.sleep(0.1)

    before = await counts()
    request_id = f"retry-{journey.ins}"

    def deposit(title: str = "Compte rendu") -> Any:
        return client.deposit(
            journey.tokens["martin"],
            journey.ins,
            document_type="lab_report",
            title=title,
            content=b"%PDF-1.4 compte rendu",
            request_id=request_id,
        )

    first = await deposit()
    again, *together = await asyncio.gather(deposit(), deposit(), deposit())
    assert again == first and all(reply == first for reply in together)
    with pytest.raises(RpcError) as reused:
        await deposit(title="Autre chose")
    assert reused.value.code == "request_id_reused"
    await asyncio.sleep(1)  # time for a second decision or alert, were there one
    assert await counts() == (before[0] + 1, before[1] + 1, before[2] + 1)


async def test_8_closing_the_space_stops_every_service__RET_01__RET_05__ACC_17(
    journey: Journey, client: Client, system: dict[str, Runtime]
) -> None:
    closed = await client.close_space(journey.tokens["holder"], journey.ins)
    await journey.tap.wait_for("SpaceClosed", ins=journey.ins)

    async def refused(call: Any) -> RpcError:
        for _ in range(100):
            try:
                await call()
            except RpcError as error:
                return error
            await asyncio.sleep(0.1)
        raise AssertionError("never refused")

    deposit_refused = await refused(
        lambda: client.deposit(
            journey.tokens["martin"],
            journey.ins,
            document_type="lab_report",
            title="x",
            content=b"x",
        )
    )
    assert deposit_refused.code in ("space_closed", "access_denied")
    # access.decide answers services only: asked through the dossier's own connection.
    decision = await system["dossier"].rpc.call(
        "access.decide",
        "Decide",
        {"ins": journey.ins, "action": "read"},
        token=journey.tokens["martin"],
    )
    assert (decision["granted"], decision["rule"]) == (False, "ACC_17")
    message_refused = await refused(
        lambda: client.send_message(journey.tokens["martin"], journey.ins, "Bonjour", "Bonjour")
    )
    assert message_refused.code in ("space_closed", "access_denied")

    async with system["retention"].pool.acquire() as conn:
        for _ in range(100):
            due = await conn.fetchval(
                "SELECT due_at FROM deadlines WHERE ins = $1 AND kind = 'space_purge'", journey.ins
            )
            if due is not None:
                break
            await asyncio.sleep(0.1)
    assert due is not None
    closed_at = closed["closed_at"]
    years = (due - system["retention"].now()).days / 365.25
    assert 9.9 < years <= 10.01, (closed_at, due)


async def test_9_a_person_who_objects_within_six_weeks_gets_no_space__SPC_01(
    journey: Journey, client: Client, keys: Keys, database_url: str
) -> None:
    operator = await client.sign_in_with_card("operator", keys.operator_id, keys.operator_private)
    nir = new_nir(sex=1, year=75)
    await client.register_holder(
        operator, nir=nir, first_name="Paul", last_name="Petit", birth_date=date(1975, 2, 3)
    )
    objected = await client.rpc.call(
        "identity.commands", "ObjectToSpace", {"ins": nir}, token=operator
    )
    assert objected["status"] == "objected"
    await advance(database_url, timedelta(weeks=6, minutes=1))
    await journey.tap.wait_for("SpaceOpeningDue", ins=nir, timeout=30)
    await asyncio.sleep(1.0)  # identity has had time to (not) open it
    assert not journey.tap.of_type("SpaceOpened", ins=nir)


async def test_10_no_event_the_journey_published_carries_its_free_text_or_content__MSG_03(
    journey: Journey,
) -> None:
    """Every event of the journey, as any tap on `dmp.events` saw it: ids and coarse types,
    never a title, a subject, a body or a document's content."""
    await journey.tap.wait_for("MessageSent", ins=journey.ins, count=3)
    assert journey.tap.of_type("DocumentDeposited", ins=journey.ins)
    secrets_ = [
        TITLE,
        "Bilan sanguin",
        SECRET.decode(),
        "Hemoglobine",
        base64.b64encode(SECRET).decode(),
        HOLDER_SUBJECT,
        HOLDER_BODY,
        DOCTOR_SUBJECT,
        DOCTOR_BODY,
        "sérologie",
        "Aucun nouveau prélèvement",
    ]
    assert len(journey.tap.events) > 20
    for event in journey.tap.events:
        text = json.dumps(event, ensure_ascii=False)
        escaped = json.dumps(event)
        for secret in secrets_:
            assert secret not in text and secret not in escaped, (secret, event["type"])
    for event in journey.tap.of_type("DocumentDeposited") + journey.tap.of_type("MessageSent"):
        assert event["version"] == 2
        # The holder's name stays off the bus; a professional's may be shown in an alert.
        assert "Sophie" not in json.dumps(event) and "Leroy" not in json.dumps(event)
