"""The notifier killed between a send and its commit (tests/faults/notifier_crash.py), on the
fault suite's private servers: each alert mailed at least once under one Message-ID, its SMS
exactly once (docs/notifier.md, "What a crash can do")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.notifier_crash import (
    assert_exactly_once_where_possible,
    kill_between_send_and_commit,
)

pytestmark = pytest.mark.faults


async def test_notifier_killed_between_send_and_commit_mails_at_least_once_sms_exactly_once__NTF_01(
    fresh_database: str, fresh_vhost: str, logs: Path
) -> None:
    outcome = await kill_between_send_and_commit(fresh_database, fresh_vhost, logs)
    assert_exactly_once_where_possible(outcome)
