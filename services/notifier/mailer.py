"""The delivery worker: sends each alert — or burst's digest — by e-mail (aiosmtplib, kept
connections: `libs.mail.Mailer`) and SMS, at least once, retrying failures.

Like libs.outbox's relay: it claims due pending mails with `FOR UPDATE SKIP LOCKED` and a lease
(so replicas share the work and a crashed worker's claims come back when the lease runs out),
sends each, then marks it sent. A failed send stays pending with its attempts and last error,
and is retried later with backoff. A crash between the SMTP server's acceptance and the mark
re-sends the mail; its Message-ID is the alert id, so it is recognisably the same mail.
It wakes on the NOTIFY written with each mail, and polls as a safety net (NOTIFY is not durable).

The address is not kept here: for each batch of mails the worker asks identity
(`GetAlertContacts`, one request for the batch) where each holder's alerts go. If identity does
not answer, the mails stay pending and are tried again with the same backoff as an SMTP failure:
a mail is never dropped for an outage. A holder with no e-mail (any more) closes the row as
`no_address`; the alert stays in the space (SPC_06).
Finished rows are deleted `mail_retention_days` after they finished (checked every
`mail_prune_seconds`); the alerts themselves are the holder's and stay.

A digest (docs/notifier.md) is sent exactly as an alert is: its row here is named by the
digest's id, which is its Message-ID and SMS idempotency key.

What a crash between a send and its mark gives: the SMS provider takes the same idempotency key
once, so the SMS reaches the phone once; SMTP has no such key — the relay cannot tell a resent
mail from a new one — so the mail may arrive twice, with the same Message-ID (mail clients that
de-duplicate by Message-ID show it once). At least once, never zero, for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from libs.bus.rpc import RpcError
from libs.contracts.commands import MAX_ALERT_CONTACTS, AlertContact, GetAlertContacts
from libs.mail import Mailer
from libs.runtime import Runtime
from libs.sms import SmsRefused, gateway_for
from services.notifier import domain, repository
from services.notifier.settings import NotifierSettings

log = structlog.get_logger()


class MailWorker:
    def __init__(
        self,
        runtime: Runtime[NotifierSettings],
        settings: NotifierSettings,
        *,
        batch_size: int = 16,
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        # One GetAlertContacts request answers for a whole batch.
        assert batch_size <= MAX_ALERT_CONTACTS, batch_size
        self._batch_size = batch_size
        self._lease = timedelta(seconds=settings.delivery_lease_seconds)
        self._poll_interval = settings.mail_poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: PoolConnectionProxy[asyncpg.Record] | None = None
        self._sms = gateway_for(settings)
        self._mailer = Mailer(settings)  # kept SMTP connections (`smtp_connections`)
        # Ops see what could not be delivered by a channel (the alert stays in the inbox):
        # `notifier_alert_deliveries_total{service, channel, outcome}` (libs/metrics.py).
        self._deliveries = runtime.meters.alert_deliveries

    def _delivered(self, channel: str, outcome: str) -> None:
        self._deliveries.labels(self._runtime.name, channel, outcome).inc()

    @property
    def _channel(self) -> str:
        return repository.mail_channel(self._runtime.schema)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run_forever(), name="notifier-mail-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release_listener()
        if self._sms is not None:
            await self._sms.close()
        await self._mailer.close()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await self._runtime.pool.acquire()
            await self._listener.add_listener(self._channel, self._on_notify)

    async def _release_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.remove_listener(self._channel, self._on_notify)
            with contextlib.suppress(Exception):
                await self._runtime.pool.release(listener)

    async def run_forever(self) -> None:
        next_prune = 0.0
        while True:
            try:
                await self._listen()
                while await self.deliver_once() > 0:
                    pass
                if time.monotonic() >= next_prune:
                    await self.prune_once()
                    next_prune = time.monotonic() + self._settings.mail_prune_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the worker must outlive a database outage
                log.warning("mail_worker_failed", error=repr(exc))
                await self._release_listener()
                await asyncio.sleep(self._poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()

    async def deliver_once(self) -> int:
        """Send one batch of due mails; returns how many were claimed."""
        rows = await repository.claim_mails(
            self._runtime.pool, self._lease, self._batch_size, domain.ACCESS_DIGEST
        )
        if rows:
            contacts = await self._contacts(rows)
            results = await asyncio.gather(
                *(self._deliver(row, contacts) for row in rows), return_exceptions=True
            )
            for error in results:
                if error is not None:
                    # Its lease runs out and it is tried again.
                    log.warning("mail_bookkeeping_failed", error=repr(error))
        return len(rows)

    async def _contacts(
        self, rows: list[asyncpg.Record]
    ) -> dict[str, AlertContact | None] | RpcError:
        """Where each holder's alerts go (None: identity knows no such person), asked of
        identity once for the whole batch; or why identity did not say."""
        try:
            found = await self._runtime.rpc.send(
                GetAlertContacts(ins=list(dict.fromkeys(row["ins"] for row in rows)))
            )
        except RpcError as exc:
            return exc
        contacts: dict[str, AlertContact | None] = {ins: None for ins in found.unknown}
        contacts.update((contact.ins, contact) for contact in found.contacts)
        return contacts

    async def _deliver(
        self, row: asyncpg.Record, contacts: dict[str, AlertContact | None] | RpcError
    ) -> None:
        pool = self._runtime.pool
        settings = self._settings
        alert_id = row["alert_id"]
        if isinstance(contacts, RpcError) or row["ins"] not in contacts:
            # identity away, slow or refusing us: keep the mail and ask again later.
            exc = contacts if isinstance(contacts, RpcError) else None
            await self._retry(
                row,
                f"contact lookup: {exc or 'not answered'}",
                error_level=exc is not None and exc.code == "forbidden",
            )
            return
        contact = contacts[row["ins"]]
        if contact is None:
            # identity knows no such person: there is no one to mail; the alert stays in the
            # inbox.
            log.warning("mail_without_person", alert_id=str(alert_id))
            await repository.mark_done(pool, alert_id, "no_address", self._runtime.now())
            return
        channels = {"email": contact.email, "sms": contact.phone}
        if not any(channels.values()):
            # SPC_06: no channel (any more); the alert is in the space.
            await repository.mark_done(pool, alert_id, "no_address", self._runtime.now())
            log.info("mail_no_address", alert_id=str(alert_id))
            return
        errors: list[str] = []
        delivered = 0
        todo = []
        for channel, address in channels.items():
            if not address:
                continue
            if row[f"{channel}_outcome"] is not None:  # done on an earlier attempt
                delivered += row[f"{channel}_outcome"] == "sent"
                continue
            todo.append((channel, address))
        # The last channel sent is marked with the mail's end, in one statement; one sent before
        # another is marked at once, so that a crash during the next does not send it again.
        last_sent: str | None = None
        for position, (channel, address) in enumerate(todo):
            try:
                await self._send(channel, address, row, contact.display_name)
            except SmsRefused as exc:  # permanent: never retried
                self._delivered(channel, "given_up")
                log.error(
                    "alert_delivery_failed", alert_id=str(alert_id), channel=channel, error=str(exc)
                )
                await repository.mark_channel_done(pool, alert_id, channel, "given_up")
                continue
            except Exception as exc:
                if row["attempts"] >= settings.delivery_max_attempts:
                    self._delivered(channel, "given_up")
                    log.error(
                        "alert_delivery_failed",
                        alert_id=str(alert_id),
                        channel=channel,
                        attempts=row["attempts"],
                        error=repr(exc),
                    )
                    await repository.mark_channel_done(pool, alert_id, channel, "given_up")
                else:
                    self._delivered(channel, "retried")
                    errors.append(f"{channel}: {exc!r}")
                continue
            delivered += 1
            self._delivered(channel, "sent")
            if position == len(todo) - 1:
                last_sent = channel
            else:
                await repository.mark_channel_done(pool, alert_id, channel, "sent")
        if errors:
            if last_sent is not None:
                await repository.mark_channel_done(pool, alert_id, last_sent, "sent")
            await self._retry(row, "; ".join(errors))
            return
        outcome = "sent" if delivered else "failed"
        await repository.mark_done(pool, alert_id, outcome, self._runtime.now(), sent=last_sent)
        (log.info if delivered else log.error)(
            "alert_delivered", alert_id=str(alert_id), outcome=outcome
        )

    async def _send(
        self, channel: str, address: str, row: asyncpg.Record, display_name: str
    ) -> None:
        """One channel; the alert's id is the idempotency key (SMS) and the Message-ID (mail),
        so a resend after a crash is recognisably the same."""
        if channel == "sms":
            if self._sms is None:
                raise SmsRefused("no SMS provider is configured (SMS_GATEWAY_URL, SMS_API_KEY)")
            # Rows written before SMS said when have no words of their own: the kind's.
            text = row["sms_text"] or domain.sms_text(row["kind"])
            await self._sms.send(address, text, idempotency_key=str(row["alert_id"]))
            return
        await self._mailer.send(
            to=address,
            subject=domain.mail_subject(row["kind"]),
            body=domain.mail_body(row["text"], display_name),
            message_id=str(row["alert_id"]),
        )

    async def _retry(self, row: asyncpg.Record, error: str, *, error_level: bool = False) -> None:
        settings = self._settings
        retry_in = domain.retry_delay(
            row["attempts"], settings.mail_retry_seconds, settings.mail_retry_max_seconds
        )
        (log.error if error_level else log.warning)(
            "mail_send_failed",
            alert_id=str(row["alert_id"]),
            attempts=row["attempts"],
            retry_in_seconds=retry_in.total_seconds(),
            error=error,
        )
        await repository.mark_failed(self._runtime.pool, row["alert_id"], error, retry_in)

    async def prune_once(self) -> int:
        """Delete mail rows finished more than `mail_retention_days` ago (shared clock)."""
        before = self._runtime.now() - timedelta(days=self._settings.mail_retention_days)
        deleted = await repository.prune_mails(self._runtime.pool, before)
        if deleted:
            log.info("mails_pruned", deleted=deleted)
        return deleted
