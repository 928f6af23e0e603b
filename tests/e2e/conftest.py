"""All six services, each its own Runtime (own connections, own schema), on one bus; each test
gets its own cast of people from `tests.support.journey`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.bus.tap import EventTap
from libs.client import Client
from libs.runtime import Runtime
from tests.support.journey import Cast, Stage
from tests.support.smtp import SmtpServer
from tests.support.system import Keys, running_system


@pytest.fixture(scope="module")
async def system(settings_values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    async with running_system(settings_values, sweep_interval_seconds=0.2) as runtimes:
        yield runtimes


@pytest.fixture(scope="module")
async def tap(system: dict[str, Runtime], amqp_url: str) -> AsyncIterator[EventTap]:
    """Every event on the bus while the module runs (tests look only at their own holder's)."""
    async with EventTap(amqp_url, "#") as tap:
        yield tap


@pytest.fixture
def stage(client: Client, tap: EventTap, smtp: SmtpServer, keys: Keys, database_url: str) -> Stage:
    return Stage(client, tap, smtp.mailbox, keys, database_url)


@pytest.fixture
async def cast(stage: Stage) -> Cast:
    return await stage.cast()
