"""Messaging rules, without I/O: who writes in and reads a box (MSG_01, MSG_03), when a box is
closed to new messages (RET_05), the notice of a deposit (DOC_02 / MSG_02), how subjects and
bodies are sealed at rest, and how a listing is cut into pages no reply can make too big."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from libs import sealing
from libs.contracts.rpc import ErrorCode
from libs.errors import Conflict, Forbidden
from libs.tokens import Claims

SpaceStatus = Literal["open", "closed"]
Sender = Literal["holder", "professional"]

DEPOSIT_SUBJECT = "Nouveau document dans votre dossier"
# What is sealed, each under its own nonce and with its own associated data.
SUBJECT = "messaging/message-subject"
BODY = "messaging/message-body"
MAX_SUBJECT_CHARS = 300  # as SendMessage bounds them
MAX_BODY_CHARS = 100_000


def check_can_receive(status: str | None) -> None:
    """RET_05: a closed space takes no new message; an unopened one has no box yet."""
    if status == "closed":
        raise Conflict(
            "the space is closed: it takes no new message",
            code=ErrorCode.SPACE_CLOSED,
            rule="RET_05",
        )
    if status != "open":
        raise Conflict(
            "the space is not open: it has no messaging box", code=ErrorCode.SPACE_NOT_OPEN
        )


def sender_of(actor: Claims, ins: str) -> Sender:
    """MSG_03: only the holder (in their own box) and identified professionals write.

    A professional still needs the access service's decision (see `service.send_message`).
    """
    if actor.kind == "holder":
        if actor.sub != ins:
            raise Forbidden("a holder writes only in their own box", code=ErrorCode.NOT_YOUR_BOX)
        return "holder"
    if actor.kind == "professional":
        return "professional"
    raise Forbidden("only the holder and professionals use the messaging box")


def check_can_read(actor: Claims, ins: str) -> None:
    """MSG_03: a box is shown to its holder only."""
    if actor.kind != "holder" or actor.sub != ins:
        raise Forbidden("only the holder reads their messaging box", code=ErrorCode.NOT_YOUR_BOX)


def posts_deposit_notice(author_kind: str) -> bool:
    """DOC_02 / MSG_02: a professional's deposit is sent to the holder. The holder's own
    deposits (and any other) are not: the holder knows, and the message would not be theirs."""
    return author_kind == "professional"


def deposit_notice(author_name: str | None) -> str:
    """DOC_02 / MSG_02: the holder is told of a deposit; neither title nor content is sent."""
    author = author_name or "Un professionnel de santé"
    return f"{author} a déposé un nouveau document dans votre dossier"


# --- sealing at rest ------------------------------------------------------------------------


def seal_text(key: bytes, nonce: bytes, text: str, message_id: UUID, ins: str, part: str) -> bytes:
    """AES-256-GCM of a subject or body (`part`), bound to its message and holder."""
    return sealing.seal(key, nonce, text.encode(), sealing.associated_data(part, message_id, ins))


def unseal_text(
    key: bytes, nonce: bytes, sealed: bytes, message_id: UUID, ins: str, part: str
) -> str:
    """Raises cryptography.exceptions.InvalidTag if anything was altered or moved."""
    return sealing.unseal(
        key, nonce, sealed, sealing.associated_data(part, message_id, ins)
    ).decode()


# --- pages of a listing ---------------------------------------------------------------------

# A message's entry in a reply besides its texts: ids, kinds, date, field names, punctuation.
ENTRY_OVERHEAD_BYTES = 1024
_NAME_BYTES_ASSUMED = 1024


def reply_size(sealed_subject_bytes: int, sealed_body_bytes: int, text_bytes: int) -> int:
    """An upper bound of a message's bytes in a listing's reply, from stored sizes alone: texts
    travel as JSON strings, never more than 6 bytes (an escape) per byte of their UTF-8."""
    sealed = max(0, sealed_subject_bytes - sealing.TAG_BYTES) + max(
        0, sealed_body_bytes - sealing.TAG_BYTES
    )
    return 6 * (sealed + text_bytes) + ENTRY_OVERHEAD_BYTES


def max_reply_size() -> int:
    """The largest entry a message within the bounds makes (for the settings' check)."""
    return reply_size(
        4 * MAX_SUBJECT_CHARS + sealing.TAG_BYTES,
        4 * MAX_BODY_CHARS + sealing.TAG_BYTES,
        _NAME_BYTES_ASSUMED,
    )
