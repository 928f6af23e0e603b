"""messaging's use cases: each one transaction, its events written to the outbox in it."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from pydantic import Field

from libs import outbox
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.envelope import Contract
from libs.contracts.events import DocumentDeposited, MessageSent, SpaceClosed, SpaceOpened
from libs.runtime import CommandContext, EventContext
from services.messaging import domain, repository

log = structlog.get_logger()


class ListMessages(Contract):
    """The holder's box, newest first (messaging.commands)."""

    ins: str
    limit: int = Field(default=100, ge=1, le=500)


# --- the spaces projection ------------------------------------------------------------------


async def on_space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    await repository.set_space_status(ctx.conn, event.ins, "open", event.opened_at)


async def on_space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_05: from closure, no new message."""
    await repository.set_space_status(ctx.conn, event.ins, "closed", event.closed_at)


# --- commands -------------------------------------------------------------------------------


async def send_message(ctx: CommandContext, c: cmd.SendMessage) -> dict[str, Any]:
    """MSG_01 / MSG_03: the holder in their own box, or a professional the access service allows."""
    actor = ctx.require_actor()
    sender = domain.sender_of(actor, c.ins)
    async with ctx.runtime.pool.acquire() as conn:
        domain.check_can_receive(await repository.space_status(conn, c.ins))
    if sender == "professional":
        await require_access(ctx, c.ins, "message")
    now = ctx.runtime.now()
    message_id = uuid.uuid4()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        # Again, holding the row: a closure meanwhile wins (RET_05).
        domain.check_can_receive(await repository.space_status(conn, c.ins, lock=True))
        await repository.insert_message(
            conn,
            message_id=message_id,
            ins=c.ins,
            sender_kind=sender,
            sender_id=actor.sub,
            sender_name=actor.name,
            subject=c.subject,
            body=c.body,
            sent_at=now,
        )
        await outbox.add_event(
            conn,
            MessageSent(
                message_id=message_id,
                ins=c.ins,
                sender_kind=sender,
                sender_id=actor.sub,
                sender_name=actor.name,
                subject=c.subject,
                sent_at=now,
            ),
            holder_key=c.ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
        )
    return {"message_id": str(message_id), "sent_at": now.isoformat()}


async def list_messages(ctx: CommandContext, c: ListMessages) -> dict[str, Any]:
    """MSG_03: never shown to anyone but the holder of the box."""
    domain.check_can_read(ctx.require_actor(), c.ins)
    async with ctx.runtime.pool.acquire() as conn:
        rows = await repository.box(conn, c.ins, c.limit)
    return {
        "messages": [
            {
                "message_id": str(r["message_id"]),
                "sender_kind": r["sender_kind"],
                "sender_id": r["sender_id"],
                "sender_name": r["sender_name"],
                "subject": r["subject"],
                "body": r["body"],
                "sent_at": r["sent_at"].isoformat(),
                "origin": r["origin"],
                "document_id": str(r["document_id"]) if r["document_id"] else None,
            }
            for r in rows
        ]
    }


# --- deposits -------------------------------------------------------------------------------


async def on_document_deposited(ctx: EventContext, event: DocumentDeposited) -> None:
    """DOC_02 / MSG_02: the deposit is also sent to the holder by secure messaging.

    The message is the depositing professional's, posted by the system; it names the author
    only (no title, no content: those stay in the dossier).
    """
    now = ctx.runtime.now()
    message_id = uuid.uuid4()
    posted = await repository.insert_message(
        ctx.conn,
        message_id=message_id,
        ins=event.ins,
        sender_kind="professional",
        sender_id=event.author_id,
        sender_name=event.author_name,
        subject=domain.DEPOSIT_SUBJECT,
        body=domain.deposit_notice(event.author_name),
        sent_at=now,
        origin="deposit",
        document_id=event.document_id,
    )
    if not posted:
        return
    await outbox.add_event(
        ctx.conn,
        MessageSent(
            message_id=message_id,
            ins=event.ins,
            sender_kind="professional",
            sender_id=event.author_id,
            sender_name=event.author_name,
            subject=domain.DEPOSIT_SUBJECT,
            sent_at=now,
        ),
        holder_key=event.ins,
        occurred_at=now,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )
