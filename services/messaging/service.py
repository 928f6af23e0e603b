"""messaging's use cases: each one transaction, its events written to the outbox in it.

Choices made here:

- Subjects and bodies are sealed at rest under messaging's own key (`messaging_content_key`),
  each under its own nonce. `MessageSent` (version 2) carries ids and coarse types only, and a
  sender's name only when the sender is a professional.
- A request whose shape is wrong (its contract, a cursor this service did not give) is refused
  before anything else, access included.
- The box is listed in pages, newest first: at most `page_size` messages and no more than fit in
  `list_reply_budget_bytes` (sized from what is stored, before anything is decrypted), with a
  cursor for the rest.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag

from libs import outbox, paging, sealing, spaces
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    MessageSent,
    public_name,
)
from libs.db import Conn
from libs.runtime import CommandContext, EventContext, Runtime
from libs.tokens import b64d
from services.messaging import domain, repository
from services.messaging.settings import MessagingSettings

log = structlog.get_logger()


def _key(runtime: Runtime[MessagingSettings]) -> bytes:
    return _decoded_key(runtime.settings.messaging_content_key)


@functools.lru_cache(maxsize=4)
def _decoded_key(text: str) -> bytes:
    return b64d(text)


# --- writing --------------------------------------------------------------------------------


async def _write(
    conn: Conn,
    runtime: Runtime[MessagingSettings],
    *,
    message_id: uuid.UUID,
    ins: str,
    sender_kind: domain.Sender,
    sender_id: str,
    sender_name: str,
    subject: str,
    body: str,
    sent_at: datetime,
    origin: str = "message",
    document_id: uuid.UUID | None = None,
) -> bool:
    """Store one message, sealed; False when the deposit already has its message."""
    key = _key(runtime)
    subject_nonce, body_nonce = sealing.new_nonce(), sealing.new_nonce()
    return await repository.insert_message(
        conn,
        message_id=message_id,
        ins=ins,
        sender_kind=sender_kind,
        sender_id=sender_id,
        sender_name=sender_name,
        subject_nonce=subject_nonce,
        subject_sealed=domain.seal_text(
            key, subject_nonce, subject, message_id, ins, domain.SUBJECT
        ),
        body_nonce=body_nonce,
        body_sealed=domain.seal_text(key, body_nonce, body, message_id, ins, domain.BODY),
        sent_at=sent_at,
        origin=origin,
        document_id=document_id,
    )


# --- commands -------------------------------------------------------------------------------


async def send_message(
    ctx: CommandContext[MessagingSettings], c: cmd.SendMessage
) -> cmd.MessageReceipt:
    """MSG_01 / MSG_03: the holder in their own box, or a professional the access service allows."""
    actor = ctx.require_actor()
    sender = domain.sender_of(actor, c.ins)
    async with ctx.runtime.pool.acquire() as peek:
        domain.check_can_receive(await spaces.status(peek, c.ins))
    if sender == "professional":
        await require_access(ctx, c.ins, "message")
    message_id = uuid.uuid4()
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
        # Again, holding the row: a closure meanwhile wins (RET_05).
        domain.check_can_receive(await spaces.status(conn, c.ins, lock=True))
        now = ctx.runtime.now()
        await _write(
            conn,
            ctx.runtime,
            message_id=message_id,
            ins=c.ins,
            sender_kind=sender,
            sender_id=actor.sub,
            sender_name=actor.name,
            subject=c.subject,
            body=c.body,
            sent_at=now,
        )
        await uow.emit(
            MessageSent(
                message_id=message_id,
                ins=c.ins,
                sender_kind=sender,
                sender_id=actor.sub,
                sender_name=public_name(sender, actor.name),
                sent_at=now,
            )
        )
        return uow.answer(cmd.MessageReceipt(message_id=message_id, sent_at=now))


async def list_messages(
    ctx: CommandContext[MessagingSettings], c: cmd.ListMessages
) -> cmd.MessagePage:
    """MSG_03: never shown to anyone but the holder of the box. One page, newest first, and a
    cursor when there are more."""
    domain.check_can_read(ctx.require_actor(), c.ins)
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    budget = ctx.runtime.settings.list_reply_budget_bytes
    async with (
        ctx.runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        candidates = await repository.page_candidates(
            conn, c.ins, after=after, limit=c.page_size + 1
        )
        sizes = [
            domain.reply_size(r["subject_bytes"], r["body_bytes"], r["text_bytes"])
            for r in candidates
        ]
        page = candidates[: paging.take_within(sizes, c.page_size, budget)]
        loaded = await repository.messages_by_id(conn, c.ins, [r["message_id"] for r in page])
    by_id = {row["message_id"]: row for row in loaded}
    key = _key(ctx.runtime)
    messages = [
        _entry(key, by_id[r["message_id"]], c.ins) for r in page if r["message_id"] in by_id
    ]
    more = len(page) < len(candidates)
    return cmd.MessagePage(
        messages=messages,
        next_cursor=paging.encode_cursor(page[-1]["sent_at"], page[-1]["seq"])
        if more and page
        else None,
    )


def _entry(key: bytes, row: Any, ins: str) -> cmd.Message:
    message_id = row["message_id"]
    subject = body = None  # written before messages were sealed (migration 0002): demo data
    try:
        if row["subject_sealed"] is not None:
            subject = domain.unseal_text(
                key, row["subject_nonce"], row["subject_sealed"], message_id, ins, domain.SUBJECT
            )
            body = domain.unseal_text(
                key, row["body_nonce"], row["body_sealed"], message_id, ins, domain.BODY
            )
    except InvalidTag:
        # Altered, moved or sealed with another key: never shown as if it were sound.
        log.error("message_unauthentic", message_id=str(message_id))
        raise RuntimeError(f"message {message_id} failed authentication") from None
    return cmd.Message(
        message_id=message_id,
        sender_kind=row["sender_kind"],
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        subject=subject,
        body=body,
        sent_at=row["sent_at"],
        origin=row["origin"],
        document_id=row["document_id"],
    )


# --- deposits -------------------------------------------------------------------------------


async def on_document_deposited(
    ctx: EventContext[MessagingSettings], event: DocumentDeposited | DocumentDepositedV1
) -> None:
    """DOC_02 / MSG_02: a professional's deposit is also sent to the holder by secure messaging.

    The message is the depositing professional's, posted by the system; it names the author
    only (no title, no content: those stay in the dossier; a v1 event's title is ignored).
    """
    deposit = event.upgraded()
    if not domain.posts_deposit_notice(deposit.author_kind):
        return
    now = ctx.runtime.now()
    message_id = uuid.uuid4()
    author_name = deposit.author_name or ""
    posted = await _write(
        ctx.conn,
        ctx.runtime,
        message_id=message_id,
        ins=deposit.ins,
        sender_kind="professional",
        sender_id=deposit.author_id,
        sender_name=author_name,
        subject=domain.DEPOSIT_SUBJECT,
        body=domain.deposit_notice(deposit.author_name),
        sent_at=now,
        origin="deposit",
        document_id=deposit.document_id,
    )
    if not posted:
        return
    await outbox.add_event(
        ctx.conn,
        MessageSent(
            message_id=message_id,
            ins=deposit.ins,
            sender_kind="professional",
            sender_id=deposit.author_id,
            sender_name=deposit.author_name,
            sent_at=now,
        ),
        holder_key=deposit.ins,
        occurred_at=now,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )
