"""A real SMTP server (aiosmtpd) that keeps what it receives: for the demo and the tests."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    spool: Path | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.spool is not None:
            self.spool.mkdir(parents=True, exist_ok=True)
            (self.spool / f"{len(self.messages):05d}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"

    def to(self, address: str, subject: str = "") -> list[EmailMessage]:
        return [
            m for m in self.messages if m["To"] == address and subject in str(m["Subject"] or "")
        ]

    async def wait_for(
        self, address: str, count: int = 1, timeout: float = 15.0, subject: str = ""
    ) -> list[EmailMessage]:
        """The mails to `address` (whose subject contains `subject`), once there are `count`."""
        async with asyncio.timeout(timeout):
            while len(self.to(address, subject)) < count:
                await asyncio.sleep(0.05)
        return self.to(address, subject)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    def __init__(self, port: int | None = None, spool: Path | None = None) -> None:
        # Runs in aiosmtpd's own thread; `wait_for` polls from the caller's loop.
        self.mailbox = Mailbox(spool=spool)
        self.port = port or free_port()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
