"""The six services as separate processes, as they run in production (one per service).

Used by `make run` and by the benchmark. Settings go through the environment, as in deployment.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from libs import provision
from libs.bus.rpc import RpcError
from libs.client import Client
from libs.contracts import commands as cmd

SERVICES = ("identity", "access", "dossier", "messaging", "notifier", "retention")
COMMAND_QUEUES = [f"{name}.commands" for name in SERVICES]


def _die_with_parent() -> None:
    # Linux: the services get SIGTERM if the runner dies, however it dies.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def environment(values: dict[str, Any]) -> dict[str, str]:
    """Settings as environment variables (pydantic-settings reads dicts as JSON)."""
    return {
        key.upper(): json.dumps(value) if isinstance(value, dict | list) else str(value)
        for key, value in values.items()
    }


# Each secret goes to the services that use it, and to no other.
SECRET_OWNERS = provision.SECRET_OWNERS


def service_environment(name: str, values: dict[str, Any]) -> dict[str, str]:
    """The environment of one service's process: its own settings and secrets, nobody else's.

    `values` already carry the service's own URLs (its broker user, its database role).
    """
    own = {k: v for k, v in values.items() if name in SECRET_OWNERS.get(k, (name,))}
    inherited = {k: v for k, v in os.environ.items() if k.lower() not in SECRET_OWNERS}
    return {**inherited, **environment(own)}


def start(
    values_for: Callable[[str], dict[str, Any]], log_dir: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """Start the six services; `values_for(name)` gives each its settings (see above)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name in SERVICES:
        env = service_environment(name, values_for(name))
        log = (log_dir / f"{name}.log").open("ab")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    return processes


def stop(processes: dict[str, subprocess.Popen[bytes]], timeout: float = 20) -> None:
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    for name, process in processes.items():
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            print(f"{name} did not stop in time and was killed", file=sys.stderr)


async def wait_ready(
    client: Client, queues: list[str] = COMMAND_QUEUES, timeout: float = 60
) -> None:
    """Until every service answers Ping with ready (consuming on all its queues)."""
    async with asyncio.timeout(timeout):
        for queue in queues:
            while True:
                try:
                    if (await client.send(cmd.Ping(), queue=queue, timeout=2)).ready:
                        break
                except RpcError:
                    pass
                await asyncio.sleep(0.3)
