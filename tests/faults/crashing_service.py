"""A service with a crash point, as `tests/support/probe_service.py` makes them:

    python -m tests.faults.crashing_service <service>

runs `services.<service>` exactly as `python -m services.<service>` does, except that when the
file named by FAULT_CRASH_FILE exists, the outbox relay dies (exit 9) after the broker confirmed
a batch and before marking it sent: the rows stay unsent and are published again by the next
relay (after their lease), so consumers receive those events twice.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from libs.outbox import OutboxRelay
from libs.runtime import serve

MARKER = "fault_crash_before_mark_sent"


def install() -> None:
    crash_file = os.environ.get("FAULT_CRASH_FILE")
    if not crash_file:
        return
    mark_sent = OutboxRelay.mark_sent

    async def die_before_marking(self: OutboxRelay, event_ids: list[Any]) -> None:
        if event_ids and os.path.exists(crash_file):  # noqa: ASYNC240 (a test's switch)
            os.unlink(crash_file)
            print(MARKER, len(event_ids), [str(e) for e in event_ids], flush=True)
            os._exit(9)
        await mark_sent(self, event_ids)

    OutboxRelay.mark_sent = die_before_marking  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    serve(importlib.import_module(f"services.{sys.argv[1]}.main").app)
