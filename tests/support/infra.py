"""Where the tests' PostgreSQL and RabbitMQ come from, and a fresh database and vhost per run.

Order: the URLs in DATABASE_URL / AMQP_URL; else containers, when a Docker engine answers
(testcontainers); else the local servers on their default ports. No server is a failure, never a
skip: a test about delivery or storage that did not run proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from libs import provision
from libs.bus import authority

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MANAGEMENT_PORT = 15672


# Test-only services that get a broker user and a database role like the real ones.
TEST_SERVICES = ("probe", "bench")

# What was provisioned, by administrator URL: each test module's vhost and database.
_BUS: dict[str, tuple[str, dict[str, str]]] = {}
_DB: dict[str, tuple[str, dict[str, str]]] = {}


@dataclass(frozen=True)
class Servers:
    database_url: str  # a maintenance database on the server (to create test databases)
    amqp_url: str
    # How to administer this broker (vhosts, users), where we can: `rabbitmqctl` for a local
    # one, the management API for a container.
    broker_admin: authority.BrokerAdmin | authority.RabbitCtl | None = None


def _local_rabbitmqctl(amqp_url: str) -> authority.RabbitCtl | None:
    parts = urlsplit(amqp_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.path not in ("", "/"):
        return None
    return authority.local_rabbitmqctl()


# Users are removed in the background: one `rabbitmqctl` call each (about a second), nothing
# waits for them, and the interpreter joins this thread before it exits.
_cleanup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker-cleanup")


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    database_url = os.environ.get("DATABASE_URL")
    amqp_url = os.environ.get("AMQP_URL")
    if database_url is None and amqp_url is None and _docker_answers():
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with (
            PostgresContainer("postgres:15") as pg,
            RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(
                5672, MANAGEMENT_PORT
            ) as mq,
        ):
            host = mq.get_container_host_ip()
            port = mq.get_exposed_port(mq.port)
            management = mq.get_exposed_port(MANAGEMENT_PORT)
            yield Servers(
                pg.get_connection_url(driver=None),
                f"amqp://{mq.username}:{mq.password}@{host}:{port}/",
                authority.ManagementApi(f"http://{mq.username}:{mq.password}@{host}:{management}"),
            )
        return
    database_url = database_url or LOCAL_DATABASE_URL
    amqp_url = amqp_url or LOCAL_AMQP_URL
    for url, port, what in ((database_url, 5432, "PostgreSQL"), (amqp_url, 5672, "RabbitMQ")):
        if not _answers(url, port):
            pytest.fail(
                f"{what} does not answer at {url}: start it (make services-up), or set"
                " DATABASE_URL / AMQP_URL, or run a Docker engine for testcontainers",
                pytrace=False,
            )
    yield Servers(database_url, amqp_url, _local_rabbitmqctl(amqp_url))


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{quote(vhost, safe='')}"))


@contextlib.asynccontextmanager
async def fresh_vhost(servers: Servers) -> AsyncIterator[str]:
    """A vhost of its own, with every party's broker user, removed at the end.

    The URL yielded is the administrator's; tests and services connect as the parties
    (`party_url`, `client_url`, `service_values`), never as the administrator.
    """
    if servers.broker_admin is None:
        pytest.fail(
            "the tests create each service's broker user and need rabbitmqctl (a local broker)"
            " or the management API (a testcontainers one) for that",
            pytrace=False,
        )
    admin = authority.as_admin(servers.broker_admin)
    vhost = f"dmp-test-{uuid.uuid4().hex[:8]}"
    admin.add_vhost(vhost, urlsplit(servers.amqp_url).username or "guest")
    url = with_vhost(servers.amqp_url, vhost)
    prefix = f"{vhost}."
    try:
        await authority.declare_shared(url)
        passwords = authority.apply(admin, vhost, prefix, extra_services=TEST_SERVICES)
        _BUS[url] = (prefix, passwords)
        yield url
    finally:
        _BUS.pop(url, None)
        with contextlib.suppress(Exception):
            admin.delete_vhost(vhost)
        _cleanup.submit(authority.remove, admin, prefix, TEST_SERVICES)


def party_url(admin_amqp_url: str, party: str) -> str:
    """The URL a party (a service, a kind of client, ops) connects with in that vhost."""
    prefix, passwords = _BUS[admin_amqp_url]
    return authority.as_user(admin_amqp_url, prefix + party, passwords[party])


def client_url(admin_amqp_url: str, kind: str = "practice-software") -> str:
    return party_url(admin_amqp_url, kind)


def bus_environment(admin_amqp_url: str) -> provision.Environment:
    """The vhost's broker users as `libs.provision` describes an environment (no database)."""
    prefix, passwords = _BUS[admin_amqp_url]
    return provision.Environment(admin_amqp_url, "", prefix, "", bus_passwords=passwords)


def bus_prefix(admin_amqp_url: str) -> str:
    return _BUS[admin_amqp_url][0]


def db_url(admin_database_url: str, service: str) -> str:
    prefix, passwords = _DB[admin_database_url]
    environment = provision.Environment("", admin_database_url, "", prefix, db_passwords=passwords)
    return environment.db_url(service)


def db_prefix(admin_database_url: str) -> str:
    """The prefix of the database's service roles (`<prefix><service>`)."""
    return _DB[admin_database_url][0]


def service_values(values: dict[str, Any], service: str) -> dict[str, Any]:
    """Settings as a service gets them: its own broker user and database role."""
    return {
        **values,
        "amqp_url": party_url(values["amqp_url"], service),
        "database_url": db_url(values["database_url"], service),
        "bus_user_prefix": bus_prefix(values["amqp_url"]),
    }


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str = "dmp_test") -> AsyncIterator[str]:
    """A new, empty database on the server, dropped (connections and all) at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(admin_url, name)
    services = (*provision.SERVICES, *TEST_SERVICES)
    try:
        passwords = await provision.apply_database_roles(
            url, f"{name}_", services=services, may_create_schemas=TEST_SERVICES
        )
        _DB[url] = (f"{name}_", passwords)
        yield url
    finally:
        _DB.pop(url, None)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        await provision.drop_database_roles(admin_url, f"{name}_", services)
