"""What messaging deletes for a purged holder (RET_01): every thread about their space, whoever
wrote in it, with its messages, attachments and participants; whom it knew as their treating
physician; and what it knows of the space."""

from __future__ import annotations

from libs import spaces
from libs.purge import Purge

PURGE = Purge(
    tables=(
        ("attachments", "DELETE FROM attachments WHERE ins = $1"),
        ("messages", "DELETE FROM messages WHERE ins = $1"),
        ("thread_participants", "DELETE FROM thread_participants WHERE ins = $1"),
        ("threads", "DELETE FROM threads WHERE ins = $1"),
        ("treating_physicians", "DELETE FROM treating_physicians WHERE ins = $1"),
        spaces.PURGE_TABLE,
    ),
    newer_space=spaces.opened_since,
)
