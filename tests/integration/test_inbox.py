"""A delivery's inbox row and its effects commit together or not at all (`libs.inbox`)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from libs.db import Conn, TransactionAborted
from libs.inbox import applying_once
from libs.runtime import Runtime

pytestmark = pytest.mark.integration


async def _rows(identity: Runtime, *consumers: str) -> list[str]:
    return [
        r["consumer"]
        for r in await identity.pool.fetch(
            "SELECT consumer FROM inbox WHERE consumer = ANY($1::text[]) ORDER BY consumer",
            list(consumers),
        )
    ]


def _names() -> tuple[str, str]:
    """A consumer of the test's own, and the consumer name its effect row is written under."""
    return f"test.inbox-{uuid.uuid4().hex[:8]}", f"effect-{uuid.uuid4()}"


async def _effect(conn: Conn, consumer: str) -> None:
    # The effect of applying the message: a row of its own, in the same transaction.
    await conn.execute("INSERT INTO inbox (consumer, message_id) VALUES ($1, 'effect')", consumer)


async def test_a_first_delivery_commits_its_inbox_row_with_its_effect_a_second_applies_nothing(
    identity: Runtime,
) -> None:
    (queue, effect), message_id = _names(), uuid.uuid4()
    async with identity.pool.acquire() as conn:
        async with applying_once(conn, queue, message_id) as first:
            assert first
            await _effect(conn, effect)
        async with applying_once(conn, queue, message_id) as again:
            assert not again
        assert not conn.is_in_transaction()
    assert await _rows(identity, queue, effect) == sorted([effect, queue])


async def test_a_failure_while_applying_rolls_back_the_inbox_row_and_the_effect(
    identity: Runtime,
) -> None:
    queue, effect = _names()
    async with identity.pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with applying_once(conn, queue, uuid.uuid4()):
                await _effect(conn, effect)
                raise RuntimeError("the handler failed")
        assert not conn.is_in_transaction()
    assert await _rows(identity, queue, effect) == []


async def test_a_failed_statement_whose_error_was_swallowed_keeps_nothing(
    identity: Runtime,
) -> None:
    queue, effect = _names()
    async with identity.pool.acquire() as conn:
        with pytest.raises(TransactionAborted):
            async with applying_once(conn, queue, uuid.uuid4()):
                await _effect(conn, effect)
                try:
                    await conn.execute("SELECT 1 / 0")
                except asyncpg.DivisionByZeroError:
                    pass  # a handler's bug: PostgreSQL turns the COMMIT into a ROLLBACK
    assert await _rows(identity, queue, effect) == []


async def test_a_consumer_name_unlike_a_queue_is_refused_before_any_sql(
    identity: Runtime,
) -> None:
    async with identity.pool.acquire() as conn:
        with pytest.raises(ValueError):
            async with applying_once(conn, "x'); DROP TABLE inbox; --", uuid.uuid4()):
                pass
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT to_regclass('inbox') IS NOT NULL")
