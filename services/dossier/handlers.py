"""dossier's edges: its commands and the lifecycle events it listens to."""

from __future__ import annotations

from libs import purge, spaces
from libs.contracts import commands as cmd
from libs.contracts.events import HeldBackReleaseDue, OccupationalPartDue, SpaceActivated
from libs.runtime import Runtime
from services.dossier import legacy, parts, service
from services.dossier import purge as holder_purge
from services.dossier.settings import DossierSettings

LIFECYCLE_QUEUE = "dossier.space-lifecycle"


def register(runtime: Runtime[DossierSettings]) -> None:
    # RET_01 / RET_02: its part of a holder's purge.
    purge.register(runtime, holder_purge.PURGE)
    runtime.handle(cmd.DepositDocument, service.deposit_document)
    runtime.handle(cmd.ReadDossier, service.read_dossier)
    runtime.handle(cmd.GetDocument, service.get_document)
    runtime.handle(cmd.BeginDocumentUpload, parts.begin_upload)
    runtime.handle(cmd.UploadDocumentPart, parts.upload_part)
    runtime.handle(cmd.CompleteDocumentUpload, parts.complete_upload)
    runtime.handle(cmd.GetDocumentPart, parts.get_document_part)
    runtime.handle(cmd.CopyDossier, service.copy_dossier)
    runtime.handle(cmd.MaskDocument, service.mask_document)
    runtime.handle(cmd.RequestDocumentDeletion, service.request_document_deletion)
    runtime.handle(cmd.ListDeletionRequests, service.list_deletion_requests)
    runtime.handle(cmd.DecideDocumentDeletion, service.decide_document_deletion)
    runtime.handle(cmd.RecordAnnouncementConsultation, service.record_announcement_consultation)
    runtime.handle(cmd.ImportLegacyRecord, legacy.import_legacy_record)
    runtime.on_events(
        LIFECYCLE_QUEUE,
        {
            **spaces.HANDLERS,
            SpaceActivated: legacy.on_space_activated,
            HeldBackReleaseDue: service.on_release_due,  # DOC_07
            OccupationalPartDue: service.on_occupational_part_due,  # RET_03
        },
    )
