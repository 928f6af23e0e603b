"""Retention rules, without I/O: the periods and when each deadline falls due.

- SPC_01 / RET_04: a space opens six weeks after it was announced (unless the person objected).
- RET_01: from closure, the space is archived for ten years, then purged: every service holding
  the holder's data deletes it and answers with counts; the proof of deletion names the INS by a
  keyed hash only.
- SPC_04 / SPC_05: a proxy's appointment ends by itself at its end (a minor's eighteenth
  birthday, a protection measure's end date).
- DOC_07: two weeks after a held-back deposit the holder is told; a month after it the document
  is released (both cancelled by the announcement consultation).
- ACC_14 / RET_04: a time-limited authorization ends by itself at its end (access no longer
  honours it from then); the deadline makes that end visible to the holder.
- RET_03: the occupational health part is deleted forty years after the last occupational health
  visit (each deposit of that part is one), or ten years after the holder's death.

The ten years of RET_01 are counted by `libs.periods` (calendar years), as identity counts them
for reactivation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from uuid import UUID

from libs.contracts.envelope import Event
from libs.contracts.events import (
    PURGE_ANSWERS,
    AuthorizationEndDue,
    HeldBackNoticeDue,
    HeldBackReleaseDue,
    OccupationalPartDue,
    ProxyEndDue,
    SpaceOpeningDue,
)
from libs.periods import add_calendar_month, add_calendar_years, archive_ends_at

DeadlineKind = Literal[
    "space_opening",
    "space_purge",
    "proxy_end",
    "held_back_notice",
    "held_back_release",
    "occupational_part",
    "authorization_end",
]
DeadlineStatus = Literal["pending", "fired", "cancelled"]

SPACE_OPENING: DeadlineKind = "space_opening"
SPACE_PURGE: DeadlineKind = "space_purge"
PROXY_END: DeadlineKind = "proxy_end"
HELD_BACK_NOTICE: DeadlineKind = "held_back_notice"
HELD_BACK_RELEASE: DeadlineKind = "held_back_release"
HELD_BACK: tuple[DeadlineKind, ...] = (HELD_BACK_NOTICE, HELD_BACK_RELEASE)
OCCUPATIONAL_PART: DeadlineKind = "occupational_part"
# ACC_14: a time-limited authorization's end; its subject is `<grantee kind>:<grantee id>`.
AUTHORIZATION_END: DeadlineKind = "authorization_end"
# RET_03 (decree 2022-1434): the occupational health file is kept forty years after the last
# visit, ten years after death.
OCCUPATIONAL_YEARS_AFTER_VISIT = 40
OCCUPATIONAL_YEARS_AFTER_DEATH = 10

# What a lifecycle event cancels, among the deadlines started before it. An opening ends the
# wait for it and, after a closure, is a reactivation: the purge is off (RET_01, the holder may
# reactivate during the ten years). A closure ends any wait for an opening.
CANCELLED_BY_OPENING: tuple[DeadlineKind, ...] = ("space_opening", "space_purge")
CANCELLED_BY_CLOSURE: tuple[DeadlineKind, ...] = ("space_opening",)

# SPC_01: six weeks between the announcement and the opening.
OPENING_PERIOD = timedelta(weeks=6)
# DOC_07: two weeks from a held-back deposit to the notice.
HELD_BACK_NOTICE_PERIOD = timedelta(weeks=2)


def opening_due_at(announced_at: datetime) -> datetime:
    """SPC_01 / RET_04: when an announced space opens by itself."""
    return announced_at + OPENING_PERIOD


def purge_due_at(closed_at: datetime) -> datetime:
    """RET_01: when a closed space's archive is deleted."""
    return archive_ends_at(closed_at)


def held_back_notice_at(held_at: datetime) -> datetime:
    """DOC_07: when the holder is told a document waits for an announcement consultation."""
    return held_at + HELD_BACK_NOTICE_PERIOD


def held_back_release_at(held_at: datetime) -> datetime:
    """DOC_07: when a held-back document becomes accessible to the holder by itself."""
    return add_calendar_month(held_at)


def authorization_subject(grantee_kind: str, grantee_id: str) -> str:
    return f"{grantee_kind}:{grantee_id}"


def occupational_due_at(last_visit: datetime) -> datetime:
    """RET_03: when the occupational health part goes, counted from its last visit."""
    return add_calendar_years(last_visit, OCCUPATIONAL_YEARS_AFTER_VISIT)


def occupational_due_after_death(died_on: date) -> datetime:
    """RET_03: after death, ten years from the day of death (its start, UTC)."""
    day = datetime.combine(died_on, time(0, 0), tzinfo=UTC)
    return add_calendar_years(day, OCCUPATIONAL_YEARS_AFTER_DEATH)


def is_due(due_at: datetime, now: datetime) -> bool:
    return due_at <= now


def status_of(fired_at: datetime | None, cancelled_at: datetime | None) -> DeadlineStatus:
    if fired_at is not None:
        return "fired"
    if cancelled_at is not None:
        return "cancelled"
    return "pending"


def due_event(
    kind: str, *, ins: str, deadline_id: UUID, due_at: datetime, subject: str = ""
) -> Event:
    """The event that announces a deadline has come (RET_04: the time rules act by themselves).
    The purge's is a request to the services that hold the holder's data (`purge_request`)."""
    if kind == SPACE_OPENING:
        return SpaceOpeningDue(ins=ins, deadline_id=deadline_id, due_at=due_at)
    if kind == PROXY_END:
        return ProxyEndDue(ins=ins, proxy_id=UUID(subject), deadline_id=deadline_id, due_at=due_at)
    if kind == HELD_BACK_NOTICE:
        return HeldBackNoticeDue(
            ins=ins, document_id=UUID(subject), deadline_id=deadline_id, due_at=due_at
        )
    if kind == AUTHORIZATION_END:
        grantee_kind, grantee_id = subject.split(":", 1)
        return AuthorizationEndDue(
            ins=ins,
            grantee_kind=grantee_kind,
            grantee_id=grantee_id,
            deadline_id=deadline_id,
            due_at=due_at,
        )
    if kind == OCCUPATIONAL_PART:
        return OccupationalPartDue(ins=ins, deadline_id=deadline_id, due_at=due_at)
    if kind == HELD_BACK_RELEASE:
        return HeldBackReleaseDue(
            ins=ins, document_id=UUID(subject), deadline_id=deadline_id, due_at=due_at
        )
    raise ValueError(f"no event for deadline kind {kind!r}")


# --- the purge (RET_01) ---------------------------------------------------------------------

# Who holds a holder's data besides retention, each answering a purge with its own event.
PURGE_PARTICIPANTS: tuple[str, ...] = tuple(sorted(PURGE_ANSWERS))
# Retention's own part, recorded with the others' in the proof.
RETENTION = "retention"


def ins_key(key: bytes, ins: str) -> str:
    """How a proof of deletion names the INS: HMAC-SHA256 under retention's key. Ops holding
    an INS find its proof; the proof alone names no one."""
    return hmac.new(key, ins.encode(), hashlib.sha256).hexdigest()


def still_to_answer(answered: Iterable[str]) -> list[str]:
    """The services a purge still waits for."""
    done = set(answered)
    return [service for service in PURGE_PARTICIPANTS if service not in done]


def purge_complete(answered: Iterable[str]) -> bool:
    return not still_to_answer(answered)
