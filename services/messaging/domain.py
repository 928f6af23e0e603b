"""Messaging rules, without I/O: who writes in and reads a box (MSG_01, MSG_03), when a box is
closed to new messages (RET_05), and the notice of a deposit (DOC_02 / MSG_02)."""

from __future__ import annotations

from typing import Literal

from libs.errors import Conflict, Forbidden
from libs.tokens import Claims

SpaceStatus = Literal["open", "closed"]
Sender = Literal["holder", "professional"]

DEPOSIT_SUBJECT = "Nouveau document dans votre dossier"


def check_can_receive(status: str | None) -> None:
    """RET_05: a closed space takes no new message; an unopened one has no box yet."""
    if status == "closed":
        raise Conflict("the space is closed: it takes no new message", code="space_closed")
    if status != "open":
        raise Conflict("the space is not open: it has no messaging box", code="space_not_open")


def sender_of(actor: Claims, ins: str) -> Sender:
    """MSG_03: only the holder (in their own box) and identified professionals write.

    A professional still needs the access service's decision (see `service.send_message`).
    """
    if actor.kind == "holder":
        if actor.sub != ins:
            raise Forbidden("a holder writes only in their own box", code="not_your_box")
        return "holder"
    if actor.kind == "professional":
        return "professional"
    raise Forbidden("only the holder and professionals use the messaging box")


def check_can_read(actor: Claims, ins: str) -> None:
    """MSG_03: a box is shown to its holder only."""
    if actor.kind != "holder" or actor.sub != ins:
        raise Forbidden("only the holder reads their messaging box", code="not_your_box")


def deposit_notice(author_name: str) -> str:
    """DOC_02 / MSG_02: the holder is told of a deposit; neither title nor content is sent."""
    return f"{author_name} a déposé un nouveau document dans votre dossier"
