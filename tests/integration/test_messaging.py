"""messaging against real PostgreSQL and RabbitMQ.

The access service is played by a small stand-in responder on the real broker (`access.decide`),
which each test tells to grant, deny or stay silent. This module has a vhost of its own: the e2e
suite's services (session-scoped) stay up during the integration tests, and their real access and
messaging would otherwise answer in place of the stand-in and of the service under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
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
    StaffJoined,
    StaffLeft,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
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
ATTACHMENT_CAP = 64 * 1024


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
        # Small, so that the limits are tried without moving megabytes.
        max_attachment_bytes=ATTACHMENT_CAP,
        max_attachments_per_message=3,
        max_message_attachment_bytes=2 * ATTACHMENT_CAP,
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
        "thread_id",
        "attachments",
    }
    assert sent["payload"]["thread_id"] == str(result.thread_id)
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


# --- threads (MSG_01, MSG_03) -----------------------------------------------------------------

PDF = b"%PDF-1.7\n" + b"compte rendu" * 100
CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title></ClinicalDocument>'
)


def attachment(
    content: bytes, media_type: str = "application/pdf", filename: str | None = None
) -> cmd.NewAttachment:
    return cmd.NewAttachment(
        media_type=media_type,
        content_b64=base64.b64encode(content).decode(),
        sha256=hashlib.sha256(content).hexdigest(),
        filename=filename,
    )


def representative_token(keys: Keys, runtime: Runtime, ins: str) -> str:
    return issue_for(
        keys.identity_private,
        sub=str(uuid.uuid4()),
        kind="representative",
        name="Paul Durand",
        acts_for=ins,
        role="legal_representative",
        now=runtime.now(),
        ttl=timedelta(hours=1),
    )


async def refusal(send: Awaitable[Any]) -> RpcError:
    with pytest.raises(RpcError) as refused:
        await send
    return refused.value


async def test_the_holder_starts_a_thread_with_a_professional_who_answers_in_it__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    rpps = new_rpps()
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    access.by_holder[ins] = grant(rule="ACC_05")
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        started = await client.send(
            cmd.StartThread(
                ins=ins, subject="Ordonnance", body="Pouvez-vous la renouveler ?",
                professionals=[rpps],
            ),
            token=holder,
        )  # fmt: skip
        # The holder writes to whom they choose: access is not asked.
        assert access.for_holder(ins) == []
        answer = await client.send(
            cmd.SendMessage(
                ins=ins, thread_id=started.thread_id, subject="Re: Ordonnance", body="C'est fait."
            ),
            token=doctor,
        )
        sent = await tap.wait_for("MessageSent", ins=ins, count=2)
    [asked] = access.for_holder(ins)
    assert (asked.payload["action"], asked.token) == ("message", doctor)
    assert answer.thread_id == started.thread_id
    assert [e["payload"]["thread_id"] for e in sent] == [str(started.thread_id)] * 2
    assert [e["payload"]["sender_kind"] for e in sent] == ["holder", "professional"]
    for reader in (holder, doctor):
        read = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=reader)
        assert [m.body for m in read.messages] == ["C'est fait.", "Pouvez-vous la renouveler ?"]
        assert read.thread.subject == "Ordonnance" and read.thread.kind == "conversation"
        assert [(p.kind, p.id) for p in read.thread.participants] == [
            ("holder", ins),
            ("professional", rpps),
        ]
    [theirs] = (await client.send(cmd.ListThreads(), token=doctor)).threads
    assert (theirs.thread_id, theirs.ins) == (started.thread_id, ins)
    [hers] = (await client.send(cmd.ListThreads(ins=ins), token=holder)).threads
    assert hers.thread_id == started.thread_id and hers.last_message_at == answer.sent_at
    # Her box still shows every message of her threads.
    box = await client.send(cmd.ListMessages(ins=ins), token=holder)
    assert [m.thread_id for m in box.messages] == [started.thread_id] * 2


async def test_a_professional_allowed_by_access_starts_a_thread_with_the_holder_alone__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    rpps = new_rpps()
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    access.by_holder[ins] = grant(rule="ACC_04")
    started = await client.send(
        cmd.StartThread(ins=ins, subject="Résultats", body="Rien d'inquiétant."), token=doctor
    )
    read = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=holder)
    assert [(p.kind, p.id) for p in read.thread.participants] == [
        ("holder", ins),
        ("professional", rpps),
    ]
    # A professional names no one else; the holder names whom they write to.
    other = await refusal(
        client.send(
            cmd.StartThread(ins=ins, subject="Avis", body="Voir", professionals=[new_rpps()]),
            token=doctor,
        )
    )
    nobody = await refusal(
        client.send(cmd.StartThread(ins=ins, subject="Avis", body="Voir"), token=holder)
    )
    assert (other.code, nobody.code) == ("invalid_input", "invalid_input")
    access.by_holder[ins] = deny(rule="ACC_08")
    denied = await refusal(
        client.send(cmd.StartThread(ins=ins, subject="Encore", body="Bonjour"), token=doctor)
    )
    assert (denied.code, denied.rule) == ("access_denied", "ACC_08")
    threads = (await client.send(cmd.ListThreads(ins=ins), token=holder)).threads
    assert [t.thread_id for t in threads] == [started.thread_id]


async def test_a_representative_writes_for_the_holder_as_access_allows__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    rpps = new_rpps()
    parent = representative_token(keys, messaging, ins)
    access.by_holder[ins] = grant(rule="SPC_04")
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        started = await client.send(
            cmd.StartThread(ins=ins, subject="Vaccins", body="Quand ?", professionals=[rpps]),
            token=parent,
        )
        [sent] = await tap.wait_for("MessageSent", ins=ins)
    [asked] = access.for_holder(ins)
    assert (asked.payload["action"], asked.token) == ("message", parent)
    [row] = await stored(messaging, ins)
    assert (row["sender_kind"], row["sender_name"]) == ("representative", "Paul Durand")
    # On the bus the holder's side is one party, and its people's names stay here.
    assert (sent["payload"]["sender_kind"], sent["payload"]["sender_id"]) == ("holder", ins)
    assert sent["payload"]["sender_name"] is None and "Paul" not in str(sent)
    read = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=parent)
    assert [m.body for m in read.messages] == ["Quand ?"]
    # An appointment that ended: access refuses, and messaging with it.
    access.by_holder[ins] = deny(rule="SPC_04")
    for send in (
        client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=parent),
        client.send(
            cmd.SendMessage(ins=ins, thread_id=started.thread_id, subject="Re", body="Alors ?"),
            token=parent,
        ),
    ):
        assert (await refusal(send)).code == "access_denied"
    # Never for another holder.
    elsewhere = representative_token(keys, messaging, new_nir())
    refused = await refusal(client.send(cmd.ListThreads(ins=ins), token=elsewhere))
    assert refused.code == "not_your_box"


async def test_attachments_are_sealed_and_come_back_whole_to_participants__MSG_01(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    rpps = new_rpps()
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    access.by_holder[ins] = grant(rule="ACC_04")
    at_the_cap = b"%PDF-" + b"x" * (ATTACHMENT_CAP - 5)
    text = "Glycémie : 0,92 g/L".encode()
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        started = await client.send(
            cmd.StartThread(
                ins=ins,
                subject="Compte rendu",
                body="Ci-joint.",
                attachments=[
                    attachment(at_the_cap, filename="cr_biopsie_sein.pdf"),
                    attachment(CDA, "text/xml"),
                    attachment(text, "text/plain"),
                ],
            ),
            token=doctor,
        )
        [sent] = await tap.wait_for("MessageSent", ins=ins)
    assert sent["payload"]["attachments"] == 3 and "biopsie" not in str(sent)
    [message] = (
        await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=holder)
    ).messages
    assert [(a.media_type, a.size, a.filename) for a in message.attachments] == [
        ("application/pdf", ATTACHMENT_CAP, "cr_biopsie_sein.pdf"),
        ("application/hl7-cda+xml", len(CDA), None),  # a CDA, however it was named
        ("text/plain", len(text), None),
    ]
    for info, sent_bytes in zip(message.attachments, (at_the_cap, CDA, text), strict=True):
        for reader in (holder, doctor):
            got = await client.send(
                cmd.GetAttachment(ins=ins, attachment_id=info.attachment_id), token=reader
            )
            assert base64.b64decode(got.content_b64) == sent_bytes
            assert got.sha256 == hashlib.sha256(sent_bytes).hexdigest() == info.sha256
            assert (got.message_id, got.thread_id) == (message.message_id, started.thread_id)
    # Sealed at rest: neither the bytes nor the name are in the clear.
    async with messaging.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM attachments WHERE ins = $1", ins)
    at_rest = b"".join(bytes(v) for r in rows for v in r.values() if isinstance(v, bytes))
    assert b"biopsie" not in at_rest and b"ClinicalDocument" not in at_rest
    assert b"x" * 64 not in at_rest and "Glycémie".encode() not in at_rest
    # Only the thread's participants fetch them.
    stranger = token(keys, messaging, new_rpps(), "professional", "Paul Petit")
    other = await refusal(
        client.send(
            cmd.GetAttachment(ins=ins, attachment_id=message.attachments[0].attachment_id),
            token=stranger,
        )
    )
    assert other.code == "not_found"


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([attachment(b"\x89PNG\r\n\x1a\n" + b"x" * 10, "application/pdf")], "is not"),
        ([attachment(PDF, "image/png")], "is not"),
        ([attachment(b"GIF89a" + b"x" * 10, "image/gif")], "not accepted"),
        ([attachment(b"MZ\x90\x00", "application/octet-stream")], "not accepted"),
        ([attachment(b"texte\x00binaire", "text/plain")], "is not"),
        ([attachment(b"<!DOCTYPE x><ClinicalDocument/>", "text/xml")], "is not"),
        ([attachment(b"%PDF-" + b"x" * ATTACHMENT_CAP)], "larger than the limit"),
        ([attachment(PDF)] * 4, "at most 3"),
        (
            [attachment(b"%PDF-" + b"x" * (ATTACHMENT_CAP - 5), filename=f"{i}") for i in range(3)],
            "together",
        ),
        (
            [
                cmd.NewAttachment(
                    media_type="application/pdf", content_b64="JVBERi0=", sha256="0" * 64
                )
            ],
            "SHA-256",
        ),
        (
            [
                cmd.NewAttachment(
                    media_type="application/pdf", content_b64="not base64!", sha256="0" * 64
                )
            ],
            "base64",
        ),
    ],
)
async def test_an_attachment_not_what_it_claims_or_too_big_is_refused_before_access__MSG_01(
    client: Client,
    messaging: Runtime,
    access: AccessStandIn,
    keys: Keys,
    own_amqp_url: str,
    files: list[cmd.NewAttachment],
    why: str,
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    access.by_holder[ins] = grant(rule="ACC_04")
    doctor = token(keys, messaging, new_rpps(), "professional", "Claire Martin")
    refused = await refusal(
        client.send(
            cmd.StartThread(ins=ins, subject="Pièces", body="Ci-joint", attachments=files),
            token=doctor,
        )
    )
    assert refused.code == "invalid_input" and why in refused.message
    assert access.for_holder(ins) == []  # nothing asked, so nothing traced or alerted
    assert await stored(messaging, ins) == []


async def test_only_participants_read_or_write_in_a_thread__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    rpps = new_rpps()
    access.by_holder[ins] = grant(rule="ACC_04")  # access lets anyone write: MSG_03 still holds
    started = await client.send(
        cmd.StartThread(
            ins=ins, subject="Question", body="Est-ce grave ?", professionals=[rpps],
            attachments=[attachment(PDF)],
        ),
        token=holder,
    )  # fmt: skip
    own = await client.send(cmd.SendMessage(ins=ins, subject="Note", body="Pour moi"), token=holder)
    [message] = (
        await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=holder)
    ).messages
    stranger = token(keys, messaging, new_rpps(), "professional", "Paul Petit")
    participant = token(keys, messaging, rpps, "professional", "Claire Martin")
    for thread_id, outsider in ((started.thread_id, stranger), (own.thread_id, participant)):
        for send in (
            client.send(cmd.ReadThread(ins=ins, thread_id=thread_id), token=outsider),
            client.send(
                cmd.SendMessage(ins=ins, thread_id=thread_id, subject="Re", body="Je lis"),
                token=outsider,
            ),
        ):
            assert (await refusal(send)).code == "not_found"
    stolen = await refusal(
        client.send(
            cmd.GetAttachment(ins=ins, attachment_id=message.attachments[0].attachment_id),
            token=stranger,
        )
    )
    assert stolen.code == "not_found"
    assert (await client.send(cmd.ListThreads(ins=ins), token=stranger)).threads == []
    [theirs] = (await client.send(cmd.ListThreads(), token=participant)).threads
    assert theirs.thread_id == started.thread_id  # not the holder's own thread
    other_holder = token(keys, messaging, new_nir(), "holder", "Autre Personne")
    operator = token(keys, messaging, keys.operator_id, "operator", "operator")
    for who in (other_holder, operator):
        for send in (
            client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=who),
            client.send(cmd.ListThreads(ins=ins), token=who),
        ):
            assert (await refusal(send)).code in ("not_your_box", "forbidden")
    # Nothing was written by any of them; no one but the participants was asked about.
    assert len(await stored(messaging, ins)) == 2
    assert access.for_holder(ins) == []


async def test_a_participant_writes_only_while_access_allows_them__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    rpps = new_rpps()
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    started = await client.send(
        cmd.StartThread(ins=ins, subject="Question", body="Bonjour", professionals=[rpps]),
        token=holder,
    )
    access.by_holder[ins] = deny(rule="ACC_08")
    refused = await refusal(
        client.send(
            cmd.SendMessage(ins=ins, thread_id=started.thread_id, subject="Re", body="Oui"),
            token=doctor,
        )
    )
    assert (refused.code, refused.rule) == ("access_denied", "ACC_08")
    access.by_holder[ins] = silent()
    undecided = await refusal(
        client.send(
            cmd.SendMessage(ins=ins, thread_id=started.thread_id, subject="Re", body="Oui"),
            token=doctor,
        )
    )
    assert undecided.code == "access_undecided"
    assert len(await stored(messaging, ins)) == 1
    # What was written to them, they still read.
    read = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=doctor)
    assert [m.body for m in read.messages] == ["Bonjour"]


async def test_a_professional_lists_their_threads_latest_activity_first_in_pages__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    rpps = new_rpps()
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    threads = []
    for subject in ("premier", "deuxième", "troisième"):
        ins = await space_with_status(messaging, own_amqp_url)
        holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
        started = await client.send(
            cmd.StartThread(ins=ins, subject=subject, body="texte", professionals=[rpps]),
            token=holder,
        )
        threads.append((ins, holder, started.thread_id))
    # The first one moves ahead: its holder writes again.
    ins, holder, first = threads[0]
    await client.send(
        cmd.SendMessage(ins=ins, thread_id=first, subject="relance", body="texte"), token=holder
    )
    page = await client.send(cmd.ListThreads(page_size=2), token=doctor)
    rest = await client.send(cmd.ListThreads(page_size=2, cursor=page.next_cursor), token=doctor)
    assert rest.next_cursor is None
    assert [t.subject for t in page.threads + rest.threads] == ["premier", "troisième", "deuxième"]
    [one] = (await client.send(cmd.ListThreads(ins=threads[1][0]), token=doctor)).threads
    assert one.thread_id == threads[1][2]


async def test_a_closed_space_takes_no_new_thread_nor_message_in_one__RET_05(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    rpps = new_rpps()
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    doctor = token(keys, messaging, rpps, "professional", "Claire Martin")
    access.by_holder[ins] = grant(rule="ACC_04")
    started = await client.send(
        cmd.StartThread(ins=ins, subject="Question", body="Bonjour", professionals=[rpps]),
        token=holder,
    )
    await publish(
        own_amqp_url,
        SpaceClosed(
            ins=ins, closed_at=messaging.now() + timedelta(seconds=1), requested_by=f"holder:{ins}"
        ),
        ins,
        messaging,
    )

    async def closed() -> bool:
        async with messaging.pool.acquire() as conn:
            return await spaces.status(conn, ins) == "closed"

    await eventually(closed)
    asked_before = len(access.for_holder(ins))
    for who in (holder, doctor):
        for send in (
            client.send(
                cmd.SendMessage(ins=ins, thread_id=started.thread_id, subject="Re", body="Alors"),
                token=who,
            ),
            client.send(
                cmd.StartThread(ins=ins, subject="Autre", body="Bonjour", professionals=[rpps])
                if who == holder
                else cmd.StartThread(ins=ins, subject="Autre", body="Bonjour"),
                token=who,
            ),
        ):
            refused = await refusal(send)
            assert (refused.code, refused.rule) == ("space_closed", "RET_05")
    assert len(access.for_holder(ins)) == asked_before  # refused before access is asked
    assert len(await stored(messaging, ins)) == 1


# --- deposits told to the treating physician and the prescriber (MSG_02) ----------------------


async def treating_physician(runtime: Runtime, amqp_url: str, event: Any) -> None:
    """Identity says who the treating physician is; wait until messaging has heard it."""
    await publish(amqp_url, event, event.ins, runtime)

    async def heard() -> bool:
        async with runtime.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT true FROM treating_physicians WHERE ins = $1 AND since = $2",
                    event.ins,
                    event.since,
                )
            )

    await eventually(heard)


def deposited(ins: str, author: str, prescriber: str | None, at: datetime) -> DocumentDeposited:
    return DocumentDeposited(
        document_id=uuid.uuid4(),
        ins=ins,
        document_type="lab_report",
        author_kind="professional",
        author_id=author,
        author_name="Dr Anne Biologiste",
        deposited_at=at,
        prescriber_id=prescriber,
    )


async def notices(client: Client, keys: Keys, runtime: Runtime, rpps: str) -> list[cmd.Message]:
    """Every notice a professional has, through their threads (as their software reads them)."""
    reader = token(keys, runtime, rpps, "professional", "Dr")
    found: list[cmd.Message] = []
    for thread in (await client.send(cmd.ListThreads(), token=reader)).threads:
        read = await client.send(
            cmd.ReadThread(ins=thread.ins, thread_id=thread.thread_id), token=reader
        )
        assert thread.kind == "notices"
        found += read.messages
    return found


async def test_a_deposit_is_sent_to_the_treating_physician_and_the_prescriber__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    physician, prescriber, author = new_rpps(), new_rpps(), new_rpps()
    await treating_physician(
        messaging,
        own_amqp_url,
        TreatingPhysicianDeclared(ins=ins, rpps=physician, since=messaging.now()),
    )
    deposit = deposited(ins, author, prescriber, messaging.now())
    async with EventTap(own_amqp_url, "messaging.#") as tap:
        await publish(own_amqp_url, deposit, ins, messaging)
        await publish(own_amqp_url, deposit, ins, messaging)  # delivered again: told once
        [sent] = await tap.wait_for("MessageSent", ins=ins)

        async def told_all() -> bool:
            return len(await stored(messaging, ins)) >= 3

        await eventually(told_all)
        await asyncio.sleep(0.5)
        # The notifier alerts holders: only the holder's notice is announced.
        assert len(tap.of_type("MessageSent", ins=ins)) == 1
    assert len(await stored(messaging, ins)) == 3
    for rpps, as_whom in ((physician, "médecin traitant"), (prescriber, "prescripteur")):
        [notice] = await notices(client, keys, messaging, rpps)
        assert notice.document_id == deposit.document_id and notice.origin == "deposit"
        assert (notice.sender_id, notice.sender_name) == (author, "Dr Anne Biologiste")
        assert as_whom in (notice.body or "") and "lab_report" in (notice.body or "")
    assert await notices(client, keys, messaging, author) == []  # the author knows
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    [hers] = (await client.send(cmd.ListMessages(ins=ins), token=holder)).messages
    assert hers.document_id == deposit.document_id
    assert sent["payload"]["message_id"] == str(hers.message_id)
    # A notices thread is read, not answered.
    physician_token = token(keys, messaging, physician, "professional", "Dr")
    [thread] = (await client.send(cmd.ListThreads(ins=ins), token=physician_token)).threads
    refused = await refusal(
        client.send(
            cmd.SendMessage(ins=ins, thread_id=thread.thread_id, subject="Re", body="Merci"),
            token=physician_token,
        )
    )
    assert refused.code == "conflict"
    # The next deposit goes to the same notices thread.
    await publish(own_amqp_url, deposited(ins, author, None, messaging.now()), ins, messaging)

    async def second() -> bool:
        return len(await notices(client, keys, messaging, physician)) == 2

    await eventually(second)
    assert await notices(client, keys, messaging, prescriber) != []  # still their first only
    assert len(await notices(client, keys, messaging, prescriber)) == 1


async def test_a_treating_physician_is_told_once_and_never_of_their_own_deposit__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    physician, author = new_rpps(), new_rpps()
    await treating_physician(
        messaging,
        own_amqp_url,
        TreatingPhysicianDeclared(ins=ins, rpps=physician, since=messaging.now()),
    )
    # The treating physician prescribed: one notice, as the treating physician.
    await publish(own_amqp_url, deposited(ins, author, physician, messaging.now()), ins, messaging)
    # Their own deposit, which they prescribed: only the holder is told.
    await publish(
        own_amqp_url, deposited(ins, physician, physician, messaging.now()), ins, messaging
    )

    async def both_told() -> bool:
        return len(await stored(messaging, ins)) >= 3

    await eventually(both_told)
    await asyncio.sleep(0.3)
    [notice] = await notices(client, keys, messaging, physician)
    assert notice.sender_id == author and "médecin traitant" in (notice.body or "")
    assert len(await stored(messaging, ins)) == 3  # two for the holder, one for the physician


async def test_the_latest_treating_physician_is_told_whatever_the_order_of_events__MSG_02(
    client: Client, messaging: Runtime, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    first, second = new_rpps(), new_rpps()
    now = messaging.now()
    await treating_physician(
        messaging,
        own_amqp_url,
        TreatingPhysicianChanged(
            ins=ins, rpps=second, previous_rpps=first, since=now + timedelta(days=1)
        ),
    )
    # The declaration arrives late: it is older, and changes nothing.
    event_id = await publish(
        own_amqp_url, TreatingPhysicianDeclared(ins=ins, rpps=first, since=now), ins, messaging
    )

    async def consumed() -> bool:
        async with messaging.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
                    "messaging.people",
                    event_id,
                )
            )

    await eventually(consumed)
    await publish(own_amqp_url, deposited(ins, new_rpps(), None, messaging.now()), ins, messaging)

    async def told() -> bool:
        return len(await stored(messaging, ins)) >= 2

    await eventually(told)
    assert len(await notices(client, keys, messaging, second)) == 1
    assert await notices(client, keys, messaging, first) == []


async def test_a_thread_with_an_establishment_is_read_by_its_staff_of_the_moment__MSG_01__MSG_03(
    client: Client, messaging: Runtime, access: AccessStandIn, keys: Keys, own_amqp_url: str
) -> None:
    ins = await space_with_status(messaging, own_amqp_url)
    holder = token(keys, messaging, ins, "holder", "Jeanne Durand")
    finess = "750712184"
    nurse, newcomer, elsewhere = new_rpps(), new_rpps(), new_rpps()
    now = messaging.now()
    for rpps in (nurse, newcomer):
        await publish(own_amqp_url, StaffJoined(finess=finess, rpps=rpps, at=now), ins, messaging)
    await publish(
        own_amqp_url, StaffJoined(finess="130783236", rpps=elsewhere, at=now), ins, messaging
    )
    # The newcomer leaves (a later change), and a stale "joined" delivered after changes nothing.
    await publish(
        own_amqp_url,
        StaffLeft(finess=finess, rpps=newcomer, at=now + timedelta(seconds=1)),
        ins,
        messaging,
    )
    await publish(own_amqp_url, StaffJoined(finess=finess, rpps=newcomer, at=now), ins, messaging)

    async def staff_known() -> bool:
        async with messaging.pool.acquire() as conn:
            rows = await conn.fetch("SELECT rpps, present FROM establishment_staff")
        return {(r["rpps"], r["present"]) for r in rows} >= {
            (nurse, True),
            (newcomer, False),
            (elsewhere, True),
        }

    await eventually(staff_known)
    access.by_holder[ins] = grant(rule="ACC_14")
    started = await client.send(
        cmd.StartThread(
            ins=ins, subject="Rendez-vous", body="Quel jour pour l'IRM ?", establishments=[finess]
        ),
        token=holder,
    )
    staff = token(keys, messaging, nurse, "professional", "Paul Infirmier")
    read = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=staff)
    assert [(p.kind, p.id) for p in read.thread.participants] == [
        ("holder", ins),
        ("establishment", finess),
    ]
    await client.send(
        cmd.SendMessage(
            ins=ins, thread_id=started.thread_id, subject="Re: Rendez-vous", body="Mardi 9 h."
        ),
        token=staff,
    )
    [listed] = (await client.send(cmd.ListThreads(), token=staff)).threads
    assert listed.thread_id == started.thread_id
    # Who left, and who works elsewhere, do not see it.
    for outsider in (newcomer, elsewhere):
        other = token(keys, messaging, outsider, "professional", "Ailleurs")
        refused = await refusal(
            client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=other)
        )
        assert refused.code == "not_found"
        assert (await client.send(cmd.ListThreads(), token=other)).threads == []
    mine = await client.send(cmd.ReadThread(ins=ins, thread_id=started.thread_id), token=holder)
    assert [m.body for m in mine.messages] == ["Mardi 9 h.", "Quel jour pour l'IRM ?"]
