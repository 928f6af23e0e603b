"""Inbox: a consumer applies each message once, however often it is delivered."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator

from libs.db import Conn

# What a consumer may be called (a queue name of ours): it is written into SQL as a literal.
_CONSUMER = re.compile(r"[a-z0-9_.-]{1,200}")


class TransactionAborted(Exception):
    """COMMIT rolled back: a statement of the transaction failed and its error was swallowed."""


async def first_delivery(conn: Conn, consumer: str, message_id: str) -> bool:
    """Record the message as handled by this consumer; False if it already was.

    Call inside the transaction that applies the message's effects, so both commit or neither.
    """
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        message_id,
    )
    return bool(inserted)


@contextlib.asynccontextmanager
async def applying_once(conn: Conn, consumer: str, message_id: uuid.UUID) -> AsyncIterator[bool]:
    """The transaction that applies a message, opened with the message's inbox row: yields
    whether this is its first delivery to `consumer` (if not, there is nothing to apply).
    Commits when the block ends, rolls back if it raises.

    `BEGIN` and the inbox row go as one simple query, one round trip instead of two (a quarter
    of a consumer's statements per event); a simple query takes no parameters, so both values
    are written as literals, and are checked first: a queue name of ours and a UUID.
    """
    if not _CONSUMER.fullmatch(consumer):
        raise ValueError(f"not a consumer name: {consumer!r}")
    begun = (
        "BEGIN; INSERT INTO inbox (consumer, message_id)"
        f" VALUES ('{consumer}', '{uuid.UUID(str(message_id))}') ON CONFLICT DO NOTHING"
    )
    try:
        first = await conn.execute(begun) == "INSERT 0 1"
        yield first
    except BaseException:
        # Also when the connection is gone or busy: the pool rolls back what is left open.
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    if (ended := await conn.execute("COMMIT")) != "COMMIT":
        raise TransactionAborted(f"the transaction ended {ended}: a statement of it had failed")
