"""deploy/compose.yaml's chain without Docker: `new-env` and `secret-files`, the provisioning
job with exactly the environment compose gives it (against a broker with its management API, as
in the image, and a PostgreSQL that checks passwords), the migration job, then a service with
exactly its container's environment and secret files (SECRETS_DIR, as /run/secrets).

Compose's host names are mapped to a private RabbitMQ node and a private PostgreSQL cluster of
the test's own, so the users and roles it makes (`access`, `dmp_access`...) touch no one else.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiormq.exceptions import ChannelAccessRefused

from libs import provision
from libs.bus import authority, topology
from libs.bus.rpc import RpcClient
from libs.client import Client
from libs.contracts.events import AccessLogged
from libs.settings import with_password
from scripts.processes import wait_ready
from tests.support import compose
from tests.support.bus import consume_as, publish_as
from tests.support.private_servers import (
    PrivatePostgres,
    RabbitNode,
    private_postgres,
    private_rabbitmq,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"


@dataclass
class Deployment:
    env: dict[str, str]  # deploy/.env as an operator makes it
    rabbit: RabbitNode
    pg: PrivatePostgres
    secrets: Path  # deploy/secrets/ as `python -m libs.provision secret-files` makes it
    mounts: Path  # each container's /run/secrets, one folder each

    def secret_dir(self, service: str) -> Path:
        return compose.mount_secrets(service, self.secrets, self.mounts / service)

    def container(self, service: str) -> dict[str, str]:
        """The container's environment, compose's host names pointing at the private servers."""
        hosts = {
            "@rabbitmq:5672/": f"@127.0.0.1:{self.rabbit.port}/",
            "@rabbitmq:15672": f"@127.0.0.1:{self.rabbit.management_port}",
            "@postgres:5432/": f"@127.0.0.1:{self.pg.port}/",
        }
        values = compose.environment(service, self.env)
        mounted = self.secret_dir(service)
        for name, value in values.items():
            for host, here in hosts.items():
                value = value.replace(host, here)
            values[name] = value
        # The URLs as the settings make them from the secret files (libs/settings.py).
        for url, password in (("DATABASE_URL", "database_password"), ("AMQP_URL", "amqp_password")):
            if url in values and (mounted / password).is_file():
                values[url] = with_password(values[url], (mounted / password).read_text())
        return values

    def run(self, module: str, service: str, *args: str) -> subprocess.Popen[bytes]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={
                **keep,
                "PYTHONPATH": str(ROOT),
                **self.container(service),
                "SECRETS_DIR": str(self.secret_dir(service)),
            },
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    made = subprocess.run(
        [sys.executable, "-m", "libs.provision", "new-env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = compose.parse_env(compose.ENV_EXAMPLE.read_text()) | compose.parse_env(made)
    folder = tmp_path_factory.mktemp("deploy")
    provision.write_secret_files(env, str(folder / "secrets"))
    with (
        private_rabbitmq(management=True) as rabbit,
        private_postgres(password=secrets.token_hex(12)) as pg,
    ):
        # What the images do from POSTGRES_* and RABBITMQ_DEFAULT_*: the administrators.
        rabbit.ctl("add_user", "dmp", env["RABBITMQ_PASSWORD"])
        rabbit.ctl("set_user_tags", "dmp", "administrator")
        rabbit.ctl("set_permissions", "-p", "/", "dmp", ".*", ".*", ".*")
        asyncio.run(_create_database_administrator(pg, env["POSTGRES_PASSWORD"]))
        yield Deployment(env, rabbit, pg, folder / "secrets", folder / "run-secrets")


async def _create_database_administrator(pg: PrivatePostgres, password: str) -> None:
    conn = await asyncpg.connect(pg.url())
    try:
        await conn.execute(f"CREATE ROLE dmp LOGIN SUPERUSER PASSWORD '{password}'")
        await conn.execute("CREATE DATABASE dmp OWNER dmp")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def provisioned(deployment: Deployment) -> Deployment:
    job = deployment.run("libs.provision", "provision", "apply")
    output, _ = await asyncio.to_thread(job.communicate, timeout=120)
    assert job.returncode == 0, output.decode()
    return deployment


@pytest.fixture(scope="module")
async def migrated(provisioned: Deployment) -> Deployment:
    job = provisioned.run("libs.migrate", "migrate")
    output, _ = await asyncio.to_thread(job.communicate, timeout=120)
    assert job.returncode == 0, output.decode()
    assert "access: " in output.decode()
    return provisioned


@pytest.fixture(scope="module")
async def access(migrated: Deployment) -> AsyncIterator[subprocess.Popen[bytes]]:
    process = migrated.run("services.access", "access")
    try:
        yield process
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


def _client_url(deployment: Deployment, kind: str) -> str:
    """What the operator hands a practice software: its kind's user on the public port."""
    password = deployment.env[f"BUS_PASSWORD_{kind.upper().replace('-', '_')}"]
    return f"amqp://{kind}:{password}@127.0.0.1:{deployment.rabbit.port}/"


async def test_the_provisioning_job_runs_twice_with_the_same_result(
    provisioned: Deployment,
) -> None:
    again = provisioned.run("libs.provision", "provision", "apply")
    output, _ = await asyncio.to_thread(again.communicate, timeout=120)
    assert again.returncode == 0, output.decode()


async def test_a_service_started_with_its_container_environment_serves_a_client(
    provisioned: Deployment, access: subprocess.Popen[bytes]
) -> None:
    rpc = RpcClient(_client_url(provisioned, "practice-software"), name="deploy-test")
    await rpc.connect()
    try:
        await wait_ready(Client(rpc), ["access.commands"], timeout=60)
    finally:
        await rpc.close()
    assert access.poll() is None


async def test_a_service_is_its_own_database_role_and_cannot_read_another_schema(
    provisioned: Deployment, access: subprocess.Popen[bytes]
) -> None:
    conn = await asyncpg.connect(provisioned.container("access")["DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT current_user") == "dmp_access"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = 'dmp_access'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM identity.holders LIMIT 1")
    finally:
        await conn.close()


async def test_a_wrong_database_password_is_refused(provisioned: Deployment) -> None:
    url = provisioned.container("access")["DATABASE_URL"]
    wrong = url.replace(provisioned.env["DB_PASSWORD_ACCESS"], "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_a_client_of_the_deployment_can_neither_publish_events_nor_consume(
    provisioned: Deployment, access: subprocess.Popen[bytes]
) -> None:
    url = _client_url(provisioned, "patient-app")
    with pytest.raises(ChannelAccessRefused):
        await publish_as(url, topology.EVENTS_EXCHANGE, AccessLogged.routing_key())
    with pytest.raises(ChannelAccessRefused):
        await consume_as(url, "access.commands")


async def test_a_service_cannot_publish_another_services_events(
    provisioned: Deployment,
) -> None:
    url = provisioned.container("dossier")["AMQP_URL"]
    with pytest.raises(ChannelAccessRefused):
        await publish_as(url, topology.EVENTS_EXCHANGE, AccessLogged.routing_key())


async def test_no_party_is_a_broker_administrator_nor_knows_the_administrators_passwords(
    provisioned: Deployment,
) -> None:
    listed = provisioned.rabbit.ctl("-q", "list_users")
    tags = dict(line.split("\t", 1) for line in listed.strip().splitlines()[1:])
    tags.pop("guest", None)  # the private node's own default user
    assert tags.pop("dmp") == "[administrator]"
    assert tags == {party: "[]" for party in authority.parties()}
    for service in provision.SERVICES:
        container = str(provisioned.container(service))
        assert provisioned.env["RABBITMQ_PASSWORD"] not in container
        assert provisioned.env["POSTGRES_PASSWORD"] not in container


async def test_the_broker_holds_the_committed_definitions_once_provisioned(
    provisioned: Deployment,
) -> None:
    """deploy/rabbitmq/definitions.json (what the broker loads at boot) is what provisioning
    loads: every exchange, queue, binding, policy and permission of the file is there."""
    exported = json.loads(provisioned.rabbit.ctl("-q", "export_definitions", "-"))
    committed = json.loads(DEFINITIONS.read_text())

    def keyed(items: list[dict[str, Any]], *keys: str) -> set[tuple[Any, ...]]:
        return {tuple(json.dumps(item.get(k), sort_keys=True) for k in keys) for item in items}

    for kind, keys in {
        "exchanges": ("name", "vhost", "type", "durable", "arguments"),
        "queues": ("name", "vhost", "durable", "arguments"),
        "bindings": ("source", "vhost", "destination", "routing_key"),
        "policies": ("name", "vhost", "pattern", "definition"),
        "permissions": ("user", "vhost", "configure", "write", "read"),
        "topic_permissions": ("user", "vhost", "exchange", "write", "read"),
    }.items():
        assert keyed(committed[kind], *keys) <= keyed(exported[kind], *keys), kind
