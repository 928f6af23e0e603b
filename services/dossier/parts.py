"""Documents of tens of megabytes (PDFs, images), uploaded and read in parts (DOC_01, DOC_11).

No message and no step holds a whole large document: the sender declares it (size, SHA-256,
type, title), sends parts of `part_bytes`, each sealed at once under the document's own key and
bound to its place; completing the upload checks every part is there, hashes the whole one part
at a time, and only then asks access for the deposit (one decision, one trace, one alert, as
for a deposit in one message). Until then nothing of it is readable.

Reading: the listing says a document has `parts`; `GetDocumentPart` serves one part at a time.
Each asks access, under a request id shared by the parts one reader fetches within a few
minutes (access replays its decision for it): one access, however many parts.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag

from libs import sealing
from libs.access import require_access
from libs.contracts import commands as cmd
from libs.errors import Conflict, InvalidInput, NotFound
from libs.maintenance import Periodic
from libs.runtime import CommandContext, Runtime
from services.dossier import domain, repository
from services.dossier.service import (
    Deposit,
    care_history_since,
    check_depositor,
    current_master_key,
    master_keys,
    page_of,
    refuse_if_closed,
    store_deposit,
)
from services.dossier.settings import DossierSettings

log = structlog.get_logger()

# Parts fetched by one reader within this long are one access (access replays a decision for
# the same request id for five minutes).
DOWNLOAD_WINDOW = timedelta(minutes=4)


async def begin_upload(
    ctx: CommandContext[DossierSettings], c: cmd.BeginDocumentUpload
) -> cmd.Upload:
    actor = ctx.require_actor()
    settings = ctx.runtime.settings
    document_type = domain.check_document_type(c.document_type)
    check_depositor(actor, c.held_back, c.on_behalf_of)
    if c.size > settings.max_upload_bytes:
        raise InvalidInput(
            f"the document is larger than the limit of {settings.max_upload_bytes} bytes"
        )
    await refuse_if_closed(ctx, c.ins)
    now = ctx.runtime.now()
    key_id, master = current_master_key(ctx)
    async with ctx.unit_of_work() as uow:
        upload_id = uuid.uuid4()
        data_key = domain.new_document_key()
        wrapped = domain.wrap_key(master, key_id, data_key, upload_id, c.ins)
        title_nonce = sealing.new_nonce()
        parts = domain.part_count(c.size, settings.part_bytes)
        expires_at = now + timedelta(seconds=settings.upload_expiry_seconds)
        await repository.insert_upload(
            uow.conn,
            {
                "upload_id": upload_id,
                "ins": c.ins,
                "actor_id": actor.sub,
                "document_type": document_type,
                "title_nonce": title_nonce,
                "title_sealed": domain.seal_title(data_key, title_nonce, c.title, upload_id, c.ins),
                "media_type": c.media_type,
                "size": c.size,
                "sha256": bytes.fromhex(c.sha256),
                "parts": parts,
                "part_bytes": settings.part_bytes,
                "key_id": wrapped.key_id,
                "key_nonce": wrapped.nonce,
                "wrapped_key": wrapped.wrapped,
                "held_back": c.held_back,
                "replaces": c.replaces,
                "on_behalf_of": c.on_behalf_of,
                "prescriber_id": c.prescriber_id,
                "created_at": now,
                "expires_at": expires_at,
            },
        )
        return uow.answer(
            cmd.Upload(
                upload_id=upload_id,
                parts=parts,
                part_bytes=settings.part_bytes,
                expires_at=expires_at,
            )
        )


async def upload_part(
    ctx: CommandContext[DossierSettings], c: cmd.UploadDocumentPart
) -> cmd.UploadProgress:
    async with ctx.runtime.pool.acquire() as conn:
        upload = await _own_upload(ctx, conn, c.upload_id)
    expected = domain.expected_part_size(upload["size"], upload["part_bytes"], c.index)
    content = domain.decode_content(c.content_b64, upload["part_bytes"])
    if len(content) != expected:
        raise InvalidInput(f"part {c.index} has {len(content)} bytes, not {expected}")
    digest = hashlib.sha256(content).digest()
    ins = upload["ins"]
    nonce, sealed = domain.seal_part(_data_key(ctx, upload), content, c.index, c.upload_id, ins)
    del content
    async with ctx.runtime.pool.acquire() as conn, conn.transaction():
        known = await repository.part_hash(conn, c.upload_id, c.index)
        if known is not None and known != digest:
            raise Conflict(f"part {c.index} was received with other bytes")
        if known is None:
            await repository.insert_part(conn, c.upload_id, c.index, nonce, sealed, digest)
        received = await repository.parts_received(conn, c.upload_id)
    return cmd.UploadProgress(upload_id=c.upload_id, received=received, parts=upload["parts"])


async def _own_upload(ctx: CommandContext[DossierSettings], conn: Any, upload_id: uuid.UUID) -> Any:
    """The caller's upload in progress: only who began an upload sends or completes it."""
    upload = await repository.upload(conn, upload_id)
    if upload is None or upload["actor_id"] != ctx.require_actor().sub:
        raise NotFound(f"no upload {upload_id} of yours in progress")
    return upload


def _data_key(ctx: CommandContext[DossierSettings], upload: Any) -> bytes:
    """The key the upload's parts are sealed with (the document's, once complete)."""
    return domain.unwrap_key(
        master_keys(ctx.runtime.settings),
        domain.WrappedKey(upload["key_id"], upload["key_nonce"], upload["wrapped_key"]),
        upload["upload_id"],
        upload["ins"],
    )


async def complete_upload(
    ctx: CommandContext[DossierSettings], c: cmd.CompleteDocumentUpload
) -> cmd.Deposited:
    actor = ctx.require_actor()
    async with ctx.runtime.pool.acquire() as conn:
        upload = await _own_upload(ctx, conn, c.upload_id)
        received = await repository.parts_received(conn, c.upload_id)
        if received != upload["parts"]:
            raise Conflict(f"{received} of {upload['parts']} parts received: send the rest")
        ins = upload["ins"]
        data_key = _data_key(ctx, upload)
        # The whole, one part at a time: its hash, and its type from its first bytes.
        whole = hashlib.sha256()
        media_type = upload["media_type"]
        for index in range(upload["parts"]):
            stored = await repository.part(conn, c.upload_id, index)
            assert stored is not None
            part = domain.open_part(
                data_key, stored["nonce"], stored["sealed"], index, c.upload_id, ins
            )
            whole.update(part)
            if index == 0:
                media_type = domain.check_claims(part, media_type, None, None)
    if whole.digest() != upload["sha256"]:
        async with ctx.runtime.pool.acquire() as conn, conn.transaction():
            await repository.delete_upload(conn, c.upload_id, with_parts=True)
        raise InvalidInput("the parts do not make the document declared (SHA-256): send it again")
    await refuse_if_closed(ctx, ins)
    decision = await require_access(
        ctx, ins, "deposit", upload["document_type"], on_behalf_of=upload["on_behalf_of"]
    )
    sealed = domain.SealedDocument(
        key=domain.WrappedKey(upload["key_id"], upload["key_nonce"], upload["wrapped_key"]),
        nonce=None,
        content=None,
        title_nonce=upload["title_nonce"],
        title=upload["title_sealed"],
        size=upload["size"],
        sha256=upload["sha256"],
        parts=upload["parts"],
    )
    deposit = Deposit(
        ins,
        c.upload_id,
        upload["document_type"],
        media_type,
        upload["held_back"],
        upload["replaces"],
        upload["on_behalf_of"],
        upload["prescriber_id"],
    )
    async with ctx.unit_of_work() as uow:
        if await repository.upload(uow.conn, c.upload_id, lock=True) is None:
            raise Conflict("this upload was completed or dropped meanwhile")
        deposited = await store_deposit(ctx, uow, actor, decision, deposit, sealed)
        await repository.delete_upload(uow.conn, c.upload_id, with_parts=False)
        return uow.answer(deposited)


async def get_document_part(
    ctx: CommandContext[DossierSettings], c: cmd.GetDocumentPart
) -> cmd.DocumentPart:
    actor = ctx.require_actor()
    if actor.kind != "requester":
        await refuse_if_closed(ctx, c.ins)
    window = int(ctx.runtime.now().timestamp() // DOWNLOAD_WINDOW.total_seconds())
    decision = await require_access(
        ctx, c.ins, "read", request_id=f"parts-{actor.sub}-{c.document_id}-{window}"
    )
    scope = domain.Scope.of(decision, actor.sub if actor.kind == "professional" else None)
    only = repository.Filters(document_id=c.document_id, care_history_since=care_history_since(ctx))
    rows, _ = await page_of(ctx, c.ins, scope, None, 1, only)
    if not rows or rows[0].get("parts") is None:
        raise NotFound(f"no document {c.document_id} in parts that you may see in this dossier")
    row = rows[0]
    if c.index >= row["parts"]:
        raise InvalidInput(f"index {c.index} is past the last part ({row['parts'] - 1})")
    async with ctx.runtime.pool.acquire() as conn:
        stored = await repository.part(conn, c.document_id, c.index)
    if stored is None:
        raise NotFound(f"part {c.index} of document {c.document_id} is missing")
    try:
        data_key = domain.unwrap_key(
            master_keys(ctx.runtime.settings),
            domain.WrappedKey(row["key_id"], row["key_nonce"], row["wrapped_key"]),
            c.document_id,
            c.ins,
        )
        content = domain.open_part(
            data_key, stored["nonce"], stored["sealed"], c.index, c.document_id, c.ins
        )
    except InvalidTag:
        log.error("document_unauthentic", document_id=str(c.document_id), part=c.index)
        raise RuntimeError(f"document {c.document_id} failed authentication") from None
    return cmd.DocumentPart(
        document_id=c.document_id,
        index=c.index,
        parts=row["parts"],
        content_b64=domain.encode_content(content),
    )


def upload_pruner(runtime: Runtime[DossierSettings], interval: float = 600.0) -> Periodic:
    """Drops the uploads never completed, with their parts, once they expire."""

    async def prune_once() -> None:
        async with runtime.pool.acquire() as conn:
            dropped = await repository.prune_uploads(conn, runtime.now())
        if dropped:
            log.info("uploads_expired", uploads=dropped)

    return Periodic("dossier-upload-pruner", interval, prune_once)
