"""The tests' SMTP server is the demo's: a real aiosmtpd server keeping what it receives."""

from scripts.smtp_sink import Mailbox, SmtpServer, free_port

__all__ = ["Mailbox", "SmtpServer", "free_port"]
