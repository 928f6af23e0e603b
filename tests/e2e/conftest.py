"""All six services, each its own Runtime (own connections, own schema), on one bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.runtime import Runtime
from tests.conftest import SERVICES, build_service


@pytest.fixture(scope="module")
async def system(settings_values: dict[str, Any]) -> AsyncIterator[dict[str, Runtime]]:
    runtimes = {
        name: build_service(name, settings_values, sweep_interval_seconds=0.2) for name in SERVICES
    }
    started: list[Runtime] = []
    try:
        for runtime in runtimes.values():
            await runtime.start()
            started.append(runtime)
        yield runtimes
    finally:
        for runtime in reversed(started):
            await runtime.stop()
