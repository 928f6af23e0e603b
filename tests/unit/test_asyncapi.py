"""The AsyncAPI document: generated from the contracts, committed, valid for the AsyncAPI
project's own parser, and complete."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from libs.contracts.commands import Ping
from scripts import asyncapi

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.json"
VALIDATOR = ROOT / "tools" / "asyncapi" / "validate.mjs"


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.read_text() == asyncapi.render(), (
        "docs/asyncapi.json differs from the contracts: run `make asyncapi` and commit it"
    )


def test_the_asyncapi_parser_finds_the_document_valid_without_a_warning() -> None:
    node = shutil.which("node")
    if node is None or not (VALIDATOR.parent / "node_modules").is_dir():
        pytest.fail("the AsyncAPI parser is not installed: `make tools` (Node.js and npm)")
    result = subprocess.run(
        [node, str(VALIDATOR), str(COMMITTED), "--strict"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_contract_is_served_by_one_service_and_documented() -> None:
    served, _ = asyncapi.registered()
    contracts = [c for c in asyncapi.commands() if c is not Ping]
    assert sorted(c.__name__ for c in served) == sorted(c.__name__ for c in contracts)
    operations = json.loads(COMMITTED.read_text())["operations"]
    for contract in contracts:
        operation = operations[contract.NAME]
        assert operation["channel"]["$ref"] == f"#/channels/{contract.QUEUE.replace('.', '_')}"


def test_no_two_commands_share_a_name_and_version() -> None:
    keys = [(c.NAME, c.VERSION) for c in asyncapi.commands()]
    assert len(keys) == len(set(keys))


def test_every_event_consumed_by_a_service_is_documented_with_its_routing_key() -> None:
    _, consumers = asyncapi.registered()
    channels = json.loads(COMMITTED.read_text())["channels"]
    addresses = {channel["address"] for channel in channels.values()}
    for events in consumers.values():
        for event in events:
            assert event.routing_key() in addresses
