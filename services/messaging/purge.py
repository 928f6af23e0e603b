"""What messaging deletes for a purged holder (RET_01): every message of their space, whoever
sent it, and what it knows of the space."""

from __future__ import annotations

from libs import spaces
from libs.purge import Purge

PURGE = Purge(
    tables=(
        ("messages", "DELETE FROM messages WHERE ins = $1"),
        spaces.PURGE_TABLE,
    ),
    newer_space=spaces.opened_since,
)
