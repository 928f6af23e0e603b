"""Where the tests' PostgreSQL and RabbitMQ come from, and a fresh database and vhost per run.

Order: the URLs in DATABASE_URL / AMQP_URL; else containers, when a Docker engine answers
(testcontainers); else the local servers on their default ports. No server is a failure, never a
skip: a test about delivery or storage that did not run proves nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


RabbitCtl = Callable[[list[str]], None]


@dataclass(frozen=True)
class Servers:
    database_url: str  # a maintenance database on the server (to create test databases)
    amqp_url: str
    # How to run `rabbitmqctl` against this broker (to make vhosts), where we can.
    rabbitmqctl: RabbitCtl | None = None


def _local_rabbitmqctl(amqp_url: str) -> RabbitCtl | None:
    ctl = shutil.which("rabbitmqctl")
    parts = urlsplit(amqp_url)
    if (
        ctl is None
        or parts.hostname not in ("127.0.0.1", "localhost")
        or parts.path not in ("", "/")
    ):
        return None

    def run(args: list[str]) -> None:
        subprocess.run([ctl, "-q", *args], check=True, capture_output=True)

    return run


def _container_rabbitmqctl(container: Any) -> RabbitCtl:
    def run(args: list[str]) -> None:
        result = container.exec(["rabbitmqctl", "-q", *args])
        if result.exit_code != 0:
            raise RuntimeError(f"rabbitmqctl {args} failed: {result.output!r}")

    return run


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
            RabbitMqContainer("rabbitmq:3.13-management") as mq,
        ):
            host = mq.get_container_host_ip()
            port = mq.get_exposed_port(mq.port)
            yield Servers(
                pg.get_connection_url(driver=None),
                f"amqp://{mq.username}:{mq.password}@{host}:{port}/",
                _container_rabbitmqctl(mq),
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


@contextlib.contextmanager
def fresh_vhost(servers: Servers) -> Iterator[str]:
    """A vhost of its own, removed at the end, where rabbitmqctl can reach the broker.

    Otherwise (a broker given by URL elsewhere) the URL is used as given.
    """
    ctl = servers.rabbitmqctl
    if ctl is None:
        yield servers.amqp_url
        return
    vhost = f"dmp-test-{uuid.uuid4().hex[:8]}"
    user = urlsplit(servers.amqp_url).username or "guest"
    ctl(["add_vhost", vhost])
    ctl(["set_permissions", "-p", vhost, user, ".*", ".*", ".*"])
    try:
        yield with_vhost(servers.amqp_url, vhost)
    finally:
        with contextlib.suppress(Exception):
            ctl(["delete_vhost", vhost])


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, prefix: str = "dmp_test") -> AsyncIterator[str]:
    """A new, empty database on the server, dropped (connections and all) at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
