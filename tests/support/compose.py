"""deploy/compose.yaml read as Docker Compose would (no Docker needed): each container's
environment with `${VAR}` and `${VAR:-default}` filled from a `.env`."""

from __future__ import annotations

import re
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
