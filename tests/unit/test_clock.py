"""The demo clock's durations, as the README uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.clock import parse_duration
from libs.periods import archive_ends_at


def test_ten_years_on_the_demo_clock_reach_a_ten_year_deadline_started_before__RET_01() -> None:
    # Three leap days in these ten years: 3653 days, half a day more than 10 x 365.25.
    closed_at = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    now = closed_at + timedelta(seconds=5)
    assert now + parse_duration("10y", now) >= archive_ends_at(closed_at)
    assert parse_duration("10y", now) == timedelta(days=3653)
    assert parse_duration("10y", datetime(2029, 3, 1, tzinfo=UTC)) == timedelta(days=3652)


def test_months_are_calendar_months_and_the_rest_fixed_lengths() -> None:
    jan31 = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    assert jan31 + parse_duration("1mo", jan31) == datetime(2027, 2, 28, 12, 0, tzinfo=UTC)
    assert parse_duration("3mo", datetime(2027, 1, 15, tzinfo=UTC)) == timedelta(days=31 + 28 + 31)
    assert parse_duration("6w") == timedelta(weeks=6)
    assert parse_duration("42d") == timedelta(days=42)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("90s") == timedelta(seconds=90)


@pytest.mark.parametrize("text", ["10", "y", "1.5y", "2 years", "-3d", "3M"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
