"""Inbox: a consumer applies each message once, however often it is delivered."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from libs.db import Conn, begun_with, literal


@contextlib.asynccontextmanager
async def applying_once(conn: Conn, consumer: str, message_id: uuid.UUID) -> AsyncIterator[bool]:
    """The transaction that applies a message, opened with the message's inbox row: yields
    whether this is its first delivery to `consumer` (if not, there is nothing to apply).
    Commits when the block ends, rolls back if it raises (`libs.db.begun_with`: `BEGIN` and
    the inbox row in one round trip, a quarter of a consumer's statements per event)."""
    row = f"{literal(consumer)}, {literal(str(uuid.UUID(str(message_id))))}"
    async with begun_with(
        conn, f"INSERT INTO inbox (consumer, message_id) VALUES ({row}) ON CONFLICT DO NOTHING"
    ) as status:
        yield status == "INSERT 0 1"
