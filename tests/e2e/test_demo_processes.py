"""`make run`'s demo, played against the six services as separate processes (as deployed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
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


async def test_demo_journey_runs_through_six_service_processes__NTF_01__ACC_18(
    six_processes: Client,
    smtp: SmtpServer,
    keys: Keys,
    own_database_url: str,
    own_amqp_url: str,
) -> None:
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
    text = "\n".join(said)
    assert "[invalid_nir_key]" in text
    assert "Refused: [access_denied] access denied by rule ACC_05" in text
    assert "A new deposit is refused: [space_closed]" in text
    assert "A new message is refused: [space_closed]" in text
    events = result["events"]
    for expected in ("SpaceOpened", "DocumentDeposited", "AccessDenied", "SpaceClosed"):
        assert expected in events
    assert events.count("HolderAlerted") == 4
