"""Technical rows are pruned on their schedule; what may still be needed is kept."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from libs.maintenance import prune
from libs.runtime import Runtime

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)


async def test_sent_outbox_inbox_and_request_rows_past_retention_are_pruned_unsent_kept(
    identity: Runtime,
) -> None:
    old, recent, unsent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with identity.pool.acquire() as conn:
        for event_id, sent in ((old, 10 * DAY), (recent, DAY / 24), (unsent, None)):
            await conn.execute(
                "INSERT INTO outbox (event_id, routing_key, body, created_at, sent_at)"
                " VALUES ($1, 'identity.x.v1', '{}', clock_timestamp() - interval '20 days',"
                " clock_timestamp() - $2::interval)",
                event_id,
                sent,
            )
        for message_id, age in (("old", 40 * DAY), ("recent", DAY / 24)):
            await conn.execute(
                "INSERT INTO inbox (consumer, message_id, received_at)"
                " VALUES ('test', $1, clock_timestamp() - $2::interval)",
                f"{message_id}-{old}",
                age,
            )
        await conn.execute(
            "INSERT INTO requests (request_key, command, fingerprint, reply, created_at)"
            " VALUES ($1, 'X', 'f', 'null', clock_timestamp() - interval '8 days')",
            f"old-{old}",
        )
    deleted = await prune(
        identity.pool, {"outbox": 7 * DAY, "inbox": 30 * DAY, "requests": 7 * DAY}
    )
    assert deleted["outbox"] >= 1 and deleted["inbox"] >= 1 and deleted["requests"] >= 1
    async with identity.pool.acquire() as conn:
        kept = {
            r["event_id"]
            for r in await conn.fetch(
                "SELECT event_id FROM outbox WHERE event_id = ANY($1::uuid[])",
                [old, recent, unsent],
            )
        }
        assert kept == {recent, unsent}
        assert await conn.fetchval(
            "SELECT array_agg(message_id) FROM inbox WHERE consumer = 'test'"
        ) == [f"recent-{old}"]
        assert not await conn.fetchval(
            "SELECT true FROM requests WHERE request_key = $1", f"old-{old}"
        )
