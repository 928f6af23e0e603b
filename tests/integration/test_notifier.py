"""notifier against real PostgreSQL, RabbitMQ and SMTP, fed real events through the broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts import commands as cmd
from libs.contracts.envelope import Envelope, Event, envelope_for
from libs.contracts.events import (
    AccessLogged,
    ContactChanged,
    ContactChangedV1,
    HolderAlerted,
    MessageSent,
    MessageSentV1,
    SpaceClosed,
    SpaceOpened,
)
from libs.runtime import Runtime
from services.notifier.domain import ACCESS_DIGEST, mail_subject
from services.notifier.handlers import ACCESS_QUEUE, LIFECYCLE_QUEUE, MESSAGES_QUEUE
from tests.faults.notifier_crash import (
    assert_exactly_once_where_possible,
    kill_between_send_and_commit,
)
from tests.support.access_stand_in import AccessStandIn, deny
from tests.support.actors import sign_in_operator
from tests.support.bus import EventTap, dead_letters, publish_raw
from tests.support.events import access_logged
from tests.support.people import new_nir
from tests.support.sms import SmsServer
from tests.support.smtp import RestartableSmtp
from tests.support.system import Keys, build_service
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration

QUIET = 1.5  # longer than the worker's poll: time enough for a second mail to show up


@pytest.fixture(scope="module")
def mail_server() -> Iterator[RestartableSmtp]:
    server = RestartableSmtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def notifier(
    settings_values: dict[str, Any], mail_server: RestartableSmtp, identity: Runtime
) -> AsyncIterator[Runtime]:
    runtime = build_service(
        "notifier",
        settings_values,
        smtp_port=mail_server.port,
        mail_retry_seconds=0.2,
        mail_retry_max_seconds=1.0,
        digest_sweep_seconds=0.2,
    )
    await runtime.start()
    yield runtime
    await runtime.stop()


# --- helpers --------------------------------------------------------------------------------


async def publish(amqp_url: str, event: Event, envelope: Envelope | None = None) -> Envelope:
    """Publish a real envelope on the real broker, as its owner's outbox relay would."""
    ins = str(getattr(event, "ins", ""))
    envelope = envelope or envelope_for(
        event,
        holder_key=ins,
        occurred_at=datetime.now(UTC),
        correlation_id=f"test-{uuid.uuid4().hex[:8]}",
    )
    await publish_raw(
        amqp_url, event.routing_key(), envelope.model_dump_json().encode(), str(envelope.event_id)
    )
    return envelope


async def handled(notifier: Runtime, queue: str, envelope: Envelope, timeout: float = 15) -> None:
    """Wait until the consumer has committed its handling of the envelope (its inbox row)."""
    async with asyncio.timeout(timeout):
        while not await notifier.pool.fetchval(
            "SELECT true FROM inbox WHERE consumer = $1 AND message_id = $2",
            queue,
            str(envelope.event_id),
        ):
            await asyncio.sleep(0.05)


async def alerts_of(notifier: Runtime, ins: str) -> list[asyncpg.Record]:
    return list(await notifier.pool.fetch("SELECT * FROM alerts WHERE ins = $1 ORDER BY seq", ins))


async def mails_of(notifier: Runtime, ins: str) -> list[asyncpg.Record]:
    return list(
        await notifier.pool.fetch(
            "SELECT m.* FROM mails m JOIN alerts a USING (alert_id) WHERE a.ins = $1", ins
        )
    )


class Registrar:
    """Registers holders in the real identity service, as the health insurance would."""

    def __init__(self, client: Client, operator_token: str) -> None:
        self.client = client
        self.operator_token = operator_token


_REGISTRAR: list[Registrar] = []


@pytest.fixture
async def decider(amqp_url: str, notifier: Runtime) -> AsyncIterator[AccessStandIn]:
    """access.decide, which the inbox asks (the holder's inbox is read as the history is)."""
    stand_in = AccessStandIn(amqp_url)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture(scope="module", autouse=True)
async def registrar(client: Client, keys: Keys, identity: Runtime) -> AsyncIterator[Registrar]:
    token = await sign_in_operator(client, keys)
    _REGISTRAR[:] = [Registrar(client, token)]
    yield _REGISTRAR[0]
    _REGISTRAR.clear()


async def give_contact(
    amqp_url: str,
    notifier: Runtime,
    ins: str,
    email: str | None,
    display_name: str = "Jeanne Durand",
    *,
    minor: bool = False,
    phone: str | None = None,
) -> None:
    """The holder registered in identity (which keeps the address); identity's ContactChanged
    (channels only) reaches the notifier. For a minor, `email` is the representative's."""
    first, last = display_name.split(" ", 1)
    registrar = _REGISTRAR[0]
    await registrar.client.send(
        cmd.RegisterHolder(
            nir=ins,
            first_name=first,
            last_name=last,
            birth_date=date(2015, 6, 1) if minor else date(1985, 5, 1),
            email=None if minor else email,
            phone=phone,
            legal_representative_email=email if minor else None,
        ),
        token=registrar.operator_token,
    )
    async with asyncio.timeout(15):
        while not await notifier.pool.fetchval(
            "SELECT changed_at IS NOT NULL FROM contacts WHERE ins = $1", ins
        ):
            await asyncio.sleep(0.05)


def new_email() -> str:
    return f"holder-{uuid.uuid4().hex[:10]}@example.org"


def access(ins: str, **overrides: Any) -> AccessLogged:
    return access_logged(
        ins,
        **{"rule": "ACC_05:consent", "at": datetime(2025, 7, 14, 12, 30, tzinfo=UTC), **overrides},
    )


def holder_token(keys: Keys, notifier: Runtime, ins: str) -> str:
    return token_for(
        keys.identity_private, sub=ins, kind="holder", name="Jeanne Durand", now=notifier.now()
    )


def text_of(mail: EmailMessage) -> str:
    return str(mail.get_content())


# --- NTF_01: every access, one alert --------------------------------------------------------


async def test_a_granted_access_by_a_professional_gives_one_alert_and_one_mail__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    async with EventTap(amqp_url, HolderAlerted.routing_key()) as tap:
        envelope = await publish(amqp_url, access(ins, action="deposit"))
        mails = await mail_server.mailbox.wait_for(email)
        published = await tap.wait_for("HolderAlerted", ins=ins)
    await asyncio.sleep(QUIET)

    alerts = await alerts_of(notifier, ins)
    assert len(alerts) == 1
    assert alerts[0]["kind"] == "access"
    assert alerts[0]["cause_event_id"] == envelope.event_id
    assert len(mail_server.mailbox.to(email)) == 1
    mail = mails[0]
    body = text_of(mail)
    # who, when (Paris summer time), what
    assert "Claire Martin (médecin)" in body
    assert "le 14 juillet 2025 à 14:30" in body
    assert "a ajouté un document à votre dossier" in body
    # no medical content: nothing but who, when and what
    assert "ACC_05" not in body
    assert "document_type" not in body
    assert mail["Message-ID"] == f"<{alerts[0]['alert_id']}@espace-sante.local>"
    assert "accès" in str(mail["Subject"])
    assert published[0]["payload"]["channels"] == ["space", "email"]
    assert published[0]["payload"]["cause_event_id"] == str(envelope.event_id)
    sent = await mails_of(notifier, ins)
    assert sent[0]["sent_at"] is not None


async def test_the_same_event_delivered_twice_gives_one_alert_and_one_mail__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    event = access(ins)
    envelope = await publish(amqp_url, event)
    await publish(amqp_url, event, envelope)  # same event id: a redelivery
    await mail_server.mailbox.wait_for(email)
    # A later event on the same queue, handled: the duplicate before it has been too.
    later = await publish(amqp_url, access(new_nir()))
    await handled(notifier, ACCESS_QUEUE, later)
    await asyncio.sleep(QUIET)
    assert len(await alerts_of(notifier, ins)) == 1
    assert len(mail_server.mailbox.to(email)) == 1


async def test_one_alert_per_cause_even_if_the_inbox_had_forgotten_it__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    """The UNIQUE cause is the second guard: past the inbox, still never two."""
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    event = access(ins)
    envelope = await publish(amqp_url, event)
    await handled(notifier, ACCESS_QUEUE, envelope)
    await mail_server.mailbox.wait_for(email)
    await notifier.pool.execute(
        "DELETE FROM inbox WHERE consumer = $1 AND message_id = $2",
        ACCESS_QUEUE,
        str(envelope.event_id),
    )
    await publish(amqp_url, event, envelope)
    await handled(notifier, ACCESS_QUEUE, envelope)
    await asyncio.sleep(QUIET)
    assert len(await alerts_of(notifier, ins)) == 1
    assert len(await mails_of(notifier, ins)) == 1
    assert len(mail_server.mailbox.to(email)) == 1


async def test_the_holders_own_access_and_denied_attempts_are_not_alerted__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    own = await publish(
        amqp_url,
        access(ins, actor_kind="holder", actor_id=ins, actor_name="Jeanne", actor_profession=None),
    )
    # Product choice: denied attempts are in the access history, not alerted.
    denied = await publish(amqp_url, access(ins, outcome="denied"))
    await handled(notifier, ACCESS_QUEUE, own)
    await handled(notifier, ACCESS_QUEUE, denied)
    await asyncio.sleep(QUIET)
    assert await alerts_of(notifier, ins) == []
    assert mail_server.mailbox.to(email) == []


# --- NTF_02, NTF_03 -------------------------------------------------------------------------


async def test_the_space_opening_is_alerted__NTF_02(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    opened = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    await publish(amqp_url, SpaceOpened(ins=ins, opened_at=opened))
    mails = await mail_server.mailbox.wait_for(email)
    alerts = await alerts_of(notifier, ins)
    assert [a["kind"] for a in alerts] == ["space_opened"]
    assert "Votre espace santé est ouvert depuis le 1er mars 2025 à 11:00" in text_of(mails[0])


async def test_a_new_secure_message_is_alerted_without_its_subject_or_body__NTF_03(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    # Version 1 (with a subject) is still read from the queue; the subject is ignored.
    await publish(
        amqp_url,
        MessageSentV1(
            message_id=uuid.uuid4(),
            ins=ins,
            sender_kind="professional",
            sender_id="10001234567",
            sender_name="Claire Martin",
            subject="Résultats de votre biopsie",
            sent_at=datetime(2025, 3, 1, 10, 0, tzinfo=UTC),
        ),
    )
    mails = await mail_server.mailbox.wait_for(email)
    alerts = await alerts_of(notifier, ins)
    assert [a["kind"] for a in alerts] == ["new_message"]
    body = text_of(mails[0])
    assert "nouveau message sécurisé de Claire Martin" in body
    for text in (body, str(mails[0]["Subject"]), alerts[0]["text"]):
        assert "biopsie" not in text.lower()
        assert "résultats" not in text.lower()


# --- channels: SPC_06, NTF_04 ---------------------------------------------------------------


async def test_a_holder_with_no_email_keeps_the_alert_in_the_space_only__SPC_06(
    notifier: Runtime, amqp_url: str
) -> None:
    ins = new_nir()
    await give_contact(amqp_url, notifier, ins, None)
    async with EventTap(amqp_url, HolderAlerted.routing_key()) as tap:
        envelope = await publish(amqp_url, access(ins))
        await handled(notifier, ACCESS_QUEUE, envelope)
        published = await tap.wait_for("HolderAlerted", ins=ins)
    assert len(await alerts_of(notifier, ins)) == 1
    assert await mails_of(notifier, ins) == []
    assert published[0]["payload"]["channels"] == ["space"]


async def test_a_minors_alerts_go_to_the_legal_representative__NTF_04(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, representative = new_nir(year=15), new_email()
    # identity gives the representative's address for a minor
    await give_contact(amqp_url, notifier, ins, representative, "Léo Durand", minor=True)
    await publish(amqp_url, access(ins))
    mails = await mail_server.mailbox.wait_for(representative)
    assert len(mails) == 1
    assert "espace santé de Léo Durand" in text_of(mails[0])
    assert "Claire Martin (médecin) a consulté votre dossier" in text_of(mails[0])


async def test_an_alert_raised_before_the_contact_is_known_is_mailed_when_it_is__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    envelope = await publish(amqp_url, access(ins))
    await handled(notifier, ACCESS_QUEUE, envelope)
    assert await mails_of(notifier, ins) == []
    await give_contact(amqp_url, notifier, ins, email)
    await mail_server.mailbox.wait_for(email)
    await asyncio.sleep(QUIET)
    assert len(mail_server.mailbox.to(email)) == 1
    assert len(await alerts_of(notifier, ins)) == 1


async def test_an_access_after_closure_is_still_alerted_and_mailed__RET_05(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    closed = await publish(
        amqp_url, SpaceClosed(ins=ins, closed_at=datetime.now(UTC), requested_by=f"holder:{ins}")
    )
    await handled(notifier, LIFECYCLE_QUEUE, closed)
    # an access granted before the closure, whose trace arrives after it
    await publish(amqp_url, access(ins))
    await mail_server.mailbox.wait_for(email)
    assert len(await alerts_of(notifier, ins)) == 1


# --- delivery -------------------------------------------------------------------------------


async def test_a_mail_waits_out_an_smtp_outage_and_is_delivered_once__NTF_01(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    mail_server.stop()
    try:
        await publish(amqp_url, access(ins))
        async with asyncio.timeout(15):
            while True:
                pending = await mails_of(notifier, ins)
                if pending and pending[0]["attempts"] >= 2:
                    break
                await asyncio.sleep(0.05)
        assert pending[0]["sent_at"] is None
        assert pending[0]["last_error"]
        assert len(await alerts_of(notifier, ins)) == 1  # the alert itself is already there
    finally:
        mail_server.start()
    await mail_server.mailbox.wait_for(email)
    await asyncio.sleep(QUIET)
    assert len(mail_server.mailbox.to(email)) == 1
    delivered = await mails_of(notifier, ins)
    assert delivered[0]["sent_at"] is not None


async def test_a_malformed_message_is_dead_lettered_and_the_next_one_still_handled(
    notifier: Runtime, amqp_url: str
) -> None:
    await dead_letters(amqp_url, ACCESS_QUEUE)  # start from an empty dead-letter queue
    bad_id = f"bad-{uuid.uuid4().hex[:8]}"
    await publish_raw(amqp_url, AccessLogged.routing_key(), b"{not json", bad_id)
    ins = new_nir()
    good = await publish(amqp_url, access(ins))
    await handled(notifier, ACCESS_QUEUE, good)
    assert len(await alerts_of(notifier, ins)) == 1

    found: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(15):
        while not any(m.message_id == bad_id for m in found):
            found += await dead_letters(amqp_url, ACCESS_QUEUE)
            await asyncio.sleep(0.1)
    dead = next(m for m in found if m.message_id == bad_id)
    assert str((dead.headers or {}).get("x-dead-reason", "")).startswith("schema:")
    assert (dead.headers or {}).get("x-original-queue") == ACCESS_QUEUE


# --- ListAlerts -----------------------------------------------------------------------------


async def test_the_holder_lists_their_alerts_newest_first_and_no_one_else_can__NTF_04(
    notifier: Runtime, amqp_url: str, client: Client, keys: Keys, decider: AccessStandIn
) -> None:
    ins = new_nir()
    await give_contact(amqp_url, notifier, ins, None)
    opened = await publish(amqp_url, SpaceOpened(ins=ins, opened_at=datetime.now(UTC)))
    await handled(notifier, LIFECYCLE_QUEUE, opened)
    message = await publish(
        amqp_url,
        MessageSent(
            message_id=uuid.uuid4(),
            ins=ins,
            sender_kind="professional",
            sender_id="10001234567",
            sender_name="Claire Martin",
            sent_at=datetime.now(UTC),
        ),
    )
    await handled(notifier, MESSAGES_QUEUE, message)

    token = holder_token(keys, notifier, ins)
    listed = await client.send(cmd.ListAlerts(ins=ins), token=token)
    assert [a.kind for a in listed.alerts] == ["new_message", "space_opened"]
    assert all(a.read_at is None and a.delivery == "in_space" for a in listed.alerts)
    assert decider.requests[-1].payload == {
        "ins": ins,
        "action": "read_history",
        "emergency": False,
    }
    # A page at a time, and what was read no longer among the unread.
    first = await client.send(cmd.ListAlerts(ins=ins, page_size=1), token=token)
    second = await client.send(
        cmd.ListAlerts(ins=ins, page_size=1, cursor=first.next_cursor), token=token
    )
    assert [a.kind for a in first.alerts + second.alerts] == ["new_message", "space_opened"]
    assert second.next_cursor is None
    read = await client.send(
        cmd.MarkAlertsRead(ins=ins, alert_ids=[first.alerts[0].alert_id]), token=token
    )
    assert read.marked == 1
    unread = await client.send(cmd.ListAlerts(ins=ins, unread_only=True), token=token)
    assert [a.kind for a in unread.alerts] == ["space_opened"]

    # Whoever access refuses (another holder, a professional: ACC_01, ACC_03) reads nothing.
    decider.policy = deny("ACC_01", "a holder accesses only their own space")
    with pytest.raises(RpcError) as refused:
        await client.send(cmd.ListAlerts(ins=ins), token=holder_token(keys, notifier, new_nir()))
    assert (refused.value.code, refused.value.rule) == ("access_denied", "ACC_01")
    with pytest.raises(RpcError) as refused:
        await client.send(
            cmd.MarkAlertsRead(ins=ins, alert_ids=[first.alerts[0].alert_id]), token=token
        )
    assert refused.value.code == "access_denied"


# --- contact details stay in identity -------------------------------------------------------


async def test_the_notifier_keeps_no_address_and_asks_identity_when_it_sends__NTF_04(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    await publish(amqp_url, access(ins))
    await mail_server.mailbox.wait_for(email)
    columns = {
        r["column_name"]
        for r in await notifier.pool.fetch(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name IN ('contacts', 'mails')"""
        )
    }
    assert not columns & {"email", "phone", "display_name", "to_address", "subject", "body"}
    contact = await notifier.pool.fetchrow("SELECT * FROM contacts WHERE ins = $1", ins)
    assert contact["channels"] == ["email"]
    assert email not in str(dict(contact))


async def test_an_old_contact_changed_v1_is_read_without_keeping_its_addresses__NTF_04(
    notifier: Runtime, amqp_url: str
) -> None:
    ins = new_nir()
    envelope = await publish(
        amqp_url,
        ContactChangedV1(
            ins=ins, display_name="Jeanne Durand", email="old@example.org", phone="+33612345678"
        ),
    )
    await handled(notifier, LIFECYCLE_QUEUE, envelope)
    contact = await notifier.pool.fetchrow("SELECT * FROM contacts WHERE ins = $1", ins)
    assert contact["channels"] == ["email", "sms"]
    assert "old@example.org" not in str(dict(contact))


async def test_a_holder_whose_email_is_gone_keeps_the_alert_in_the_space__SPC_06(
    notifier: Runtime, amqp_url: str
) -> None:
    """The channel was announced, but identity has no address when the mail is sent."""
    ins = new_nir()
    await give_contact(amqp_url, notifier, ins, None)
    await notifier.pool.execute("UPDATE contacts SET channels = '{email}' WHERE ins = $1", ins)
    await publish(amqp_url, access(ins))
    async with asyncio.timeout(15):
        while not (rows := await mails_of(notifier, ins)) or rows[0]["sent_at"] is None:
            await asyncio.sleep(0.05)
    assert rows[0]["outcome"] == "no_address"
    assert len(await alerts_of(notifier, ins)) == 1


async def test_a_holder_identity_does_not_know_closes_as_no_address_beside_one_it_knows__NTF_04(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    """The worker asks identity once for its batch (`GetAlertContacts`); a holder identity
    does not know is told apart from one it knows, and only the known one is mailed."""
    known, email, unknown = new_nir(), new_email(), new_nir()
    await give_contact(amqp_url, notifier, known, email)
    await notifier.pool.execute(
        "INSERT INTO contacts (ins, channels, changed_at) VALUES ($1, '{email}', now())", unknown
    )
    await publish(amqp_url, access(unknown))
    await publish(amqp_url, access(known))
    await mail_server.mailbox.wait_for(email)
    async with asyncio.timeout(15):
        while not (rows := await mails_of(notifier, unknown)) or rows[0]["sent_at"] is None:
            await asyncio.sleep(0.05)
    assert rows[0]["outcome"] == "no_address"
    assert len(await alerts_of(notifier, unknown)) == 1
    [mailed] = await mails_of(notifier, known)
    assert (mailed["outcome"], mailed["email_outcome"]) == ("sent", "sent")


async def test_finished_mail_rows_are_pruned_after_thirty_days_and_alerts_kept(
    settings_values: dict[str, Any], mail_server: RestartableSmtp, notifier: Runtime, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    await publish(amqp_url, access(ins))
    await mail_server.mailbox.wait_for(email)
    async with asyncio.timeout(15):
        while not (rows := await mails_of(notifier, ins)) or rows[0]["sent_at"] is None:
            await asyncio.sleep(0.05)
    # A second worker with a short prune period, on the same database: rows 31 days old go.
    await notifier.pool.execute(
        "UPDATE mails SET sent_at = sent_at - interval '31 days' WHERE alert_id = $1",
        rows[0]["alert_id"],
    )
    pruner = build_service("notifier", settings_values, mail_prune_seconds=0.2)
    await pruner.start()
    try:
        async with asyncio.timeout(15):
            while await mails_of(notifier, ins):
                await asyncio.sleep(0.1)
    finally:
        await pruner.stop()
    assert len(await alerts_of(notifier, ins)) == 1


# --- SMS (NTF_04) ---------------------------------------------------------------------------


def new_phone() -> str:
    return f"+3361{uuid.uuid4().int % 10**7:07d}"  # 061…: always an allocated range


async def test_an_alert_goes_by_sms_and_by_mail_once_each_without_its_content__NTF_04(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str, sms: SmsServer
) -> None:
    ins, email, phone = new_nir(), new_email(), new_phone()
    await give_contact(amqp_url, notifier, ins, email, phone=phone)
    await publish(amqp_url, access(ins))
    [text] = await sms.inbox.wait_for(phone)
    await mail_server.mailbox.wait_for(email)
    [alert] = await alerts_of(notifier, ins)
    assert text.idempotency_key == str(alert["alert_id"])
    assert "un accès à votre dossier" in text.text and "Claire Martin" not in text.text
    await asyncio.sleep(QUIET)
    assert len(sms.inbox.to(phone)) == 1 and len(mail_server.mailbox.to(email)) == 1
    async with asyncio.timeout(10):
        while (
            await notifier.pool.fetchval("SELECT delivery FROM alerts WHERE ins = $1", ins)
        ) != "sent":
            await asyncio.sleep(0.05)


async def test_a_failing_sms_is_retried_alone_and_a_refused_one_given_up_into_the_inbox__NTF_04(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str, sms: SmsServer
) -> None:
    ins, email, phone = new_nir(), new_email(), new_phone()
    await give_contact(amqp_url, notifier, ins, email, phone=phone)
    sms.fail_next(2, 503, to=phone)  # the provider is away twice, then takes it
    await publish(amqp_url, access(ins))
    await sms.inbox.wait_for(phone, timeout=20)
    await asyncio.sleep(QUIET)
    assert len(mail_server.mailbox.to(email)) == 1  # the mail was not sent again on retry

    refused_ins, refused_phone = new_nir(), new_phone()
    await give_contact(amqp_url, notifier, refused_ins, None, phone=refused_phone)
    # A phone only: identity sends the activation code there first.
    await sms.inbox.wait_for(refused_phone, text="activation")
    sms.fail_next(1, 400, to=refused_phone)  # refused for good: never retried
    await publish(amqp_url, access(refused_ins))
    async with asyncio.timeout(15):
        while (
            await notifier.pool.fetchval("SELECT delivery FROM alerts WHERE ins = $1", refused_ins)
        ) != "failed":
            await asyncio.sleep(0.05)
    assert sms.inbox.to(refused_phone, text="accès") == []
    assert len(await alerts_of(notifier, refused_ins)) == 1  # it is in the inbox (SPC_06)


# --- bursts: the first few, then one digest (NTF_01, NTF_02) --------------------------------


async def alerts_counted(notifier: Runtime, ins: str, count: int, timeout: float = 90) -> None:
    async with asyncio.timeout(timeout):
        while (
            await notifier.pool.fetchval("SELECT count(*) FROM alerts WHERE ins = $1", ins) < count
        ):
            await asyncio.sleep(0.1)


async def end_the_window(notifier: Runtime, ins: str) -> None:
    """Ten minutes pass for this holder's burst (the shared clock is not moved for the session:
    its digest is made due now)."""
    await notifier.pool.execute(
        "UPDATE digests SET due_at = $2 WHERE ins = $1 AND queued_at IS NULL",
        ins,
        notifier.now() - timedelta(seconds=1),
    )


async def test_200_accesses_in_a_minute_mail_the_first_three_then_one_digest_and_list_all__NTF_01(
    notifier: Runtime,
    mail_server: RestartableSmtp,
    amqp_url: str,
    sms: SmsServer,
    client: Client,
    keys: Keys,
    decider: AccessStandIn,
) -> None:
    ins, email, phone = new_nir(), new_email(), new_phone()
    await give_contact(amqp_url, notifier, ins, email, phone=phone)
    start = datetime(2025, 3, 5, 13, 5, 30, tzinfo=UTC)
    for i in range(200):  # a care team, 200 reads in a minute
        await publish(amqp_url, access(ins, at=start + timedelta(milliseconds=295 * i)))
    await alerts_counted(notifier, ins, 200)
    await mail_server.mailbox.wait_for(email, 3)
    await sms.inbox.wait_for(phone, 3, text="accès")
    await asyncio.sleep(QUIET)
    # The window (ten minutes) is not over: three went out, the others wait for the digest.
    assert len(mail_server.mailbox.to(email)) == 3
    assert len(sms.inbox.to(phone, text="accès")) == 3
    [digest] = await notifier.pool.fetch("SELECT * FROM digests WHERE ins = $1", ins)
    assert digest["queued_at"] is None
    burst = await notifier.pool.fetchrow(
        "SELECT burst_started_at FROM contacts WHERE ins = $1", ins
    )
    assert digest["due_at"] == burst["burst_started_at"] + timedelta(minutes=10)
    assert (
        await notifier.pool.fetchval(
            "SELECT count(*) FROM alerts"
            " WHERE ins = $1 AND digest_id = $2 AND delivery = 'in_digest'",
            ins,
            digest["digest_id"],
        )
        == 197
    )

    await end_the_window(notifier, ins)
    digest_subject = mail_subject(ACCESS_DIGEST)
    [told] = await mail_server.mailbox.wait_for(email, 1, subject=digest_subject)
    [texted] = await sms.inbox.wait_for(phone, 1, text="autres accès")
    await asyncio.sleep(QUIET)
    # Exactly once: the three, and one digest, by each channel.
    assert len(mail_server.mailbox.to(email)) == 4
    assert len(sms.inbox.to(phone, text="accès")) == 4
    assert told["Message-ID"] == f"<{digest['digest_id']}@espace-sante.local>"
    assert texted.idempotency_key == str(digest["digest_id"])
    body = text_of(told)
    assert (
        "197 autres accès à votre dossier le 5 mars 2025 entre 14:05 et 14:06 (Europe/Paris)"
        in (body)
    )
    assert "Claire Martin" not in body and "Claire Martin" not in texted.text
    assert "197 autres accès" in texted.text

    # Every access is in the inbox, each with its own words.
    token = holder_token(keys, notifier, ins)
    listed = await client.send(cmd.ListAlerts(ins=ins, page_size=200), token=token)
    assert len(listed.alerts) == 200 and listed.next_cursor is None
    assert {a.kind for a in listed.alerts} == {"access"}
    assert len({a.alert_id for a in listed.alerts}) == 200
    assert sorted(a.delivery for a in listed.alerts).count("in_digest") == 197
    assert all(a.local_time and a.local_time.endswith("(Europe/Paris)") for a in listed.alerts)


async def test_an_emergency_access_in_a_burst_is_mailed_at_once_never_folded__NTF_02(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    for _ in range(5):
        await publish(amqp_url, access(ins))
    await alerts_counted(notifier, ins, 5)
    await publish(amqp_url, access(ins, emergency=True, actor_profession="regulating_physician"))
    await alerts_counted(notifier, ins, 6)
    mails = await mail_server.mailbox.wait_for(email, 4)
    await asyncio.sleep(QUIET)
    assert len(mail_server.mailbox.to(email)) == 4  # three, and the emergency
    assert any("En situation d'urgence" in text_of(m) for m in mails)
    assert (
        await notifier.pool.fetchval(
            "SELECT count(*) FROM alerts WHERE ins = $1 AND delivery = 'in_digest'", ins
        )
        == 2
    )
    await end_the_window(notifier, ins)
    [told] = await mail_server.mailbox.wait_for(email, 1, subject=mail_subject(ACCESS_DIGEST))
    assert "2 autres accès" in text_of(told)


async def test_a_digest_waits_for_a_channel_and_a_holder_with_none_gets_none__SPC_06(
    notifier: Runtime, amqp_url: str
) -> None:
    """No channel: every alert is in the space only, nothing is folded or sent."""
    ins = new_nir()
    await give_contact(amqp_url, notifier, ins, None)
    for _ in range(5):
        await publish(amqp_url, access(ins))
    await alerts_counted(notifier, ins, 5)
    assert await notifier.pool.fetchval("SELECT count(*) FROM digests WHERE ins = $1", ins) == 0
    assert {r["delivery"] for r in await alerts_of(notifier, ins)} == {"in_space"}


# --- the holder's time zone (NTF_01, NTF_04) ------------------------------------------------


async def test_an_overseas_holder_reads_times_in_their_zone_in_mail_sms_and_inbox__NTF_04(
    notifier: Runtime,
    mail_server: RestartableSmtp,
    amqp_url: str,
    sms: SmsServer,
    client: Client,
    keys: Keys,
    decider: AccessStandIn,
) -> None:
    ins, email, phone = new_nir(), new_email(), new_phone()
    await give_contact(amqp_url, notifier, ins, email, phone=phone)
    token = holder_token(keys, notifier, ins)
    chosen = await client.send(
        cmd.SetContactPreferences(
            ins=ins, email=email, phone=phone, time_zone="America/Guadeloupe"
        ),
        token=token,
    )
    assert chosen.time_zone == "America/Guadeloupe"
    async with asyncio.timeout(15):
        while (
            await notifier.pool.fetchval("SELECT time_zone FROM contacts WHERE ins = $1", ins)
            != "America/Guadeloupe"
        ):
            await asyncio.sleep(0.05)
    # Left as chosen when a later change does not say.
    again = await client.send(
        cmd.SetContactPreferences(ins=ins, email=email, phone=phone), token=token
    )
    assert again.time_zone == "America/Guadeloupe"

    await publish(amqp_url, access(ins))  # 12:30 UTC on 14 July: 08:30 in Guadeloupe
    [mail] = await mail_server.mailbox.wait_for(email)
    [text] = await sms.inbox.wait_for(phone, text="accès")
    said = "le 14 juillet 2025 à 08:30 (America/Guadeloupe)"
    assert said in text_of(mail)
    assert said in text.text
    listed = await client.send(cmd.ListAlerts(ins=ins), token=token)
    [alert] = listed.alerts
    assert (alert.time_zone, alert.local_time) == ("America/Guadeloupe", said)
    assert said in alert.text

    # A zone that is not an IANA name is refused, as a hostile client would send it.
    with pytest.raises(RpcError) as refused:
        await client.rpc.call(
            cmd.IDENTITY,
            "SetContactPreferences",
            {"ins": ins, "email": email, "time_zone": "Mars/Olympus_Mons"},
            token=token,
            request_id=uuid.uuid4().hex,
        )
    assert refused.value.code == "invalid_input"
    assert "time zone" in refused.value.message


async def test_a_contact_changed_without_a_zone_is_read_as_paris_time__NTF_04(
    notifier: Runtime, amqp_url: str
) -> None:
    """A ContactChanged v2 published before the zone existed is still read."""
    ins = new_nir()
    envelope = envelope_for(
        ContactChanged(ins=ins, channels=["email"]),
        holder_key=ins,
        occurred_at=datetime.now(UTC),
        correlation_id="test-old-v2",
    )
    body = envelope.model_dump(mode="json")
    del body["payload"]["time_zone"]
    await publish_raw(
        amqp_url, ContactChanged.routing_key(), json.dumps(body).encode(), str(envelope.event_id)
    )
    await handled(notifier, LIFECYCLE_QUEUE, envelope)
    contact = await notifier.pool.fetchrow("SELECT * FROM contacts WHERE ins = $1", ins)
    assert (contact["channels"], contact["time_zone"]) == (["email"], "Europe/Paris")


# --- consent collected on the holder's behalf (ACC_05) --------------------------------------


async def test_an_access_under_a_consent_another_collected_says_who_and_why__ACC_05(
    notifier: Runtime, mail_server: RestartableSmtp, amqp_url: str
) -> None:
    ins, email = new_nir(), new_email()
    await give_contact(amqp_url, notifier, ins, email)
    await publish(
        amqp_url,
        access(ins, action="collect_consent", consent_for="10009876543", consent_reason="referral"),
    )
    await mail_server.mailbox.wait_for(email)
    await publish(
        amqp_url,
        access(
            ins,
            actor_id="10009876543",
            actor_name="Paul Durand",
            consent_collected_by="10001234567",
            consent_reason="referral",
        ),
    )
    collected, used = await mail_server.mailbox.wait_for(email, 2)
    assert (
        "Claire Martin (médecin) a recueilli votre consentement pour le professionnel"
        " n° 10009876543 (motif : vous orienter vers ce professionnel)"
    ) in text_of(collected)
    assert (
        "Paul Durand (médecin) a consulté votre dossier, avec votre consentement recueilli pour"
        " lui par le professionnel n° 10001234567 (motif : vous orienter vers ce professionnel)"
    ) in text_of(used)


# --- exactly once, where a channel can promise it (NTF_01, NTF_04) --------------------------


async def test_killed_between_send_and_commit_each_alert_mails_at_least_once_sms_once__NTF_01(
    own_database_url: str, own_amqp_url: str, tmp_path: Path
) -> None:
    """The fault suite's scenario (tests/faults/notifier_crash.py) on the local servers, with a
    database and vhost of its own: identity and the notifier as processes, the notifier killed
    -9 while the SMTP server, then the SMS provider, hold their answer."""
    outcome = await kill_between_send_and_commit(own_database_url, own_amqp_url, tmp_path)
    assert_exactly_once_where_possible(outcome)
