"""What dossier deletes for a purged holder (RET_01): every document (every version, masked,
held back, staged from the former DMP), its content and parts, uploads under way, deletion
requests, and what it knows of the space."""

from __future__ import annotations

from libs import spaces
from libs.purge import Purge

PURGE = Purge(
    tables=(
        (
            "document_parts",
            "DELETE FROM document_parts WHERE document_id IN"
            " (SELECT document_id FROM documents WHERE ins = $1)",
        ),
        ("deletion_requests", "DELETE FROM deletion_requests WHERE ins = $1"),
        ("documents", "DELETE FROM documents WHERE ins = $1"),
        (
            "document_parts",
            "DELETE FROM document_parts WHERE document_id IN"
            " (SELECT upload_id FROM uploads WHERE ins = $1)",
        ),
        ("uploads", "DELETE FROM uploads WHERE ins = $1"),
        ("activated_spaces", "DELETE FROM activated_spaces WHERE ins = $1"),
        spaces.PURGE_TABLE,
    ),
    newer_space=spaces.opened_since,
)
