"""Sending e-mail over SMTP with aiosmtplib, on the event loop, over kept connections.

A relay in production wants TLS (implicit, or STARTTLS) and authentication: `MailSettings`
carries them (the password is a secret of the services that mail). The connection is opened on
the first mail and kept: a relay that closed it meanwhile (idle timeout, restart) is met with a
new connection and one more try; any other failure raises, so the caller keeps the mail pending
and retries it later. Mails on one connection go one at a time, as SMTP has them; mails sent at
the same time take up to `smtp_connections` connections.
"""

from __future__ import annotations

import asyncio
import quopri
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Literal

import aiosmtplib
from pydantic import Field, field_validator

from libs.settings import ServiceSettings


class MailSettings(ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    # "none" (a local relay or a test sink), "starttls" (submission, port 587), "tls" (465).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)

    @field_validator("smtp_username", "smtp_password", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # Compose passes them empty when the relay needs no login.
        return None if isinstance(value, str) and not value.strip() else value

    smtp_timeout_seconds: float = 10.0
    # Connections kept to the relay: mails sent at the same time go side by side, one per
    # connection (SMTP sends one mail at a time on a connection).
    smtp_connections: int = Field(4, ge=1, le=32)
    mail_from: str = "Mon espace santé <ne-pas-repondre@espace-sante.local>"


def message_for(sender: str, to: str, subject: str, body: str, message_id: str) -> bytes:
    """The mail as sent: RFC 5322 headers (non-ASCII ones as RFC 2047 words), a UTF-8 text body
    in quoted-printable with CRLF line ends.

    Written directly rather than through `email.message.EmailMessage`, whose header registry
    parsed every header again, then its generator flattened the result: together about a fifth
    of the notifier's CPU under load. A line break in any value is refused, as the email package
    refuses it (header injection).
    """
    for value in (sender, to, subject, message_id):
        if "\r" in value or "\n" in value:
            raise ValueError("a mail header may not contain a line break")
    name, address = parseaddr(sender)
    crlf = "\r\n"
    words = subject if subject.isascii() else Header(subject, "utf-8").encode(linesep=crlf)
    headers = (
        f"From: {formataddr((name, address), charset='utf-8')}",
        f"To: {to}",
        f"Subject: {words}",
        f"Date: {formatdate(usegmt=True)}",
        # A stable Message-ID: a retried send after a crash is recognisably the same mail.
        f"Message-ID: <{message_id}@espace-sante.local>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    )
    text = quopri.encodestring(body.replace(crlf, "\n").encode()).replace(b"\n", b"\r\n")
    return crlf.join(headers).encode() + b"\r\n\r\n" + text + b"\r\n"


class _Connection:
    """One of the relay connections a `Mailer` keeps (opened on first use)."""

    def __init__(self) -> None:
        self.client: aiosmtplib.SMTP | None = None


class Mailer:
    """One relay, up to `smtp_connections` kept connections; `close` when the service stops."""

    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings
        # Last in, first out: mails sent one after the other keep using one connection; only
        # mails sent at the same time open more.
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(_Connection())
        self.connections = 0  # opened so far (a kept connection keeps this at one)

    async def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        """Raises on any SMTP failure, so the caller can keep the mail pending and retry."""
        message = message_for(self._settings.mail_from, to, subject, body, message_id)
        connection = await self._idle.get()
        try:
            for attempt in (1, 2):
                client = await self._connected(connection)
                try:
                    await client.sendmail(parseaddr(self._settings.mail_from)[1], [to], message)
                    return
                except aiosmtplib.SMTPServerDisconnected:
                    await _drop(connection)
                    if attempt == 2:
                        raise
                except Exception:
                    await _drop(connection)  # a connection in an unknown state is not reused
                    raise
        finally:
            self._idle.put_nowait(connection)

    async def _connected(self, connection: _Connection) -> aiosmtplib.SMTP:
        if connection.client is not None and connection.client.is_connected:
            return connection.client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout_seconds,
            use_tls=settings.smtp_security == "tls",
            start_tls=True if settings.smtp_security == "starttls" else False,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
        await client.connect()
        connection.client = client
        self.connections += 1
        return client

    async def close(self) -> None:
        """Close every connection, once the mails being sent on them are done."""
        taken = [await self._idle.get() for _ in range(self._settings.smtp_connections)]
        for connection in taken:
            await _drop(connection)
            self._idle.put_nowait(connection)


async def _drop(connection: _Connection) -> None:
    client, connection.client = connection.client, None
    if client is not None:
        try:
            await client.quit()
        except Exception:
            client.close()
