"""dossier's use cases: each one transaction, its events written to the outbox in it.

Every deposit and every read asks the access service first (`access.decide`), on behalf of the
caller whose token the request carries. A decision that cannot be reached (timeout, access down,
an unreadable reply) is a denial, never a silent grant. Choices made here:

- A space known to be closed (SpaceClosed heard) refuses deposits *and* reads with code
  `space_closed` before access is even asked (RET_05, ACC_17); the closure is checked again,
  under a share lock, in the deposit's own transaction, so a closure recorded while access was
  deciding still stops it.
- A space the dossier has heard nothing about is left to the access service to judge.
- A read loads only the documents inside the decision's scope, and the domain's scope rule
  filters them again before anything is decrypted.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag

from libs import outbox
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.contracts.events import DocumentDeposited, SpaceClosed, SpaceOpened
from libs.errors import Conflict
from libs.runtime import CommandContext, EventContext
from libs.tokens import b64d
from services.dossier import domain, repository
from services.dossier.settings import DossierSettings

log = structlog.get_logger()


def _content_key(ctx: CommandContext) -> bytes:
    settings = ctx.runtime.settings
    assert isinstance(settings, DossierSettings)
    return _decoded_key(settings.dossier_content_key)


@functools.lru_cache(maxsize=4)
def _decoded_key(text: str) -> bytes:
    return b64d(text)


def _space_closed(ins: str) -> Conflict:
    return Conflict(
        f"the space {ins} is closed: nothing can be deposited or read any more (RET_05)",
        code="space_closed",
    )


async def _refuse_if_closed(ctx: CommandContext, ins: str) -> None:
    async with ctx.runtime.pool.acquire() as conn:
        if await repository.space_status(conn, ins) == "closed":
            raise _space_closed(ins)


# --- commands -------------------------------------------------------------------------------


async def deposit_document(ctx: CommandContext, c: cmd.DepositDocument) -> dict[str, Any]:
    """DOC_01/DOC_02/DOC_11: store a document, sealed, and publish its metadata."""
    actor = ctx.require_actor()
    document_type = domain.check_document_type(c.document_type)
    content = domain.decode_content(c.content_b64)
    await _refuse_if_closed(ctx, c.ins)
    decision = await require_access(ctx, c.ins, "deposit", document_type)

    document_id = uuid.uuid4()
    nonce = secrets.token_bytes(domain.NONCE_BYTES)
    sealed = domain.seal(_content_key(ctx), nonce, content, document_id, c.ins)
    now = ctx.runtime.now()
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        if await repository.space_status(conn, c.ins, lock=True) == "closed":
            raise _space_closed(c.ins)
        await repository.insert_document(
            conn,
            document_id=document_id,
            ins=c.ins,
            document_type=document_type,
            title=c.title,
            media_type=c.media_type,
            author_kind=actor.kind,
            author_id=actor.sub,
            author_name=actor.name,
            decision_id=decision.decision_id,
            decision_rule=decision.rule,
            deposited_at=now,
            nonce=nonce,
            content=sealed,
        )
        # Metadata only: the content never leaves this service (DOC_02, DocumentDeposited).
        await outbox.add_event(
            conn,
            DocumentDeposited(
                document_id=document_id,
                ins=c.ins,
                document_type=document_type,
                title=c.title,
                author_id=actor.sub,
                author_name=actor.name,
                deposited_at=now,
            ),
            holder_key=c.ins,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
        )
    log.info(
        "document_deposited",
        document_id=str(document_id),
        document_type=document_type,
        rule=decision.rule,
    )
    return {
        "document_id": str(document_id),
        "deposited_at": now.isoformat(),
        "rule": decision.rule,
    }


async def read_dossier(ctx: CommandContext, c: cmd.ReadDossier) -> dict[str, Any]:
    """ACC_01/ACC_07/DOC_06: the documents the decision's scope opens, newest first."""
    ctx.require_actor()
    await _refuse_if_closed(ctx, c.ins)
    decision = await require_access(ctx, c.ins, "read")
    scope = domain.Scope.of(decision)
    async with ctx.runtime.pool.acquire() as conn:
        rows = await repository.list_documents(
            conn,
            c.ins,
            document_types=None if scope.document_types is None else sorted(scope.document_types),
            include_masked=scope.include_masked,
        )
    key = _content_key(ctx)
    documents = []
    for row in domain.visible([dict(r) for r in rows], scope):
        try:
            content = domain.unseal(key, row["nonce"], row["content"], row["document_id"], c.ins)
        except InvalidTag:
            # Altered, moved or sealed with another key: never return it as if it were sound.
            log.error("document_content_unauthentic", document_id=str(row["document_id"]))
            raise RuntimeError(f"document {row['document_id']} failed authentication") from None
        documents.append(
            {
                "document_id": str(row["document_id"]),
                "document_type": row["document_type"],
                "title": row["title"],
                "media_type": row["media_type"],
                "author_id": row["author_id"],
                "author_name": row["author_name"],
                "deposited_at": row["deposited_at"].isoformat(),
                "content_b64": domain.encode_content(content),
            }
        )
    return {"rule": decision.rule, "documents": documents}


# --- events ---------------------------------------------------------------------------------


async def space_opened(ctx: EventContext, event: SpaceOpened) -> None:
    await repository.record_space_status(ctx.conn, event.ins, "open", event.opened_at)


async def space_closed(ctx: EventContext, event: SpaceClosed) -> None:
    """RET_05: from now on no deposit (nor read) goes through."""
    if await repository.record_space_status(ctx.conn, event.ins, "closed", event.closed_at):
        log.info("space_closed_recorded")
