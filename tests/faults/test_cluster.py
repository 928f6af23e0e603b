"""One node of a three-node RabbitMQ cluster lost under load (full suite only).

The six services and the client reach the cluster through `AmqpProxy` (as behind a load
balancer); every queue is a quorum queue with a member on each node. The node that leads the
most queues of the test's vhost is killed (`kill -9` of its VM), left down about 20 s, then
started again: it rejoins by itself. Nothing acknowledged may be lost or done twice, the system
must serve again by itself, and afterwards every queue must have its three members back and no
consumer queue may hold anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import harness
from tests.faults.harness import Bench, run_fault, system_on
from tests.faults.test_faults import assert_held
from tests.support import infra
from tests.support.private_servers import RabbitCluster

pytestmark = pytest.mark.faults

NODE_DOWN_SECONDS = 20


@pytest.fixture
async def cluster_vhost(private_cluster: RabbitCluster) -> AsyncIterator[str]:
    """A vhost with every party's broker user, on the cluster (URL through the proxy)."""
    servers = infra.Servers("", private_cluster.amqp_url, private_cluster.ctl_quiet)
    async with infra.fresh_vhost(servers) as url:
        yield url


def queues(cluster: RabbitCluster, vhost: str) -> list[dict[str, Any]]:
    out = cluster.ctl(
        "-q",
        "list_queues",
        "-p",
        vhost,
        "name",
        "type",
        "leader",
        "members",
        "online",
        "messages_ready",
        "messages_unacknowledged",
        "--formatter",
        "json",
    )
    return list(json.loads(out))


def most_leading(cluster: RabbitCluster, vhost: str) -> tuple[int, dict[str, int]]:
    """The index of the node leading the most of the vhost's queues, and the count per node."""
    counts = {node.node: 0 for node in cluster.nodes}
    for queue in queues(cluster, vhost):
        if queue.get("leader") in counts:
            counts[queue["leader"]] += 1
    best = max(range(len(cluster.nodes)), key=lambda i: counts[cluster.nodes[i].node])
    return best, counts


async def test_cluster_node_leading_most_queues_killed_9_then_restarted_loses_nothing(
    private_cluster: RabbitCluster, fresh_database: str, cluster_vhost: str, logs: Path
) -> None:
    vhost = cluster_vhost.rsplit("/", 1)[1]
    seen: dict[str, Any] = {}

    async def inject(bench: Bench) -> None:
        index, counts = await asyncio.to_thread(most_leading, private_cluster, vhost)
        node = private_cluster.nodes[index]
        seen.update(killed=node.node, leaders_before=counts)
        await asyncio.to_thread(node.kill)
        try:
            await asyncio.sleep(NODE_DOWN_SECONDS)
        finally:
            await asyncio.to_thread(node.start)

    async with system_on(fresh_database, cluster_vhost, logs) as bench:
        row = await run_fault(bench, "cluster: node leading most queues killed 20 s", inject)
        # The restarted node is a member again of every queue; nothing left in consumer queues.
        after: list[dict[str, Any]] = []
        members_back = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while not members_back:
                    after = await asyncio.to_thread(queues, private_cluster, vhost)
                    members_back = all(
                        len(q.get("online") or []) == len(private_cluster.nodes) for q in after
                    )
                    await asyncio.sleep(1)
        stuck = await harness.queues_drained(private_cluster.ctl, vhost)
    leaders_after: dict[str, int] = {}
    for queue in after:
        leaders_after[queue.get("leader", "?")] = leaders_after.get(queue.get("leader", "?"), 0) + 1
    report = (
        f"killed {seen.get('killed')}; leaders before {seen.get('leaders_before')};"
        f" after {leaders_after}"
    )
    print(report)
    (logs / "cluster.txt").write_text(report + "\n" + json.dumps(after, indent=1) + "\n")
    assert seen.get("leaders_before"), "no queue leader found to kill"
    assert_held(row)
    assert not stuck, f"messages left in consumer queues: {stuck}"
    assert members_back, f"queues without their three members 60 s after: {after}"
