"""People acting through the bus as their apps would: signing in, and what a document's content
looks like on the wire. Every tier that talks to running services signs in the same way."""

from __future__ import annotations

import base64
import re

from libs.client import Client
from libs.contracts import commands as cmd
from tests.support.people import Professional
from tests.support.smtp import Mailbox
from tests.support.system import Keys

CODE_SUBJECT = "code de connexion"


def b64(content: bytes) -> str:
    """A document's content as `DepositDocument.content_b64` carries it."""
    return base64.b64encode(content).decode()


async def sign_in_operator(client: Client, keys: Keys) -> str:
    session = await client.sign_in_with_card("operator", keys.operator_id, keys.operator_private)
    return session.token


async def sign_in_professional(client: Client, pro: Professional) -> str:
    session = await client.sign_in_with_card("professional", pro.rpps, pro.card_private)
    return session.token


async def code_mailed_to(
    mailbox: Mailbox, email: str, *, after: int = 0, timeout: float = 15.0
) -> str:
    """The one-time code of the newest sign-in mail to `email`, once more than `after` of them
    have arrived (an older code may still be in the box)."""
    mails = await mailbox.wait_for(email, after + 1, timeout=timeout, subject=CODE_SUBJECT)
    text = mails[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"\b([0-9]{6})\b", text)
    assert found is not None, text
    return found[1]


async def sign_in_holder(
    client: Client, mailbox: Mailbox, ins: str, email: str, *, timeout: float = 15.0
) -> str:
    """Asks for a code, reads it in the mail, signs in with it; the holder's token."""
    before = len(mailbox.to(email, CODE_SUBJECT))
    await client.send(cmd.RequestHolderCode(ins=ins))
    code = await code_mailed_to(mailbox, email, after=before, timeout=timeout)
    session = await client.send(cmd.SignInHolder(ins=ins, code=code))
    return session.token
