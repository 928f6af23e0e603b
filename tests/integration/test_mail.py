"""Mail over SMTP as identity and the notifier send it (libs/mail.py), against a real relay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from libs.mail import Mailer, MailSettings
from tests.support.smtp import RestartableSmtp

pytestmark = pytest.mark.integration


async def test_mails_go_over_one_kept_connection_and_a_restarted_relay_is_met_again__NTF_04(
    settings_values: dict[str, Any],
) -> None:
    relay = RestartableSmtp()
    relay.start()
    mailer = Mailer(
        MailSettings(identity_jwks=settings_values["identity_jwks"], smtp_port=relay.port)
    )
    try:
        for n in range(3):
            await mailer.send(
                to="jeanne@example.org", subject=f"alerte {n}", body="…", message_id=f"m{n}"
            )
        assert len(relay.mailbox.to("jeanne@example.org")) == 3
        assert mailer.connections == 1  # one connection for the three
        relay.stop()
        relay.start()  # the relay restarted: the kept connection is dead
        await mailer.send(to="jeanne@example.org", subject="après", body="…", message_id="m4")
        assert len(relay.mailbox.to("jeanne@example.org")) == 4
        assert mailer.connections == 2
        relay.stop()
        with pytest.raises(OSError):  # no relay at all: the caller keeps the mail and retries
            await mailer.send(to="jeanne@example.org", subject="x", body="…", message_id="m5")
    finally:
        await mailer.close()
        relay.stop()


async def test_mails_sent_at_once_go_side_by_side_on_at_most_the_connections_allowed__NTF_04(
    settings_values: dict[str, Any],
) -> None:
    relay = RestartableSmtp()
    relay.start()
    mailer = Mailer(
        MailSettings(
            identity_jwks=settings_values["identity_jwks"],
            smtp_port=relay.port,
            smtp_connections=3,
        )
    )
    try:
        await asyncio.gather(
            *(
                mailer.send(
                    to="paul@example.org", subject=f"alerte {n}", body="…", message_id=f"p{n}"
                )
                for n in range(12)
            )
        )
        assert len(relay.mailbox.to("paul@example.org")) == 12
        assert 1 < mailer.connections <= 3
    finally:
        await mailer.close()
        relay.stop()
