"""The periods several services count the same way (one place, so they never disagree).

**Decision** (RET_01): "ten years" are calendar years, as a lawyer reads the rule: the same date
and time ten years later, in UTC. A closure on 29 February ends on 28 February of the tenth year
when that year has no 29 February (the period never runs longer than ten years).
"""

from __future__ import annotations

from datetime import datetime

# RET_01: ten (calendar) years of archive between closure and purge; the holder may reactivate
# the space until then.
ARCHIVE_YEARS = 10


def add_calendar_years(moment: datetime, years: int) -> datetime:
    """The same date and time `years` later, in `moment`'s own time zone; 29 Feb -> 28 Feb."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year without one
        return moment.replace(year=moment.year + years, day=28)


def archive_ends_at(closed_at: datetime) -> datetime:
    """RET_01: when a closed space's archive ends (the purge; no reactivation from then)."""
    return add_calendar_years(closed_at, ARCHIVE_YEARS)


def deletion_due_at(requested_at: datetime) -> datetime:
    """RET_02: when the data of a holder who expressly asked for its deletion is purged.

    **Decision**: a calendar month after the request, well within the three months the law
    allows; until then the holder may change their mind by reactivating the space.
    """
    return add_calendar_month(requested_at)


def add_calendar_month(moment: datetime) -> datetime:
    """The same date and time a month later; the month's last day when it has no such day
    (31 January -> 28 or 29 February): the period never runs longer than a month (DOC_07)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")
