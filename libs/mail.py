"""Sending e-mail over SMTP (stdlib smtplib, run off the event loop)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate


def _send(host: str, port: int, message: EmailMessage) -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)


async def send_mail(
    *,
    host: str,
    port: int,
    sender: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
) -> None:
    """Raises on any SMTP failure, so the caller can keep the mail pending and retry."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # A stable Message-ID: a retried send after a crash is recognisably the same mail.
    message["Message-ID"] = f"<{message_id}@espace-sante.local>"
    message.set_content(body)
    await asyncio.to_thread(_send, host, port, message)
