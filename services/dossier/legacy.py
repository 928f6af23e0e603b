"""SPC_08: the record of the former DMP (opened before July 2021), brought into the space when
it is activated, unchanged.

The operator's migration sends the old system's export (`ImportLegacyRecord`). Each document is
stored as it came — content and title sealed like any other (DOC_11), type, date and author as
given, the content's SHA-256 kept so that "unchanged" can be checked — and *staged*: not served
until identity says the space is activated (`SpaceActivated`), then served at once. An import
after activation is served at once.

Access is not asked: the operator writes what the old system held, it never reads (ACC_10), and
the import is no one's access to the holder's data. It is traced by `LegacyRecordImported` (a
count, no description) and in each document's row (`decision_rule` SPC_08, the import's id).

Idempotent: a document is known by (INS, legacy id). The same export sent again creates nothing
twice (`already_there`); a known id whose content differs refuses the whole request (the record
must come in unchanged, and nothing is half-imported).
"""

from __future__ import annotations

import hashlib
import uuid

import structlog

from libs.contracts import commands as cmd
from libs.contracts.events import LegacyRecordImported, SpaceActivated
from libs.errors import Conflict, Forbidden
from libs.runtime import CommandContext, EventContext
from services.dossier import domain, repository
from services.dossier.service import current_master_key
from services.dossier.settings import DossierSettings

log = structlog.get_logger()

# The import's id, derived from the export: the same export, the same id in every row.
_IMPORTS = uuid.UUID("5d0c5e8e-8f5b-4b5e-9a55-0c2f4f1b7d21")


async def import_legacy_record(
    ctx: CommandContext[DossierSettings], c: cmd.ImportLegacyRecord
) -> cmd.LegacyImport:
    if ctx.require_actor().kind != "operator":
        raise Forbidden("only the operator's migration imports a former record (SPC_08)")
    limit = ctx.runtime.settings.max_document_bytes
    # Every document checked before anything is written.
    contents = [
        (
            document,
            domain.check_document_type(document.document_type),
            domain.decode_content(document.content_b64, limit),
        )
        for document in c.documents
    ]
    import_id = uuid.uuid5(_IMPORTS, f"{c.ins}/{c.export_id}")
    key_id, master = current_master_key(ctx)
    now = ctx.runtime.now()
    imported = already = 0
    async with ctx.unit_of_work() as uow:
        conn = uow.conn
        staged = not await repository.is_activated(conn, c.ins)
        for document, document_type, content in contents:
            digest = hashlib.sha256(content).digest()
            known = await repository.legacy_hash(conn, c.ins, document.legacy_id)
            if known is not None:
                if known != digest:
                    raise Conflict(
                        f"legacy document {document.legacy_id} was imported with other content:"
                        " a record comes in unchanged"
                    )
                already += 1
                continue
            document_id = uuid.uuid4()
            await repository.insert_document(
                conn,
                document_id=document_id,
                ins=c.ins,
                document_type=document_type,
                sealed=domain.seal_document(
                    master, key_id, content, document.title, document_id, c.ins
                ),
                media_type=document.media_type,
                author_kind="legacy",
                author_id=f"legacy:{c.export_id}",
                author_name=document.author_name or "DMP (avant 2021)",
                decision_id=import_id,
                decision_rule="SPC_08",
                deposited_at=document.authored_at,
                legacy_id=document.legacy_id,
                legacy_export=c.export_id,
                staged=staged,
            )
            imported += 1
        if imported:
            await uow.emit(
                LegacyRecordImported(
                    ins=c.ins,
                    export_id=c.export_id,
                    documents=imported,
                    staged=staged,
                    imported_at=now,
                )
            )
        log.info("legacy_record_imported", imported=imported, already=already, staged=staged)
        return uow.answer(
            cmd.LegacyImport(
                ins=c.ins,
                export_id=c.export_id,
                imported=imported,
                already_there=already,
                status="staged" if staged else "imported",
            )
        )


async def on_space_activated(ctx: EventContext[DossierSettings], event: SpaceActivated) -> None:
    """SPC_08: the holder activated the space: the former record is served from now on."""
    released = await repository.record_activation(ctx.conn, event.ins, event.activated_at)
    log.info("legacy_record_released", documents=released)
