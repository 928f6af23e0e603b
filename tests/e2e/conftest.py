"""All six services, each its own Runtime (own connections, own schema), on one bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.runtime import Runtime
from tests.support.system import running_system


@pytest.fixture(scope="module")
async def system(settings_values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    async with running_system(settings_values, sweep_interval_seconds=0.2) as runtimes:
        yield runtimes
