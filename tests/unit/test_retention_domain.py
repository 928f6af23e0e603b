"""retention's periods and due times, as pure functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from libs import periods
from libs.contracts.events import SpaceOpeningDue
from services.retention import domain

T0 = datetime(2024, 3, 15, 9, 30, tzinfo=UTC)


def test_space_opens_six_weeks_after_announcement__SPC_01() -> None:
    assert domain.opening_due_at(T0) == datetime(2024, 4, 26, 9, 30, tzinfo=UTC)
    assert domain.opening_due_at(T0) - T0 == timedelta(days=42)


def test_opening_is_not_due_a_moment_before_six_weeks__RET_04() -> None:
    due = domain.opening_due_at(T0)
    assert not domain.is_due(due, T0 + timedelta(weeks=6) - timedelta(seconds=1))
    assert domain.is_due(due, T0 + timedelta(weeks=6))
    assert domain.is_due(due, T0 + timedelta(weeks=7))


def test_purge_is_due_ten_years_after_closure__RET_01() -> None:
    assert domain.purge_due_at(T0) == datetime(2034, 3, 15, 9, 30, tzinfo=UTC)
    closed = datetime(2025, 1, 1, tzinfo=UTC)
    assert not domain.is_due(
        domain.purge_due_at(closed), datetime(2034, 12, 31, 23, 59, tzinfo=UTC)
    )
    assert domain.is_due(domain.purge_due_at(closed), datetime(2035, 1, 1, tzinfo=UTC))


def test_ten_years_are_calendar_years_close_to_365_25_days__RET_01() -> None:
    for start in (T0, datetime(2023, 7, 1, tzinfo=UTC), datetime(2020, 2, 28, tzinfo=UTC)):
        span = domain.purge_due_at(start) - start
        assert abs(span - timedelta(days=3652.5)) <= timedelta(days=1)


def test_closure_on_29_february_is_purged_on_28_february__RET_01() -> None:
    closed = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert domain.purge_due_at(closed) == datetime(2034, 2, 28, 12, 0, tzinfo=UTC)
    # Ten years on, a leap year again: the same date.
    assert periods.add_calendar_years(datetime(2020, 2, 29, tzinfo=UTC), 4) == datetime(
        2024, 2, 29, tzinfo=UTC
    )


def test_purge_keeps_the_closure_time_zone__RET_01() -> None:
    paris = timezone(timedelta(hours=1))
    closed = datetime(2024, 11, 5, 23, 30, tzinfo=paris)
    assert domain.purge_due_at(closed) == datetime(2034, 11, 5, 23, 30, tzinfo=paris)


def test_each_deadline_kind_has_its_due_event__RET_04() -> None:
    deadline_id = uuid.uuid4()
    opening = domain.due_event("space_opening", ins="x", deadline_id=deadline_id, due_at=T0)
    assert opening == SpaceOpeningDue(ins="x", deadline_id=deadline_id, due_at=T0)
    with pytest.raises(ValueError):
        domain.due_event("nonsense", ins="x", deadline_id=deadline_id, due_at=T0)


def test_deadline_status() -> None:
    assert domain.status_of(None, None) == "pending"
    assert domain.status_of(T0, None) == "fired"
    assert domain.status_of(None, T0) == "cancelled"


def test_an_opening_after_closure_is_a_reactivation_and_cancels_the_purge__RET_01() -> None:
    assert "space_purge" in domain.CANCELLED_BY_OPENING
    assert "space_opening" in domain.CANCELLED_BY_OPENING
    assert domain.CANCELLED_BY_CLOSURE == ("space_opening",)


def test_the_proof_names_the_ins_by_a_keyed_hash_only__RET_01() -> None:
    key, other = b"k" * 32, b"o" * 32
    named = domain.ins_key(key, "180017512345678")
    assert named == domain.ins_key(key, "180017512345678")
    assert "180017512345678" not in named and len(named) == 64
    assert named != domain.ins_key(other, "180017512345678")
    assert named != domain.ins_key(key, "180017512345679")


def test_a_purge_waits_for_every_service_holding_data__RET_01() -> None:
    assert domain.PURGE_PARTICIPANTS == ("access", "dossier", "identity", "messaging", "notifier")
    assert domain.still_to_answer(["identity", "retention"]) == [
        "access",
        "dossier",
        "messaging",
        "notifier",
    ]
    assert not domain.purge_complete(["access", "dossier", "identity", "messaging"])
    assert domain.purge_complete(domain.PURGE_PARTICIPANTS)


def test_an_express_deletion_is_due_a_month_on_within_the_three_months__RET_02() -> None:
    for asked in (datetime(2027, 1, 31, 8, 0, tzinfo=UTC), datetime(2027, 11, 30, tzinfo=UTC)):
        due = periods.deletion_due_at(asked)
        assert asked < due <= asked + timedelta(days=31)
