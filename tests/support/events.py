"""Events as their owners publish them, for tests and benchmarks that play a service's part."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from libs.contracts.events import AccessLogged


def access_logged(ins: str, **overrides: Any) -> AccessLogged:
    """A professional's read of the holder's dossier, granted (what access publishes)."""
    values: dict[str, Any] = {
        "trace_id": uuid.uuid4(),
        "decision_id": uuid.uuid4(),
        "ins": ins,
        "actor_kind": "professional",
        "actor_id": "10001234567",
        "actor_name": "Claire Martin",
        "actor_profession": "physician",
        "action": "read",
        "outcome": "granted",
        "rule": "ACC_05",
        "at": datetime.now(UTC),
    }
    return AccessLogged(**{**values, **overrides})
