"""The fault suite's servers: a private PostgreSQL cluster and a private RabbitMQ node for the
session (a three-node cluster for the cluster module), a fresh database and vhost per test.

`make test` runs only the tests marked `faults_short`; `make test-faults` (FAULTS=full) all.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults import harness
from tests.support import infra
from tests.support.private_servers import (
    PrivatePostgres,
    RabbitCluster,
    RabbitNode,
    private_postgres,
    private_rabbitmq,
    private_rabbitmq_cluster,
)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FAULTS") == "full":
        return
    keep, drop = [], []
    for item in items:
        in_suite = HERE in Path(str(item.fspath)).parents
        (drop if in_suite and item.get_closest_marker("faults_short") is None else keep).append(
            item
        )
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if harness.ROWS:
        terminalreporter.section("fault suite")
        terminalreporter.write_line(harness.table(harness.ROWS))
        for row in harness.ROWS:
            terminalreporter.write_line(f"{row.fault}: {row.note}")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def private_rabbit() -> Iterator[RabbitNode]:
    with private_rabbitmq() as node:
        yield node


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[RabbitCluster]:
    with private_rabbitmq_cluster(3) as cluster:
        yield cluster


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    path = harness.RUN_DIR / name
    # This run's logs only: a test reads them back (a crash point's marker, say), and a
    # previous run's lines would be read as this one's.
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
async def fresh_database(private_pg: PrivatePostgres) -> AsyncIterator[str]:
    async with infra.fresh_database(private_pg.url(), "dmp_fault") as url:
        yield url


@pytest.fixture
async def fresh_vhost(private_rabbit: RabbitNode) -> AsyncIterator[str]:
    """A vhost with every party's broker user (`tests.support.infra.fresh_vhost`)."""
    servers = infra.Servers("", private_rabbit.amqp_url, private_rabbit.ctl_quiet)
    async with infra.fresh_vhost(servers) as url:
        yield url
