"""`make run`'s demo, played against the six services as separate processes (as deployed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from libs.bus.rpc import RpcClient
from libs.client import Client
from scripts import demo, processes
from tests.support import infra
from tests.support.smtp import SmtpServer
from tests.support.system import Keys

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def six_processes(
    settings_values: dict[str, Any],
    own_database_url: str,
    own_amqp_url: str,
    keys: Keys,
    smtp: SmtpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Client]:
    values = {
        **settings_values,
        "database_url": own_database_url,
        "amqp_url": own_amqp_url,
        "sweep_interval_seconds": 0.5,
    }
    logs = Path(tmp_path_factory.mktemp("logs"))
    running = processes.start(lambda name: infra.service_values(values, name), logs)
    rpc = RpcClient(infra.client_url(own_amqp_url), name="tests.demo", timeout=15)
    await rpc.connect()
    try:
        client = Client(rpc)
        await processes.wait_ready(client)
        yield client
    finally:
        await rpc.close()
        processes.stop(running)
    assert all(p.returncode is not None for p in running.values())


@dataclass(frozen=True)
class Played:
    said: str
    result: dict[str, Any]


@pytest.fixture(scope="module")
async def played(
    six_processes: Client,
    smtp: SmtpServer,
    keys: Keys,
    own_database_url: str,
    own_amqp_url: str,
) -> Played:
    said: list[str] = []
    result = await demo.play(
        six_processes,
        smtp.mailbox,
        database_url=own_database_url,
        amqp_url=infra.party_url(own_amqp_url, "ops"),
        operator_id=keys.operator_id,
        operator_private=keys.operator_private,
        say=said.append,
    )
    return Played("\n".join(said), result)


async def test_demo_journey_runs_through_six_service_processes__NTF_01__ACC_18(
    played: Played,
) -> None:
    text = played.said
    assert "[invalid_nir_key]" in text
    assert "Refused: [access_denied] access denied by rule ACC_05" in text
    assert "A new deposit is refused: [space_closed]" in text
    assert "A new message is refused: [space_closed]" in text
    events = played.result["events"]
    for expected in ("SpaceOpened", "DocumentDeposited", "AccessDenied", "SpaceClosed"):
        assert expected in events
    assert events.count("HolderAlerted") == 4


async def test_the_command_line_client_acts_as_the_demos_actors(
    played: Played, own_amqp_url: str, tmp_path: Path
) -> None:
    """What the README shows a newcomer, once the demo has played (its actors, its closed
    space)."""
    (tmp_path / "actors.json").write_text(json.dumps(played.result["actors"]))
    (tmp_path / "environment.json").write_text(infra.bus_environment(own_amqp_url).to_json())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.cli", *args],
            env={**os.environ, "RUN_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    deadlines = cli("--as", "operator", "ListDeadlines", "ins=@sophie")
    assert deadlines.returncode == 0, deadlines.stderr
    kinds = {d["kind"] for d in json.loads(deadlines.stdout)["deadlines"]}
    assert "space_purge" in kinds
    refused = cli("--as", "martin", "ReadDossier", "ins=@sophie")
    assert refused.returncode == 1
    assert "[space_closed]" in refused.stderr and "rule RET_05" in refused.stderr
    ready = cli("--queue", "dossier.commands", "Ping")
    assert ready.returncode == 0 and json.loads(ready.stdout)["ready"] is True
    keys = cli("GetSigningKeys")
    assert keys.returncode == 0 and json.loads(keys.stdout)["keys"]
