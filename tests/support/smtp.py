"""The tests' SMTP server is the demo's: a real aiosmtpd server keeping what it receives; and
one on a fixed port that can go down and come back (same mailbox)."""

from aiosmtpd.controller import Controller

from scripts.smtp_sink import Mailbox, SmtpServer, free_port

__all__ = ["Mailbox", "RestartableSmtp", "SmtpServer", "free_port"]


class RestartableSmtp:
    """A real aiosmtpd server on a fixed port, that can go down and come back (same mailbox)."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
