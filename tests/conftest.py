"""Fixtures shared by every tier: real servers, a fresh database and vhost per run, keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.runtime import Runtime
from tests.support import infra
from tests.support.actors import sign_in_operator
from tests.support.sms import SmsServer
from tests.support.smtp import SmtpServer
from tests.support.system import Keys, build_service, new_keys


@pytest.fixture(scope="session")
def servers() -> Iterator[infra.Servers]:
    with infra.servers() as found:
        yield found


@pytest.fixture(scope="session")
async def database_url(servers: infra.Servers) -> AsyncIterator[str]:
    async with infra.fresh_database(servers.database_url) as url:
        yield url


@pytest.fixture(scope="session")
async def amqp_url(servers: infra.Servers) -> AsyncIterator[str]:
    async with infra.fresh_vhost(servers) as url:
        yield url


@pytest.fixture(scope="session")
def keys() -> Keys:
    return new_keys()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def sms() -> Iterator[SmsServer]:
    """A real HTTP server speaking the SMS provider's API: `sms.inbox.wait_for(number)`."""
    with SmsServer() as server:
        yield server


@pytest.fixture(scope="session")
def settings_values(
    database_url: str, amqp_url: str, keys: Keys, smtp: SmtpServer, sms: SmsServer
) -> dict[str, Any]:
    """What every service is configured with in tests (each takes the fields it knows)."""
    return {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "identity_jwks": keys.identity_public,
        "identity_signing_keys": keys.identity_private,
        "operator_public_keys": {keys.operator_id: keys.operator_public},
        "dossier_content_key": "kO7n0Zr0m4v3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "messaging_content_key": "m3sS4g1nGk3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhAx",
        "purge_proof_key": "pUrG3pr00fK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bFhA",
        "log_pseudonym_key": "l0gPs3udOnYmK3yR9d2bS1cQyC5oS8lQ0dTn6eJw5bF",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "sms_gateway_url": sms.url,
        "sms_api_key": sms.api_key,
        "clock_mode": "adjustable",
        "log_level": "WARNING",
        "rpc_timeout_seconds": 10.0,
        # Six services and the fixtures share one server's 100 connections.
        "db_pool_size": 4,
    }


@pytest.fixture(scope="session")
async def client(amqp_url: str) -> AsyncIterator[Client]:
    rpc = RpcClient(infra.client_url(amqp_url), name="tests", timeout=10.0)
    await rpc.connect()
    yield Client(rpc)
    await rpc.close()


@pytest.fixture
async def operator_token(client: Client, keys: Keys, identity: Runtime) -> str:
    return await sign_in_operator(client, keys)


@pytest.fixture(scope="session")
async def identity(settings_values: dict[str, Any]) -> AsyncIterator[Runtime]:
    runtime = build_service("identity", settings_values)
    await runtime.start()
    yield runtime
    await runtime.stop()


# Isolation for modules that run services beside stand-ins, or as processes, or move the clock
# by years: a database and a vhost of their own.


@pytest.fixture(scope="module")
async def own_amqp_url(servers: infra.Servers) -> AsyncIterator[str]:
    async with infra.fresh_vhost(servers) as url:
        yield url


@pytest.fixture(scope="module")
async def own_database_url(servers: infra.Servers) -> AsyncIterator[str]:
    async with infra.fresh_database(servers.database_url) as url:
        yield url
