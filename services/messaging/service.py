"""messaging's use cases: each one transaction, its events written to the outbox in it.

Choices made here (docs/messaging.md tells the whole model):

- Threads (MSG_01). Every message belongs to a thread about one holder's space. A conversation
  is between the holder's side (the holder, and their representative acting for them, SPC_04,
  SPC_05) and professionals: the holder's side names the professionals it writes to (RPPS); a
  professional starts a thread with the holder alone, and names no one else (the holder decides
  who reads about them). A message sent without a thread starts one: a professional's with the
  holder, the holder's of their own (as in the former single box, read by no one else).
- Who may (MSG_03). Only a thread's participants read it or write in it; to anyone else it does
  not exist (`not_found`). A professional asks access (action `message`) before starting a thread
  with a holder or writing in one; a representative too (access knows whether their appointment
  holds), for reading as well. The holder writes to whom they choose without asking: writing to a
  professional gives them no access to the dossier. A professional reads what was written to
  them without asking: reading a thread is not reading the dossier.
- A closed space takes no new message and no new thread (RET_05): checked before access is asked
  and again, holding the space's row, in the message's own transaction. Reading is not refused.
- Subjects, bodies and attachments are sealed at rest under messaging's own key
  (`messaging_content_key`), each under its own nonce, bound to its message and holder (an
  attachment to its place in the message too). Attachments are checked before anything else,
  access included: allowed type, their bytes' signature, size, count, SHA-256.
- `MessageSent` (version 2) carries ids and coarse types only, and the thread's id; it is
  published for a message the holder's side reads (a conversation, the holder's own notices), so
  that the holder is alerted (NTF_03). A representative's message travels as the holder's side's
  (`sender_kind` holder, the INS): who wrote stays here, and the holder's side is not alerted of
  its own message. A notice to a professional publishes nothing: the notifier alerts holders,
  and that message is not the holder's.
- Deposits (MSG_02): a professional's deposit is told to the holder, to the treating physician
  (as identity's events say) and to the prescriber the deposit names, never to its author, each
  in their own notices thread about the space: the author and the type, never title or content.
- A request whose shape is wrong (its contract, an attachment, a cursor this service did not
  give) is refused before anything else, access included.
- Listings are pages, newest first (threads: latest activity first), with a cursor for the
  rest; a page of messages holds no more than fit in `list_reply_budget_bytes` (sized from what
  is stored, before anything is decrypted). A thread that moves ahead while one pages through is
  found at the top of the next listing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import structlog
from cryptography.exceptions import InvalidTag

from libs import outbox, paging, sealing, spaces
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.events import (
    DocumentDeposited,
    DocumentDepositedV1,
    MessageSent,
    StaffJoined,
    StaffLeft,
    TreatingPhysicianChanged,
    TreatingPhysicianDeclared,
    public_name,
)
from libs.db import Conn
from libs.errors import NotFound
from libs.runtime import CommandContext, EventContext, Runtime
from libs.tokens import Claims, b64d
from libs.uow import UnitOfWork
from services.messaging import domain, repository
from services.messaging.settings import MessagingSettings

log = structlog.get_logger()

T = TypeVar("T")


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
    thread_id: uuid.UUID,
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
    """Store one message, sealed, and move its thread's last activity; False when the thread
    already has this deposit's notice."""
    key = _key(runtime)
    subject_nonce, body_nonce = sealing.new_nonce(), sealing.new_nonce()
    return await repository.insert_message(
        conn,
        message_id=message_id,
        thread_id=thread_id,
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


def _checked(
    ctx: CommandContext[MessagingSettings], attachments: Sequence[cmd.NewAttachment]
) -> list[domain.CheckedAttachment]:
    return domain.check_attachments(
        [(a.media_type, a.content_b64, a.sha256, a.filename) for a in attachments],
        ctx.runtime.settings.attachment_limits(),
    )


def _sealed_attachments(
    key: bytes, message_id: uuid.UUID, ins: str, files: Sequence[domain.CheckedAttachment]
) -> list[dict[str, object]]:
    """The attachments' rows, sealed (before the transaction: it stays short)."""
    rows: list[dict[str, object]] = []
    for position, file in enumerate(files):
        content_nonce = sealing.new_nonce()
        name_nonce = None if file.filename is None else sealing.new_nonce()
        rows.append(
            {
                "attachment_id": uuid.uuid4(),
                "message_id": message_id,
                "ins": ins,
                "position": position,
                "media_type": file.media_type,
                "size": len(file.content),
                "sha256": file.sha256,
                "content_nonce": content_nonce,
                "content_sealed": domain.seal_attachment(
                    key,
                    content_nonce,
                    file.content,
                    message_id,
                    ins,
                    domain.attachment_part(position, "content"),
                ),
                "name_nonce": name_nonce,
                "name_sealed": None
                if file.filename is None or name_nonce is None
                else domain.seal_attachment(
                    key,
                    name_nonce,
                    file.filename.encode(),
                    message_id,
                    ins,
                    domain.attachment_part(position, "name"),
                ),
            }
        )
    return rows


async def _post(
    uow: UnitOfWork,
    ctx: CommandContext[MessagingSettings],
    party: domain.Party,
    actor: Claims,
    *,
    ins: str,
    thread_id: uuid.UUID,
    message_id: uuid.UUID,
    subject: str,
    body: str,
    attachments: Sequence[dict[str, object]],
    announce: bool,
) -> cmd.MessageReceipt:
    """One message in a thread, in the caller's unit of work; `MessageSent` when the holder's
    side reads the thread (NTF_03)."""
    now = ctx.runtime.now()
    await _write(
        uow.conn,
        ctx.runtime,
        message_id=message_id,
        thread_id=thread_id,
        ins=ins,
        sender_kind=party.sender,
        sender_id=actor.sub,
        sender_name=actor.name,
        subject=subject,
        body=body,
        sent_at=now,
    )
    for attachment in attachments:
        await repository.insert_attachment(uow.conn, attachment)
    if announce:
        # The holder's side is one party on the bus: the representative's name stays here.
        professional = party.sender == "professional"
        await uow.emit(
            MessageSent(
                message_id=message_id,
                ins=ins,
                sender_kind="professional" if professional else "holder",
                sender_id=actor.sub if professional else ins,
                sender_name=public_name("professional", actor.name) if professional else None,
                sent_at=now,
                thread_id=thread_id,
                attachments=len(attachments),
            )
        )
    return cmd.MessageReceipt(message_id=message_id, sent_at=now, thread_id=thread_id)


async def _refuse_unless_open(ctx: CommandContext[MessagingSettings], ins: str) -> None:
    async with ctx.runtime.pool.acquire() as peek:
        domain.check_can_receive(await spaces.status(peek, ins))


# --- commands -------------------------------------------------------------------------------


async def start_thread(
    ctx: CommandContext[MessagingSettings], c: cmd.StartThread
) -> cmd.MessageReceipt:
    """MSG_01: a new thread between the holder's side and professionals, and its first message."""
    party = await _party(ctx, c.ins)
    participants = domain.participants_of_new_thread(
        party, c.ins, c.professionals, c.establishments
    )
    files = _checked(ctx, c.attachments)
    return await _start(ctx, party, c.ins, participants, c.subject, c.body, files)


async def send_message(
    ctx: CommandContext[MessagingSettings], c: cmd.SendMessage
) -> cmd.MessageReceipt:
    """MSG_01 / MSG_03: a participant writes in a thread (a professional as access allows);
    without a thread, one is started (see the module's choices)."""
    party = await _party(ctx, c.ins)
    files = _checked(ctx, c.attachments)
    if c.thread_id is None:
        own = domain.own_thread(party, c.ins)
        return await _start(ctx, party, c.ins, own, c.subject, c.body, files)
    return await _reply(ctx, party, c, files)


async def _start(
    ctx: CommandContext[MessagingSettings],
    party: domain.Party,
    ins: str,
    participants: domain.Participants,
    subject: str,
    body: str,
    files: Sequence[domain.CheckedAttachment],
) -> cmd.MessageReceipt:
    actor = ctx.require_actor()
    await _refuse_unless_open(ctx, ins)
    if party.asks_access:
        await require_access(ctx, ins, "message")
    thread_id, message_id = uuid.uuid4(), uuid.uuid4()
    attachments = _sealed_attachments(_key(ctx.runtime), message_id, ins, files)
    async with ctx.unit_of_work() as uow:
        # Again, holding the row: a closure meanwhile wins (RET_05).
        domain.check_can_receive(await spaces.status(uow.conn, ins, lock=True))
        await repository.insert_thread(
            uow.conn,
            thread_id=thread_id,
            ins=ins,
            participants=participants,
            at=ctx.runtime.now(),
        )
        receipt = await _post(
            uow,
            ctx,
            party,
            actor,
            ins=ins,
            thread_id=thread_id,
            message_id=message_id,
            subject=subject,
            body=body,
            attachments=attachments,
            announce=domain.holder_reads(participants),
        )
        return uow.answer(receipt)


async def _reply(
    ctx: CommandContext[MessagingSettings],
    party: domain.Party,
    c: cmd.SendMessage,
    files: Sequence[domain.CheckedAttachment],
) -> cmd.MessageReceipt:
    assert c.thread_id is not None
    actor = ctx.require_actor()
    async with ctx.runtime.pool.acquire() as peek:
        domain.check_can_receive(await spaces.status(peek, c.ins))
        thread, participants = await _thread(peek, c.ins, c.thread_id)
    # Not a participant: refused before access is asked (nothing to trace, nothing to alert).
    domain.check_writes(party, thread["kind"], participants, c.thread_id)
    if party.asks_access:
        await require_access(ctx, c.ins, "message")
    message_id = uuid.uuid4()
    attachments = _sealed_attachments(_key(ctx.runtime), message_id, c.ins, files)
    async with ctx.unit_of_work() as uow:
        domain.check_can_receive(await spaces.status(uow.conn, c.ins, lock=True))
        await repository.thread(uow.conn, c.ins, c.thread_id, lock=True)
        receipt = await _post(
            uow,
            ctx,
            party,
            actor,
            ins=c.ins,
            thread_id=c.thread_id,
            message_id=message_id,
            subject=c.subject,
            body=c.body,
            attachments=attachments,
            announce=domain.holder_reads(participants),
        )
        return uow.answer(receipt)


async def _thread(conn: Conn, ins: str, thread_id: uuid.UUID) -> tuple[Any, domain.Participants]:
    """The thread and its participants; not_found when there is no such thread in this space."""
    thread = await repository.thread(conn, ins, thread_id)
    if thread is None:
        raise NotFound(f"no thread {thread_id} of yours")
    found = await repository.participants(conn, [thread_id])
    return thread, _sides(found[thread_id])


def _sides(rows: Sequence[tuple[str, str]]) -> domain.Participants:
    sides: dict[str, domain.Side] = {
        "holder": "holder",
        "professional": "professional",
        "establishment": "establishment",
    }
    return [(sides[side], id_) for side, id_ in rows]


async def _party(ctx: CommandContext[MessagingSettings], ins: str) -> domain.Party:
    return await _with_establishments(ctx, domain.party_of(ctx.require_actor(), ins))


async def _with_establishments(
    ctx: CommandContext[MessagingSettings], party: domain.Party
) -> domain.Party:
    """A professional takes part for the establishments they work in now (MSG_01)."""
    if party.side != "professional":
        return party
    async with ctx.runtime.pool.acquire() as conn:
        places = await repository.establishments_of(conn, party.id)
    return dataclasses.replace(party, establishments=frozenset(places))


async def list_messages(
    ctx: CommandContext[MessagingSettings], c: cmd.ListMessages
) -> cmd.MessagePage:
    """MSG_03: the holder's box, shown to the holder's side only: every message of the threads
    it takes part in. One page, newest first, and a cursor when there are more."""
    party = domain.box_reader(ctx.require_actor(), c.ins)
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    if domain.reads_ask_access(party):
        await require_access(ctx, c.ins, "message")
    messages, next_cursor = await _page_of_messages(ctx, c.ins, after, c.page_size, None)
    return cmd.MessagePage(messages=messages, next_cursor=next_cursor)


async def read_thread(
    ctx: CommandContext[MessagingSettings], c: cmd.ReadThread
) -> cmd.ThreadMessages:
    """MSG_03: a thread's messages, newest first, for its participants only."""
    party = await _party(ctx, c.ins)
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    async with ctx.runtime.pool.acquire() as peek:
        _, participants = await _thread(peek, c.ins, c.thread_id)
    domain.check_reads(party, participants, c.thread_id)
    if domain.reads_ask_access(party):
        await require_access(ctx, c.ins, "message")
    messages, next_cursor = await _page_of_messages(ctx, c.ins, after, c.page_size, c.thread_id)
    async with ctx.runtime.pool.acquire() as conn:
        [thread] = await _threads(ctx, conn, [c.thread_id], c.ins)
    return cmd.ThreadMessages(thread=thread, messages=messages, next_cursor=next_cursor)


async def list_threads(
    ctx: CommandContext[MessagingSettings], c: cmd.ListThreads
) -> cmd.ThreadPage:
    """MSG_03: the threads the caller takes part in, latest activity first, one page."""
    party = await _with_establishments(ctx, domain.lister(ctx.require_actor(), c.ins))
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    if domain.reads_ask_access(party) and c.ins is not None:
        await require_access(ctx, c.ins, "message")
    async with (
        ctx.runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        candidates = await repository.thread_candidates(
            conn,
            side=party.side,
            party=party.id,
            establishments=sorted(party.establishments),
            ins=c.ins,
            after=after,
            limit=c.page_size + 1,
        )
        page = candidates[: c.page_size]
        threads = await _threads(ctx, conn, [r["thread_id"] for r in page], None)
    last = page[-1] if page else None
    more = last is not None and len(page) < len(candidates)
    return cmd.ThreadPage(
        threads=threads,
        next_cursor=paging.encode_cursor(last["last_message_at"], last["seq"])
        if more and last is not None
        else None,
    )


async def _threads(
    ctx: CommandContext[MessagingSettings],
    conn: Conn,
    thread_ids: list[uuid.UUID],
    ins: str | None,
) -> list[cmd.Thread]:
    """The threads' entries, in the order given: participants, and the first message's subject."""
    rows = {
        row["thread_id"]: row
        for row in await conn.fetch(
            "SELECT thread_id, ins, kind, started_at, last_message_at FROM threads"
            " WHERE thread_id = ANY($1::uuid[]) AND ($2::text IS NULL OR ins = $2)",
            thread_ids,
            ins,
        )
    }
    participants = await repository.participants(conn, thread_ids)
    key = _key(ctx.runtime)
    subjects = {
        first["thread_id"]: _subject(key, first)
        for first in await repository.first_subjects(conn, thread_ids)
    }
    return [
        cmd.Thread(
            thread_id=thread_id,
            ins=rows[thread_id]["ins"],
            kind=rows[thread_id]["kind"],
            subject=subjects.get(thread_id),
            participants=[
                cmd.Participant(kind=side, id=id_)
                for side, id_ in _sides(participants.get(thread_id, []))
            ],
            started_at=rows[thread_id]["started_at"],
            last_message_at=rows[thread_id]["last_message_at"],
        )
        for thread_id in thread_ids
        if thread_id in rows
    ]


async def _page_of_messages(
    ctx: CommandContext[MessagingSettings],
    ins: str,
    after: paging.Position | None,
    page_size: int,
    thread_id: uuid.UUID | None,
) -> tuple[list[cmd.Message], str | None]:
    budget = ctx.runtime.settings.list_reply_budget_bytes
    async with (
        ctx.runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        candidates = await repository.page_candidates(
            conn, ins, after=after, limit=page_size + 1, thread_id=thread_id
        )
        sizes = [
            domain.reply_size(
                r["subject_bytes"], r["body_bytes"], r["text_bytes"], r["attachments"]
            )
            for r in candidates
        ]
        page = candidates[: paging.take_within(sizes, page_size, budget)]
        ids = [r["message_id"] for r in page]
        loaded = await repository.messages_by_id(conn, ins, ids)
        files = await repository.attachments_of(conn, ids)
    by_id = {row["message_id"]: row for row in loaded}
    files_of: dict[uuid.UUID, list[Any]] = {}
    for file in files:
        files_of.setdefault(file["message_id"], []).append(file)
    key = _key(ctx.runtime)
    messages = [
        _entry(key, by_id[r["message_id"]], ins, files_of.get(r["message_id"], []))
        for r in page
        if r["message_id"] in by_id
    ]
    more = len(page) < len(candidates)
    next_cursor = (
        paging.encode_cursor(page[-1]["sent_at"], page[-1]["seq"]) if more and page else None
    )
    return messages, next_cursor


def _subject(key: bytes, first: Any) -> str | None:
    if first["subject_sealed"] is None:
        return None
    return _opened(
        first["message_id"],
        lambda: domain.unseal_text(
            key,
            first["subject_nonce"],
            first["subject_sealed"],
            first["message_id"],
            first["ins"],
            domain.SUBJECT,
        ),
    )


def _opened(row_id: uuid.UUID, unseal: Callable[[], T]) -> T:
    try:
        return unseal()
    except InvalidTag:
        # Altered, moved or sealed with another key: never shown as if it were sound.
        log.error("message_unauthentic", message_id=str(row_id))
        raise RuntimeError(f"message {row_id} failed authentication") from None


def _entry(key: bytes, row: Any, ins: str, files: Sequence[Any]) -> cmd.Message:
    message_id = row["message_id"]
    subject = body = None  # written before messages were sealed (migration 0002): demo data
    if row["subject_sealed"] is not None:
        subject = _opened(
            message_id,
            lambda: domain.unseal_text(
                key, row["subject_nonce"], row["subject_sealed"], message_id, ins, domain.SUBJECT
            ),
        )
        body = _opened(
            message_id,
            lambda: domain.unseal_text(
                key, row["body_nonce"], row["body_sealed"], message_id, ins, domain.BODY
            ),
        )
    return cmd.Message(
        message_id=message_id,
        thread_id=row["thread_id"],
        sender_kind=row["sender_kind"],
        sender_id=row["sender_id"],
        sender_name=row["sender_name"],
        subject=subject,
        body=body,
        sent_at=row["sent_at"],
        origin=row["origin"],
        document_id=row["document_id"],
        attachments=[_attachment_info(key, file, ins) for file in files],
    )


def _filename(key: bytes, row: Any, ins: str) -> str | None:
    if row["name_sealed"] is None:
        return None
    name = _opened(
        row["message_id"],
        lambda: domain.unseal_attachment(
            key,
            row["name_nonce"],
            row["name_sealed"],
            row["message_id"],
            ins,
            domain.attachment_part(row["position"], "name"),
        ),
    )
    return name.decode()


def _attachment_info(key: bytes, row: Any, ins: str) -> cmd.AttachmentInfo:
    return cmd.AttachmentInfo(
        attachment_id=row["attachment_id"],
        media_type=row["media_type"],
        size=row["size"],
        sha256=bytes(row["sha256"]).hex(),
        filename=_filename(key, row, ins),
    )


async def get_attachment(
    ctx: CommandContext[MessagingSettings], c: cmd.GetAttachment
) -> cmd.Attachment:
    """MSG_03: an attachment's bytes, for the participants of its thread only."""
    party = await _party(ctx, c.ins)
    async with ctx.runtime.pool.acquire() as conn:
        row = await repository.attachment(conn, c.ins, c.attachment_id)
        found = {} if row is None else await repository.participants(conn, [row["thread_id"]])
    participants = [] if row is None else _sides(found[row["thread_id"]])
    if row is None or (party.side, party.id) not in participants:
        raise NotFound(f"no attachment {c.attachment_id} of yours")
    if domain.reads_ask_access(party):
        await require_access(ctx, c.ins, "message")
    key = _key(ctx.runtime)
    content = _opened(
        row["message_id"],
        lambda: domain.unseal_attachment(
            key,
            row["content_nonce"],
            row["content_sealed"],
            row["message_id"],
            c.ins,
            domain.attachment_part(row["position"], "content"),
        ),
    )
    if hashlib.sha256(content).digest() != bytes(row["sha256"]):
        log.error("attachment_altered", attachment_id=str(c.attachment_id))
        raise RuntimeError(f"attachment {c.attachment_id} is not what was sent")
    info = _attachment_info(key, row, c.ins)
    return cmd.Attachment(
        attachment_id=info.attachment_id,
        message_id=row["message_id"],
        thread_id=row["thread_id"],
        media_type=info.media_type,
        size=info.size,
        sha256=info.sha256,
        filename=info.filename,
        content_b64=domain.encode_content(content),
    )


# --- deposits and treating physicians (MSG_02) ----------------------------------------------


async def on_document_deposited(
    ctx: EventContext[MessagingSettings], event: DocumentDeposited | DocumentDepositedV1
) -> None:
    """DOC_02 / MSG_02: a professional's deposit is sent by secure messaging to the holder, to
    the treating physician and to the prescriber where there is one, never to its author.

    Each notice is the depositing professional's, posted by the system in its reader's notices
    thread about the space; it names the author and the type only (no title, no content: those
    stay in the dossier; a v1 event's title is ignored). Delivered again, it posts nothing more.
    """
    deposit = event.upgraded()
    if not domain.posts_deposit_notice(deposit.author_kind):
        return
    now = ctx.runtime.now()
    treating = await repository.treating_physician(ctx.conn, deposit.ins)
    for reader in domain.deposit_recipients(
        deposit.ins, deposit.author_id, treating, deposit.prescriber_id
    ):
        thread_id = await repository.notices_thread(
            ctx.conn, ins=deposit.ins, side=reader.side, reader=reader.id, at=now
        )
        subject, body = domain.notice(reader.role, deposit.author_name, deposit.document_type)
        message_id = uuid.uuid4()
        posted = await _write(
            ctx.conn,
            ctx.runtime,
            message_id=message_id,
            thread_id=thread_id,
            ins=deposit.ins,
            sender_kind="professional",
            sender_id=deposit.author_id,
            sender_name=deposit.author_name or "",
            subject=subject,
            body=body,
            sent_at=now,
            origin="deposit",
            document_id=deposit.document_id,
        )
        # Posted before (a redelivery), or not the holder's: the notifier alerts holders only.
        if not posted or reader.side != "holder":
            continue
        await outbox.add_event(
            ctx.conn,
            MessageSent(
                message_id=message_id,
                ins=deposit.ins,
                sender_kind="professional",
                sender_id=deposit.author_id,
                sender_name=deposit.author_name,
                sent_at=now,
                thread_id=thread_id,
            ),
            holder_key=deposit.ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )


async def on_staff_joined(ctx: EventContext[MessagingSettings], event: StaffJoined) -> None:
    """MSG_01: from now, this professional reads the establishment's threads."""
    await repository.set_staff(ctx.conn, event.finess, event.rpps, True, event.at)


async def on_staff_left(ctx: EventContext[MessagingSettings], event: StaffLeft) -> None:
    await repository.set_staff(ctx.conn, event.finess, event.rpps, False, event.at)


async def on_treating_physician(
    ctx: EventContext[MessagingSettings],
    event: TreatingPhysicianDeclared | TreatingPhysicianChanged,
) -> None:
    """MSG_02: whom deposits are also sent to. The latest in effect wins, in any order."""
    if await repository.set_treating_physician(ctx.conn, event.ins, event.rpps, event.since):
        log.info("treating_physician_recorded", since=event.since.isoformat())
    else:
        log.info("treating_physician_superseded", since=event.since.isoformat())
