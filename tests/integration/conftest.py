"""Isolation for modules that run a service beside stand-ins: their own database and vhost.

A module that plays another service on the bus (a stand-in for `access.decide`), or moves the
shared clock by years, must not meet the real services other modules start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import infra


@pytest.fixture(scope="module")
def own_amqp_url(servers: infra.Servers) -> Iterator[str]:
    with infra.fresh_vhost(servers) as url:
        yield url


@pytest.fixture(scope="module")
async def own_database_url(servers: infra.Servers) -> AsyncIterator[str]:
    async with infra.fresh_database(servers.database_url) as url:
        yield url
