"""The notifier killed (kill -9) between a send and its commit, twice: once while the SMTP server
holds a mail it has read but not yet answered, once while the SMS provider holds an SMS it has
kept but not yet answered. Each `AccessLogged` is delivered twice before the crashes and once
more after. What the servers received tells what each channel guarantees:

- SMS, exactly once per alert: the alert's id is the idempotency key; the resend after the
  crash carries it again and the provider keeps the first (`scripts/sms_sink.py`, like a real
  provider's API).
- Mail, at least once per alert: SMTP has no idempotency key; the relay took the whole message
  before the crash, the notifier could not know, and sends it again after. Both copies carry the
  alert's id as Message-ID: one Message-ID per alert, never a mail for an alert that does not
  exist, never zero.

No production code knows of this test: the servers themselves stall (an aiosmtpd handler that
holds its answer to DATA, the SMS sink's `on_message` that holds its answer), and the kill is a
real SIGKILL of the notifier's process (`harness.System`). Used by the fault suite (private
servers) and by the integration suite (the local servers, a database and vhost of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller

from libs.contracts import commands as cmd
from libs.contracts.envelope import Envelope, envelope_for
from libs.contracts.events import AccessLogged
from scripts import processes
from scripts.sms_sink import Sms, SmsServer
from scripts.smtp_sink import free_port
from tests.faults import harness
from tests.support.bus import publish_raw
from tests.support.events import access_logged
from tests.support.people import new_nir
from tests.support.system import new_keys

ALERTS = 3  # fewer than a burst's first few: each alert goes out on its own
HOLD = 30.0  # how long a stalled server holds its answer: far past the kill


@dataclass
class StallingMailbox:
    """An SMTP handler that keeps what it receives and, once armed for an address, holds its
    answer to the next DATA to it (the message is received whole: the relay has it)."""

    messages: list[EmailMessage] = field(default_factory=list)
    armed_for: str | None = None
    holding: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.armed_for is not None and self.armed_for in envelope.rcpt_tos:
            self.armed_for = None
            self.holding.set()
            await asyncio.sleep(HOLD)  # the client is killed meanwhile
        return "250 Message accepted for delivery"

    def to(self, address: str, subject: str = "") -> list[EmailMessage]:
        return [
            m for m in list(self.messages) if m["To"] == address and subject in str(m["Subject"])
        ]


class StallingSms:
    """The SMS sink's `on_message`: once armed, holds the answer to the next new SMS, which the
    provider has kept (so a resend with the same key is answered as the first)."""

    def __init__(self) -> None:
        self.armed = False
        self.holding = threading.Event()

    def __call__(self, sms: Sms) -> None:
        if self.armed:
            self.armed = False
            self.holding.set()
            time.sleep(HOLD)  # in the server's request thread, after the message was kept


@dataclass
class Outcome:
    alert_ids: list[str]  # the alerts the notifier stored, one per cause
    causes: int
    message_ids: dict[str, int]  # Message-ID → mails received
    sms_keys: dict[str, int]  # idempotency key → SMS kept
    # idempotency key → the provider's answers to it (202 kept, 200 a known key); the held
    # request is answered only after the run, so it is not among them
    sms_answers: dict[str, list[int]]
    stalled_mail: str  # the Message-ID of the mail held when the notifier was killed
    stalled_sms: str  # the idempotency key of the SMS held when the notifier was killed


async def _until(check: Any, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _wait_event(event: threading.Event, timeout: float, what: str) -> None:
    if not await asyncio.to_thread(event.wait, timeout):
        raise AssertionError(f"timed out waiting for {what}")


def _message_id(message: EmailMessage) -> str:
    found = re.match(r"<([0-9a-f-]{36})@", str(message["Message-ID"] or ""))
    return found[1] if found else ""


async def _publish(amqp_url: str, envelope: Envelope) -> None:
    await publish_raw(
        amqp_url,
        AccessLogged.routing_key(),
        envelope.model_dump_json().encode(),
        str(envelope.event_id),
    )


@contextlib.asynccontextmanager
async def _servers() -> AsyncIterator[tuple[Controller, StallingMailbox, SmsServer, StallingSms]]:
    mailbox, stalling_sms = StallingMailbox(), StallingSms()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with SmsServer(on_message=stalling_sms) as sms:
            yield controller, mailbox, sms, stalling_sms
    finally:
        controller.stop()


async def kill_between_send_and_commit(
    database_url: str, amqp_url: str, logs: Path, timeout: float = 90.0
) -> Outcome:
    """Identity and the notifier as processes on the given (fresh) database and vhost; one holder
    with an e-mail and a phone; ALERTS accesses, each delivered twice; the notifier killed while
    the mail server holds a mail, restarted, killed while the SMS provider holds an SMS,
    restarted; each access delivered once more; then what every server received."""
    keys = new_keys("crash-operator")
    async with _servers() as (smtp, mailbox, sms, stalling_sms):
        values = {
            **harness.service_values(database_url, amqp_url, keys, smtp.port),
            "sms_gateway_url": sms.url,
            "sms_api_key": sms.api_key,
            # A crashed worker's claims come back within seconds, and retries are quick.
            "delivery_lease_seconds": 2.0,
            "mail_retry_seconds": 0.2,
            "mail_retry_max_seconds": 1.0,
            "smtp_timeout_seconds": HOLD * 2,  # the notifier waits for the held answer
        }
        system = harness.System(values, keys, logs)
        system.start("identity")
        system.start("notifier")
        rpc, client = await harness.connect_client(amqp_url)
        conn = await asyncpg.connect(database_url)
        try:
            await processes.wait_ready(
                client, ["identity.commands", "notifier.commands"], timeout=timeout
            )
            operator = (
                await client.sign_in_with_card("operator", keys.operator_id, keys.operator_private)
            ).token
            ins = new_nir()
            email, phone = f"crash.{ins}@example.org", f"+3361{uuid.uuid4().int % 10**7:07d}"
            await client.send(
                cmd.RegisterHolder(
                    nir=ins,
                    first_name="Crash",
                    last_name="Holder",
                    birth_date=date(1985, 5, 1),
                    email=email,
                    phone=phone,
                ),
                token=operator,
            )

            async def channels_known() -> bool:
                channels = await conn.fetchval(
                    "SELECT channels FROM notifier.contacts WHERE ins = $1", ins
                )
                return sorted(channels or []) == ["email", "sms"]

            await _until(channels_known, timeout, "the notifier to know the holder's channels")
            # identity's activation mail gone by, the next mail to the holder is an alert.

            async def activation_mailed() -> bool:
                return bool(mailbox.to(email))

            await _until(activation_mailed, timeout, "identity's activation mail")
            mailbox.armed_for = email

            envelopes = [
                envelope_for(
                    access_logged(ins),
                    holder_key=ins,
                    occurred_at=datetime.now(UTC),
                    correlation_id=f"crash-{i}",
                )
                for i in range(ALERTS)
            ]
            for envelope in envelopes:
                await _publish(amqp_url, envelope)
                await _publish(amqp_url, envelope)  # the same event delivered twice

            # 1. The relay has read the whole mail and holds its "250": kill -9.
            await _wait_event(mailbox.holding, timeout, "the mail server to hold a mail")
            stalled_mail = _message_id(mailbox.messages[-1])
            system.kill("notifier")
            stalling_sms.armed = True
            system.start("notifier")

            # 2. The provider has kept an SMS and holds its answer: kill -9.
            await _wait_event(stalling_sms.holding, timeout, "the SMS provider to hold an SMS")
            stalled_sms = sms.inbox.messages[-1].idempotency_key
            system.kill("notifier")
            system.start("notifier")
            for envelope in envelopes:  # delivered once more, after the crashes
                await _publish(amqp_url, envelope)

            async def all_sent() -> bool:
                done = await conn.fetchval(
                    "SELECT count(*) FROM notifier.alerts WHERE ins = $1 AND delivery = 'sent'",
                    ins,
                )
                return bool(done == ALERTS)

            await _until(all_sent, timeout, "every alert to be sent")
            await asyncio.sleep(2.0)  # time enough for anything sent twice to show up
            alert_ids = [
                str(r["alert_id"])
                for r in await conn.fetch(
                    "SELECT alert_id FROM notifier.alerts WHERE ins = $1 ORDER BY seq", ins
                )
            ]
        finally:
            await conn.close()
            await rpc.close()
            system.stop_all()
        message_ids: dict[str, int] = {}
        for message in mailbox.to(email, "accès"):
            message_ids[_message_id(message)] = message_ids.get(_message_id(message), 0) + 1
        sms_keys: dict[str, int] = {}
        for kept in sms.inbox.to(phone, "accès"):
            sms_keys[kept.idempotency_key] = sms_keys.get(kept.idempotency_key, 0) + 1
        answers: dict[str, list[int]] = {}
        for attempt in list(sms.inbox.attempts):
            if attempt.to == phone and attempt.idempotency_key:
                answers.setdefault(attempt.idempotency_key, []).append(attempt.status)
        return Outcome(
            alert_ids=alert_ids,
            causes=len(envelopes),
            message_ids=message_ids,
            sms_keys=sms_keys,
            sms_answers=answers,
            stalled_mail=stalled_mail,
            stalled_sms=stalled_sms,
        )


def assert_exactly_once_where_possible(outcome: Outcome) -> None:
    """One alert per cause; every alert mailed at least once under its own Message-ID (the mail
    held at the crash twice: SMTP cannot tell a resend); every alert's SMS kept exactly once,
    the one held at the crash sent again and recognised by its key."""
    alerts = set(outcome.alert_ids)
    assert len(outcome.alert_ids) == outcome.causes == len(alerts)
    assert set(outcome.message_ids) == alerts, outcome.message_ids
    assert all(n >= 1 for n in outcome.message_ids.values())
    assert outcome.stalled_mail in alerts
    assert outcome.message_ids[outcome.stalled_mail] >= 2  # read before the crash, and after
    assert outcome.sms_keys == dict.fromkeys(alerts, 1), outcome.sms_keys
    assert outcome.stalled_sms in alerts
    # Sent again after the crash (the held request still unanswered), answered as a known key.
    assert 200 in outcome.sms_answers[outcome.stalled_sms], outcome.sms_answers
