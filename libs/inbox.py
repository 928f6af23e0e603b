"""Inbox: a consumer applies each message once, however often it is delivered."""

from __future__ import annotations

from libs.db import Conn


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
