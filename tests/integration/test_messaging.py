"""messaging against real PostgreSQL and RabbitMQ.

The access service is played by a small stand-in responder on the real broker (`access.decide`),
which each test tells to grant, deny or stay silent. This module has a vhost of its own: the e2e
suite's services (session-scoped) stay up during the integration tests, and their real access and
messaging would otherwise answer in place of the stand-in and of the service under test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal

import pytest

from libs import spaces
from libs.bus.rpc import RpcClient, RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.envelope import Event, envelope_for
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    SpaceClosed,
    SpaceOpened,
)
from libs.contracts.rpc import Reply, Request
from libs.runtime import Runtime
from libs.tokens import b64e, issue_for
from services.messaging import domain
from tests.support import infra
from tests.support.access_stand_in import AccessStandIn, deny, grant, silent
from tests.support.bus import EventTap, publish_raw
from tests.support.people import new_nir, new_rpps
from tests.support.system import Keys, build_service

pytestmark = pytest.mark.integration

MESSAGING = "messaging.commands"
KEY = secrets.token_bytes(32)
LIST_BUDGET = 3 * 2**20


@pytest.fixture(scope="module")
async def client(own_amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.messaging", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


@pytest.fixture(scope="module")
async def access(own_amqp_url: str) -> AsyncIterator[AccessStandIn]:
    # Nobody is allowed until a test says so.
    stand_in = AccessStandIn(own_amqp_url, policy=deny(rule="ACC_02"))
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture(scope="module")
async def messaging(
    settings_values: dict[str, Any], own_amqp_url: str, access: AccessStandIn
) -> AsyncIterator[Runtime]:
    runtime = build_service(
        "messaging",
        settings_values,
        amqp_url=own_amqp_url,
        rpc_timeout_seconds=2.0,
        # Its own key (the session fixtures may give one too: this one is the test's to check).
        messaging_content_key=b64e(KEY),
        list_reply_budget_bytes=LIST_BUDGET,
    )
    await runtime.start()
    yield runtime
    await runtime.stop()


def token(
    keys: Keys,
    runtime: Runtime,
    sub: str,
    kind: Literal["holder", "professional", "operator"],
    name: str,
) -> str:
    return issue_for(
        keys.identity_private,
        sub=sub,
        kind=kind,
        name=name,
        profession="physician" if kind == "professional" else None,
        now=runtime.now(),
        ttl=timedelta(hours=1),
    )


async def publish(amqp_url: str, event: Event, ins: str, runtime: Runtime) -> str:
    envelope = envelope_for(
        event, holder_key=ins, occurred_at=runtime.now(), correlation_id=uuid.uuid4().hex
    )
    await publish_raw(
        amqp_url,
        event.routing_key(),
        envelope.model_dump_json().encode(),
        message_id=str(envelope.event_id),
    )
    return str(envelope.event_id)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def space_with_status(runtime: Runtime, amqp_url: str, status: str = "open") -> str:
    """A fresh INS whose space messaging knows as open (or closed)."""
    ins = new_nir()
    await publish(amqp_url, SpaceOpened(ins=ins, opened_at=runtime.now()), ins, runtime)
    if status == "closed":
        await publish(
            amqp_url,
            SpaceClosed(ins=ins, closed_at=runtime.now(), requested_by=f"holder:{ins}"),
            ins,
            runtime,
        )

    async def projected() -> bool:
        async with runtime.pool.acquire() as conn:
            found = await spaces.status(conn, ins)
        return bool(found == status)

    await eventually(projected)
    return ins


async def stored(runtime: Runtime, ins: str) -> list[Any]:
    async with runtime.pool.acquire() as conn:
        rows: list[Any] = await conn.fetch(
            "SELECT * FROM messages WHERE ins = $1 ORDER BY seq", ins
        )
    return rows


async def test_holder_writes_in_their_box_and_message_sent_is_published__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        result = await client.send(
            cmd.SendMessage(ins=ins, subject="Question", body="Dois-je jeûner ?"), token=holder
        )
        [sent] = await tap.wait_for("MessageSent", ins=ins)
    [row] = await stored(messaging, ins)
    assert row["message_id"] == result.message_id
    assert (row["sender_kind"], row["sender_id"], row["sender_name"]) == (
        "holder",
        ins,
        "Jeanne Durand",
    )
    # Subject and body are sealed at rest, each under its own nonce, bound to this message.
    at_rest = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
    at_rest += "".join(bytes(v).decode("latin-1") for v in row.values() if isinstance(v, bytes))
    assert "Question" not in at_rest and "jeûner" not in at_rest and "Dois" not in at_rest
    assert row["subject_nonce"] != row["body_nonce"]
    message_id = row["message_id"]
    assert (
        domain.unseal_text(
            KEY, row["subject_nonce"], row["subject_sealed"], message_id, ins, domain.SUBJECT
        ),
        domain.unseal_text(
            KEY, row["body_nonce"], row["body_sealed"], message_id, ins, domain.BODY
        ),
    ) == ("Question", "Dois-je jeûner ?")
    listed = await client.send(cmd.ListMessages(ins=ins), token=holder)
    assert [(m.subject, m.body) for m in listed.messages] == [("Question", "Dois-je jeûner ?")]
    assert (sent["holder_key"], sent["version"]) == (ins, 2)
    assert sent["payload"]["message_id"] == str(result.message_id)
    assert sent["payload"]["sender_kind"] == "holder"
    assert set(sent["payload"]) == {
        "message_id",
        "ins",
        "sender_kind",
        "sender_id",
        "sender_name",
        "sent_at",
    }
    # Neither subject nor body, nor the holder's name, travels.
    assert sent["payload"]["sender_name"] is None
    assert "jeûner" not in str(sent) and "Question" not in str(sent) and "Jeanne" not in str(sent)
    # The holder needs no decision from access for their own box.
    assert access.for_holder(ins) == []


async def test_professional_allowed_by_access_writes_to_the_holder__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    access.by_holder[ins] = grant(rule="ACC_04")
    rpps = new_rpps()
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        await client.send(
            cmd.SendMessage(ins=ins, subject="Résultats", body="Vos résultats sont normaux."),
            token=doctor,
        )
        [sent] = await tap.wait_for("MessageSent", ins=ins)
    [row] = await stored(messaging, ins)
    assert (row["sender_kind"], row["sender_id"], row["sender_name"]) == (
        "professional",
        rpps,
        "Claire Martin",
    )
    assert sent["payload"]["sender_id"] == rpps
    assert sent["payload"]["sender_name"] == "Claire Martin"  # a professional's: public
    assert "Résultats" not in str(sent) and "normaux" not in str(sent)
    [asked] = access.for_holder(ins)
    assert asked.command == "Decide"
    assert asked.payload["action"] == "message"
    assert asked.token == doctor  # asked on the professional's behalf


async def test_professional_denied_by_access_cannot_write__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    access.by_holder[ins] = deny(rule="ACC_02")
    doctor = token(keys, messaging, new_rpps(), "professional", "Paul Petit")
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        with pytest.raises(RpcError) as refused:
            await client.send(
                cmd.SendMessage(ins=ins, subject="Bonjour", body="Un message"), token=doctor
            )
        await asyncio.sleep(0.5)
    assert refused.value.code == "access_denied"
    assert await stored(messaging, ins) == []
    assert tap.of_type("MessageSent", ins=ins) == []
    assert len(access.for_holder(ins)) == 1


async def test_professional_is_refused_when_access_does_not_answer__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    access.by_holder[ins] = silent()
    doctor = token(keys, messaging, new_rpps(), "professional", "Paul Petit")
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.SendMessage(ins=ins, subject="Bonjour", body="Un message"), token=doctor
        )
    assert refused.value.code == "access_undecided"
    assert await stored(messaging, ins) == []


async def test_a_holder_cannot_write_in_another_box__MSG_03(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    intruder = token(keys, messaging, new_nir(), "holder", "Autre Personne")
    operator = token(keys, messaging, keys.operator_id, "operator", "operator")
    for who in (intruder, operator):
        with pytest.raises(RpcError) as refused:
            await client.send(
                cmd.SendMessage(ins=ins, subject="Bonjour", body="Un message"), token=who
            )
        assert refused.value.code in ("not_your_box", "forbidden")
    assert await stored(messaging, ins) == []


async def test_no_message_after_closure__RET_05(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url, "closed")
    access.by_holder[ins] = grant(rule="ACC_04")
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    doctor = token(keys, messaging, new_rpps(), "professional", "Claire Martin")
    for who in (holder, doctor):
        with pytest.raises(RpcError) as refused:
            await client.send(
                cmd.SendMessage(ins=ins, subject="Bonjour", body="Un message"), token=who
            )
        assert refused.value.code == "space_closed"
    assert await stored(messaging, ins) == []


async def test_no_message_before_the_space_is_open(
    client: Client, messaging: Runtime, keys: Keys
) -> None:
    ins = new_nir()
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.SendMessage(ins=ins, subject="Bonjour", body="Un message"), token=holder
        )
    assert refused.value.code == "space_not_open"


async def test_a_deposit_is_sent_to_the_holder_box__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    deposit = DocumentDeposited(
        document_id=uuid.uuid4(),
        ins=ins,
        document_type="lab_report",
        author_kind="professional",
        author_id=new_rpps(),
        author_name="Dr Claire Martin",
        deposited_at=messaging.now(),
    )
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        await publish(own_amqp_url, deposit, ins, messaging)
        # The same deposit delivered again under another event id: still one message.
        await publish(own_amqp_url, deposit, ins, messaging)
        [sent] = await tap.wait_for("MessageSent", ins=ins)
        await asyncio.sleep(0.5)
        assert len(tap.of_type("MessageSent", ins=ins)) == 1
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    [message] = (await client.send(cmd.ListMessages(ins=ins), token=holder)).messages
    assert message.body == "Dr Claire Martin a déposé un nouveau document dans votre dossier"
    assert message.origin == "deposit"
    assert message.document_id == deposit.document_id
    assert "Bilan" not in f"{message.subject} {message.body}"
    assert sent["payload"]["message_id"] == str(message.message_id)
    assert sent["payload"]["sender_name"] == "Dr Claire Martin"


async def test_a_version_1_deposit_still_queued_is_sent_without_its_title__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    deposit = DocumentDepositedV1(
        document_id=uuid.uuid4(),
        ins=ins,
        document_type="lab_report",
        title="Bilan sanguin confidentiel",
        author_id=new_rpps(),
        author_name="Dr Claire Martin",
        deposited_at=messaging.now(),
    )
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        await publish(own_amqp_url, deposit, ins, messaging)
        [sent] = await tap.wait_for("MessageSent", ins=ins)
    assert sent["version"] == 2 and "Bilan" not in str(sent)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    [message] = (await client.send(cmd.ListMessages(ins=ins), token=holder)).messages
    assert message.document_id == deposit.document_id
    assert "Bilan" not in f"{message.subject} {message.body}"


async def test_a_holders_own_deposit_posts_no_notice_in_their_box__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    deposit = DocumentDeposited(
        document_id=uuid.uuid4(),
        ins=ins,
        document_type="holder_document",
        author_kind="holder",
        author_id=ins,
        author_name=None,
        deposited_at=messaging.now(),
    )
    event_id = await publish(own_amqp_url, deposit, ins, messaging)

    async def consumed() -> bool:
        async with messaging.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
                    "messaging.deposits",
                    event_id,
                )
            )

    await eventually(consumed)
    assert await stored(messaging, ins) == []


@pytest.mark.parametrize(
    ("subject", "body"),
    [("Bonjour\x00", "texte"), ("Bonjour", "texte\x00"), ("Bon\njour", "texte"), ("x" * 301, "t")],
)
async def test_a_message_with_control_characters_is_refused_before_access_is_asked(
    client: Client,
    messaging: Runtime,
    access: AccessStandIn,
    keys: Keys,
    own_amqp_url: str,
    subject: str,
    body: str,
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    access.by_holder[ins] = grant(rule="ACC_04")
    doctor = token(keys, messaging, new_rpps(), "professional", "Claire Martin")
    with pytest.raises(RpcError) as refused:
        # Raw, as a hostile client sends it: the contract would refuse it before it left.
        await client.rpc.call(
            MESSAGING, "SendMessage", {"ins": ins, "subject": subject, "body": body}, token=doctor
        )
    assert refused.value.code == "invalid_input"
    assert access.for_holder(ins) == []  # no access asked, so none traced or alerted
    assert await stored(messaging, ins) == []


async def test_a_listing_reply_stays_within_its_byte_budget_and_a_cursor_gives_the_rest(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    bodies = [f"{i}" + "😀" * (domain.MAX_BODY_CHARS - 1) for i in range(3)]
    for i, body in enumerate(bodies):
        await client.send(cmd.SendMessage(ins=ins, subject=f"long {i}", body=body), token=holder)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        payload: dict[str, Any] = {"ins": ins} | ({"cursor": cursor} if cursor else {})
        request = Request(
            command="ListMessages", token=holder, correlation_id=uuid.uuid4().hex, payload=payload
        )
        raw = await client.rpc.call_raw(MESSAGING, request.model_dump_json().encode())
        assert len(raw) <= LIST_BUDGET + 1024
        page = Reply.model_validate_json(raw).result
        assert page is not None
        pages += 1
        seen += [m["body"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages > 1
    assert seen == bodies[::-1]


async def test_only_the_holder_reads_their_box_newest_first__MSG_03(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    for subject in ("premier", "deuxième", "troisième"):
        await client.send(cmd.SendMessage(ins=ins, subject=subject, body="texte"), token=holder)
    listed = await client.send(cmd.ListMessages(ins=ins), token=holder)
    assert [m.subject for m in listed.messages] == ["troisième", "deuxième", "premier"]
    assert listed.next_cursor is None
    first = await client.send(cmd.ListMessages(ins=ins, page_size=2), token=holder)
    rest = await client.send(cmd.ListMessages(ins=ins, cursor=first.next_cursor), token=holder)
    assert [m.subject for m in first.messages + rest.messages] == [
        "troisième",
        "deuxième",
        "premier",
    ]
    assert rest.next_cursor is None

    other_ins = await space_with_status(messaging, own_amqp_url)
    other_holder = token(keys, messaging, other_ins, "holder", "Autre Personne")
    doctor = token(keys, messaging, new_rpps(), "professional", "Claire Martin")
    operator = token(keys, messaging, keys.operator_id, "operator", "operator")
    for who in (other_holder, doctor, operator):
        with pytest.raises(RpcError) as refused:
            await client.rpc.call(MESSAGING, "ListMessages", {"ins": ins}, token=who)
        assert refused.value.code == "not_your_box"
    # The other holder's own box is empty of this one's messages.
    theirs = await client.rpc.call(
        MESSAGING, "ListMessages", {"ins": other_ins}, token=other_holder
    )
    assert theirs["messages"] == []
