"""dossier's use cases: each one transaction, its events written to the outbox in it.

Every deposit and every read asks the access service first (`access.decide`), on behalf of the
caller whose token the request carries. A decision that cannot be reached (timeout, access down,
an unreadable reply) is a denial, never a silent grant. Choices made here:

- A space known to be closed (SpaceClosed heard) refuses deposits *and* reads with code
  `space_closed` before access is even asked (RET_05, ACC_17) — except a read by a requester
  after the holder's death, which access judges (ACC_13); the closure is checked again,
  under a share lock, in the deposit's own transaction, so a closure recorded while access was
  deciding still stops it.
- A space the dossier has heard nothing about is left to the access service to judge.
- A request whose shape is wrong (its contract, an unknown type, bad base64, a document over
  `max_document_bytes`, a cursor this service did not give) is refused before access is asked:
  it leaves no access trace and raises no alert.
- Titles are sealed at rest like contents (each under its own nonce). `DocumentDeposited`
  (version 2) carries ids and coarse types only: no title, no content.
- A read is one page, newest first: at most `page_size` documents and no more than fit in
  `read_reply_budget_bytes` (sized from what is stored, before anything is decrypted), with a
  cursor for the rest. Each page asks access, so each page is a traced, alerted access. It loads
  only the documents inside the decision's scope, and the domain's scope rule filters them again
  before anything is decrypted.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag

from libs import outbox, paging, spaces
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.events import (
    DocumentDeleted,
    DocumentDeposited,
    DocumentHeldBack,
    DocumentReleased,
    HeldBackReleaseDue,
    OccupationalPartDue,
    public_name,
)
from libs.contracts.rpc import ErrorCode
from libs.contracts.vocabulary import OCCUPATIONAL_HEALTH
from libs.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.periods import add_calendar_years
from libs.runtime import CommandContext, EventContext
from libs.tokens import Claims, b64d
from libs.uow import UnitOfWork
from services.dossier import domain, fhir, repository
from services.dossier.settings import DossierSettings

log = structlog.get_logger()


def current_master_key(ctx: CommandContext[DossierSettings]) -> tuple[str, bytes]:
    """The master key new document keys are wrapped with, and its id."""
    settings = ctx.runtime.settings
    return settings.dossier_content_key_id, master_keys(settings)[settings.dossier_content_key_id]


def master_keys(settings: DossierSettings) -> dict[str, bytes]:
    readable = tuple(sorted(settings.dossier_readable_keys.items()))
    return _decoded(settings.dossier_content_key_id, settings.dossier_content_key, readable)


@functools.lru_cache(maxsize=4)
def _decoded(key_id: str, key: str, readable: tuple[tuple[str, str], ...]) -> dict[str, bytes]:
    keys = {other_id: b64d(text) for other_id, text in readable}
    keys[key_id] = b64d(key)
    return keys


def _space_closed(ins: str) -> Conflict:
    return Conflict(
        f"the space {ins} is closed: nothing can be deposited or read any more (RET_05)",
        code=ErrorCode.SPACE_CLOSED,
        rule="RET_05",
    )


async def refuse_if_closed(ctx: CommandContext[DossierSettings], ins: str) -> None:
    async with ctx.runtime.pool.acquire() as conn:
        if await spaces.status(conn, ins) == "closed":
            raise _space_closed(ins)


# --- commands -------------------------------------------------------------------------------


async def deposit_document(
    ctx: CommandContext[DossierSettings], c: cmd.DepositDocument
) -> cmd.Deposited:
    """DOC_01/DOC_02/DOC_11: store a document, sealed, and publish that it was deposited."""
    actor = ctx.require_actor()
    document_type = domain.check_document_type(c.document_type)
    check_depositor(actor, c.held_back, c.on_behalf_of)
    content = domain.decode_content(c.content_b64, ctx.runtime.settings.max_document_bytes)
    media_type = domain.check_claims(content, c.media_type, c.sha256, c.size)
    await refuse_if_closed(ctx, c.ins)
    decision = await require_access(
        ctx, c.ins, "deposit", document_type, on_behalf_of=c.on_behalf_of
    )
    document_id = uuid.uuid4()
    key_id, master = current_master_key(ctx)
    sealed = domain.seal_document(master, key_id, content, c.title, document_id, c.ins)
    del content  # sealed: the plaintext is not kept while the deposit is stored
    async with ctx.unit_of_work() as uow:
        return uow.answer(
            await store_deposit(
                ctx,
                uow,
                actor,
                decision,
                Deposit(
                    c.ins, document_id, document_type, media_type, c.held_back, c.replaces,
                    c.on_behalf_of, c.prescriber_id,
                ),
                sealed,
            )
        )  # fmt: skip


@dataclass(frozen=True)
class Deposit:
    """What a deposit says of its document besides its sealed content and title."""

    ins: str
    document_id: uuid.UUID
    document_type: str
    media_type: str
    held_back: bool
    replaces: uuid.UUID | None
    on_behalf_of: str | None
    prescriber_id: str | None = None  # MSG_02: sent the deposit by messaging too


def check_depositor(actor: Claims, held_back: bool, on_behalf_of: str | None) -> None:
    if held_back and actor.kind != "professional":
        raise InvalidInput("only a professional holds a document back for its announcement")
    if on_behalf_of is not None and on_behalf_of == actor.sub:
        raise InvalidInput("on_behalf_of names someone else than the one who deposits")


async def store_deposit(
    ctx: CommandContext[DossierSettings],
    uow: UnitOfWork,
    actor: Claims,
    decision: cmd.Decision,
    deposit: Deposit,
    sealed: domain.SealedDocument,
) -> cmd.Deposited:
    """The granted deposit, in the caller's unit of work: stored, and published without a
    word of its content."""
    conn, ins, document_id = uow.conn, deposit.ins, deposit.document_id
    if await spaces.status(conn, ins, lock=True) == "closed":
        raise _space_closed(ins)
    # DOC_03: the author is the professional on whose behalf; the one who deposited is kept.
    author_id = deposit.on_behalf_of or actor.sub
    author_name = f"RPPS {deposit.on_behalf_of}" if deposit.on_behalf_of else actor.name
    version = 1
    if deposit.replaces is not None:
        replaced = await repository.current_version(conn, ins, deposit.replaces)
        version = domain.check_replacement(
            None if replaced is None else dict(replaced), author_id, deposit.document_type
        )
    now = ctx.runtime.now()
    await repository.insert_document(
        conn,
        version=version,
        replaces=deposit.replaces,
        document_id=document_id,
        ins=ins,
        document_type=deposit.document_type,
        sealed=sealed,
        media_type=deposit.media_type,
        author_kind=actor.kind,
        author_id=author_id,
        author_name=author_name,
        decision_id=decision.decision_id,
        decision_rule=decision.rule,
        deposited_at=now,
        held_back=deposit.held_back,
        deposited_by=None if deposit.on_behalf_of is None else (actor.sub, actor.name),
        prescriber_id=deposit.prescriber_id,
    )
    if deposit.held_back:  # DOC_07: retention times the notice and the release
        await uow.emit(DocumentHeldBack(document_id=document_id, ins=ins, held_at=now))
    # Ids and coarse types only: neither the title nor the content leaves this service.
    await uow.emit(
        DocumentDeposited(
            document_id=document_id,
            ins=ins,
            document_type=deposit.document_type,
            author_kind=actor.kind,
            author_id=author_id,
            author_name=None if deposit.on_behalf_of else public_name(actor.kind, actor.name),
            deposited_at=now,
            prescriber_id=deposit.prescriber_id,
        )
    )
    log.info(
        "document_deposited",
        document_id=str(document_id),
        document_type=deposit.document_type,
        rule=decision.rule,
        parts=sealed.parts,
    )
    return cmd.Deposited(document_id=document_id, deposited_at=now, rule=decision.rule)


async def read_dossier(ctx: CommandContext[DossierSettings], c: cmd.ReadDossier) -> cmd.DossierPage:
    """ACC_01/ACC_07/DOC_06: one page of the documents the decision's scope opens, newest
    first, and a cursor when there are more."""
    actor = ctx.require_actor()
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    if actor.kind != "requester":
        # After death the space is closed, and a requester the operator validated may still
        # read it (ACC_13): access judges that one.
        await refuse_if_closed(ctx, c.ins)
    decision = await require_access(
        ctx, c.ins, "read", emergency=c.emergency, purpose=c.emergency_reason
    )
    # DOC_06: a professional still sees the documents they wrote, masked or not.
    author = actor.sub if actor.kind == "professional" else None
    scope = domain.Scope.of(decision, author)
    filters = repository.Filters(
        document_types=None if c.document_types is None else sorted(set(c.document_types)),
        since=c.since,
        until=c.until,
        author_id=c.author_id,
        all_versions=c.all_versions,
        care_history_since=care_history_since(ctx),
    )
    rows, next_cursor = await page_of(ctx, c.ins, scope, after, c.page_size, filters)
    masters = master_keys(ctx.runtime.settings)
    return cmd.DossierPage(
        rule=decision.rule,
        documents=[_entry(masters, row, c.ins) for row in rows],
        next_cursor=next_cursor,
    )


async def copy_dossier(ctx: CommandContext[DossierSettings], c: cmd.CopyDossier) -> cmd.DossierCopy:
    """DOC_09: a part of the holder's copy, as a FHIR R4 Bundle (services/dossier/fhir.py),
    as many documents as fit in a reply; each part asks access (a traced action)."""
    after = None if c.cursor is None else paging.decode_cursor(c.cursor)
    await refuse_if_closed(ctx, c.ins)
    decision = await require_access(ctx, c.ins, "copy")
    rows, next_cursor = await page_of(ctx, c.ins, domain.Scope.of(decision), after, 100)
    masters = master_keys(ctx.runtime.settings)
    exported = []
    for row in rows:
        content, title = _opened(masters, row, c.ins)
        exported.append(
            fhir.ExportedDocument(
                document_id=row["document_id"],
                document_type=row["document_type"],
                title=title or "",
                media_type=row["media_type"],
                content=content,
                # Rows deposited before hashes were kept: the hash of what decrypted (and
                # authenticated) is the hash of what was deposited.
                sha256=bytes(row["content_sha256"] or hashlib.sha256(content).digest()),
                parts=row.get("parts"),
                size=row.get("size"),
                deposited_at=row["deposited_at"],
                care_date=None,
                author_id=row["author_id"],
                author_name=row["author_name"],
                version=1,
                replaces=None,
                current=True,
                masked=row["masked"],
            )
        )
    bundle = fhir.dossier_bundle(c.ins, None, exported, ctx.runtime.now())
    return cmd.DossierCopy(bundle=bundle, documents=len(exported), next_cursor=next_cursor)


def care_history_since(ctx: CommandContext[DossierSettings]) -> datetime:
    """DOC_08: the care history is shown for its last 24 months."""
    return add_calendar_years(ctx.runtime.now(), -2)


async def get_document(ctx: CommandContext[DossierSettings], c: cmd.GetDocument) -> cmd.Document:
    """One document with its content, within the reader's scope (an access decision)."""
    actor = ctx.require_actor()
    if actor.kind != "requester":
        await refuse_if_closed(ctx, c.ins)
    decision = await require_access(
        ctx, c.ins, "read", emergency=c.emergency, purpose=c.emergency_reason
    )
    scope = domain.Scope.of(decision, actor.sub if actor.kind == "professional" else None)
    only = repository.Filters(document_id=c.document_id, care_history_since=care_history_since(ctx))
    rows, _ = await page_of(ctx, c.ins, scope, None, 1, only)
    if not rows:
        raise NotFound(f"no document {c.document_id} that you may see in this dossier")
    return _entry(master_keys(ctx.runtime.settings), rows[0], c.ins)


async def record_announcement_consultation(
    ctx: CommandContext[DossierSettings], c: cmd.RecordAnnouncementConsultation
) -> cmd.Release:
    """DOC_07: a professional who has access (access decides, and traces the read) records the
    consultation: the document is the holder's at once."""
    actor = ctx.require_actor()
    if actor.kind != "professional":
        raise Forbidden("a professional records the announcement consultation (DOC_07)")
    await refuse_if_closed(ctx, c.ins)
    await require_access(ctx, c.ins, "read")
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        exists, released = await repository.release(
            uow.conn, c.ins, c.document_id, now, "consultation"
        )
        if not exists:
            raise NotFound(f"no document {c.document_id} in this dossier")
        if released:
            await uow.emit(
                DocumentReleased(
                    document_id=c.document_id, ins=c.ins, released_at=now, reason="consultation"
                )
            )
        return uow.answer(cmd.Release(document_id=c.document_id, released_at=now))


async def on_release_due(ctx: EventContext[DossierSettings], event: HeldBackReleaseDue) -> None:
    """DOC_07: a month on, the document is the holder's (unless released already)."""
    _, released = await repository.release(
        ctx.conn, event.ins, event.document_id, event.due_at, "one_month"
    )
    if released:
        await outbox.add_event(
            ctx.conn,
            DocumentReleased(
                document_id=event.document_id,
                ins=event.ins,
                released_at=event.due_at,
                reason="one_month",
            ),
            holder_key=event.ins,
            occurred_at=ctx.runtime.now(),
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )


async def on_occupational_part_due(
    ctx: EventContext[DossierSettings], event: OccupationalPartDue
) -> None:
    """RET_03: the occupational health part's time is over: every document of it goes, each
    version, content and parts, and each is announced deleted (DOC_05's event)."""
    now = ctx.runtime.now()
    for document_id in await repository.delete_of_type(ctx.conn, event.ins, OCCUPATIONAL_HEALTH):
        await outbox.add_event(
            ctx.conn,
            DocumentDeleted(document_id=document_id, ins=event.ins, deleted_at=now),
            holder_key=event.ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
        )


async def request_document_deletion(
    ctx: CommandContext[DossierSettings], c: cmd.RequestDocumentDeletion
) -> cmd.DeletionRequest:
    """DOC_05: access decides that the holder (or representative) asks (action
    request_deletion); the holder's own document goes at once, a professional's waits for its
    author (DOC_04: never deleted over the author's head)."""
    actor = ctx.require_actor()
    await refuse_if_closed(ctx, c.ins)
    await require_access(ctx, c.ins, "request_deletion")
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        author = await repository.author_of(uow.conn, c.ins, c.document_id)
        if author is None:
            raise NotFound(f"no document {c.document_id} in this dossier")
        if author["author_kind"] in ("holder", "representative"):
            await _delete(uow, c.ins, c.document_id, now)
            return uow.answer(
                cmd.DeletionRequest(
                    document_id=c.document_id,
                    ins=c.ins,
                    status="deleted",
                    requested_at=now,
                    decided_at=now,
                )
            )
        request = await repository.insert_deletion_request(
            uow.conn, c.ins, c.document_id, author["author_id"], now, actor.sub
        )
        return uow.answer(_deletion_request(request))


async def list_deletion_requests(
    ctx: CommandContext[DossierSettings], c: cmd.ListDeletionRequests
) -> cmd.DeletionRequests:
    """DOC_05: what holders asked the calling professional to delete."""
    actor = ctx.require_actor()
    if actor.kind != "professional":
        raise Forbidden("a professional lists the deletion requests for their documents")
    async with ctx.runtime.pool.acquire() as conn:
        rows = await repository.pending_deletion_requests(conn, actor.sub)
    return cmd.DeletionRequests(requests=[_deletion_request(r) for r in rows])


async def decide_document_deletion(
    ctx: CommandContext[DossierSettings], c: cmd.DecideDocumentDeletion
) -> cmd.DeletionRequest:
    """DOC_05: the author, and only the author, decides."""
    actor = ctx.require_actor()
    now = ctx.runtime.now()
    async with ctx.unit_of_work() as uow:
        request = await repository.deletion_request(uow.conn, c.ins, c.document_id)
        if request is None or request["decided_at"] is not None:
            raise NotFound(f"no pending deletion request for document {c.document_id}")
        if actor.kind != "professional" or request["author_id"] != actor.sub:
            raise Forbidden("only the document's author decides on its deletion (DOC_05)")
        await repository.decide_deletion_request(uow.conn, c.document_id, c.accept, now)
        if c.accept:
            await _delete(uow, c.ins, c.document_id, now)
        decided = await repository.deletion_request(uow.conn, c.ins, c.document_id)
        return uow.answer(_deletion_request(decided))


async def _delete(uow: UnitOfWork, ins: str, document_id: uuid.UUID, now: datetime) -> None:
    deleted = await repository.delete_lineage(uow.conn, ins, document_id)
    await uow.emit(DocumentDeleted(document_id=document_id, ins=ins, deleted_at=now))
    log.info("document_deleted", document_id=str(document_id), versions=deleted)


def _deletion_request(row: Any) -> cmd.DeletionRequest:
    status = "pending" if row["decided_at"] is None else "deleted" if row["accepted"] else "kept"
    return cmd.DeletionRequest(
        document_id=row["document_id"],
        ins=row["ins"],
        status=status,
        requested_at=row["requested_at"],
        decided_at=row["decided_at"],
    )


async def mask_document(
    ctx: CommandContext[DossierSettings], c: cmd.MaskDocument
) -> cmd.DocumentMasking:
    """DOC_06: the holder (or representative) masks or unmasks a document at any time; access
    decides who may (action `mask`, traced), the dossier applies it."""
    await refuse_if_closed(ctx, c.ins)
    await require_access(ctx, c.ins, "mask")
    async with ctx.unit_of_work() as uow:
        if not await repository.set_masked(uow.conn, c.ins, c.document_id, c.masked):
            raise NotFound(f"no document {c.document_id} in this dossier")
        log.info("document_masking", document_id=str(c.document_id), masked=c.masked)
        return uow.answer(cmd.DocumentMasking(document_id=c.document_id, masked=c.masked))


async def page_of(
    ctx: CommandContext[DossierSettings],
    ins: str,
    scope: domain.Scope,
    after: paging.Position | None,
    page_size: int,
    filters: repository.Filters = repository.NO_FILTERS,
) -> tuple[list[dict[str, Any]], str | None]:
    """The stored rows of one page within the scope, newest first, and the next page's cursor:
    no more documents than `page_size`, and no more bytes than a reply may carry."""
    budget = ctx.runtime.settings.read_reply_budget_bytes
    async with (
        ctx.runtime.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        # One more than a page, to know whether a cursor is needed.
        candidates = await repository.page_candidates(
            conn,
            ins,
            document_types=None if scope.document_types is None else sorted(scope.document_types),
            include_masked=scope.include_masked,
            after=after,
            limit=page_size + 1,
            author=scope.author,
            filters=filters,
            include_held_back=scope.include_held_back,
        )
        sizes = [
            domain.reply_size(r["content_bytes"], r["title_bytes"], r["text_bytes"])
            for r in candidates
        ]
        page = candidates[: paging.take_within(sizes, page_size, budget)]
        loaded = await repository.documents_by_id(conn, ins, [r["document_id"] for r in page])
    by_id = {row["document_id"]: dict(row) for row in loaded}
    in_order = [by_id[r["document_id"]] for r in page if r["document_id"] in by_id]
    last = page[-1] if page else None
    more = last is not None and len(page) < len(candidates)
    cursor = paging.encode_cursor(last["deposited_at"], last["seq"]) if more and last else None
    return domain.visible(in_order, scope), cursor


def _opened(masters: dict[str, bytes], row: dict[str, Any], ins: str) -> tuple[bytes, str | None]:
    document_id = row["document_id"]
    try:
        return domain.open_document(masters, row, document_id, ins)
    except InvalidTag:
        # Altered, moved or sealed with another key: never return it as if it were sound.
        log.error("document_unauthentic", document_id=str(document_id))
        raise RuntimeError(f"document {document_id} failed authentication") from None


def _entry(masters: dict[str, bytes], row: dict[str, Any], ins: str) -> cmd.Document:
    document_id = row["document_id"]
    content, title = _opened(masters, row, ins)
    return cmd.Document(
        version=row.get("version") or 1,
        replaces=row.get("replaces"),
        replaced_by=row.get("replaced_by"),
        deposited_by=row.get("deposited_by_name"),
        size=row.get("size"),
        parts=row.get("parts"),
        masked=bool(row.get("masked")),
        held_back=bool(row.get("held_back")) and row.get("released_at") is None,
        document_id=document_id,
        document_type=row["document_type"],
        title=title,
        media_type=row["media_type"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        deposited_at=row["deposited_at"],
        content_b64=domain.encode_content(content),
    )
