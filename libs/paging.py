"""Listings in pages: a keyset cursor, and a cap on the bytes of one reply.

A reply travels as one AMQP message, and the broker refuses any message over its
`max_message_size` (128 MiB by default on 3.10), leaving the caller with a mere timeout. So a
listing stops adding items once the reply would pass a byte budget well under that limit, and
returns a cursor for the rest. The cursor is a position in the listing's order (newest first:
time, then insertion sequence), opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.errors import InvalidInput

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"v1:(-?[0-9]{1,20}):([0-9]{1,19})", re.ASCII)
MAX_CURSOR_CHARS = 80


@dataclass(frozen=True)
class Position:
    """The last item of a page: the next page starts strictly after it (older)."""

    at: datetime
    seq: int


def encode_cursor(at: datetime, seq: int) -> str:
    text = f"v1:{(at - _EPOCH) // _MICROSECOND}:{seq}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; InvalidInput for anything this module did not make."""
    refused = InvalidInput("cursor is not one this service gave: start again without a cursor")
    if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise refused
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise refused from None
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise refused
    try:
        at = _EPOCH + int(found[1]) * _MICROSECOND
    except OverflowError:
        raise refused from None
    return Position(at, int(found[2]))


def take_within(sizes: Sequence[int], page_size: int, budget: int) -> int:
    """How many of the candidate items (their reply sizes, in order) make the page.

    At most `page_size`; no more than fit in `budget` bytes together, except that a page always
    takes its first item (each item alone is bounded well under the budget by its own cap, so a
    listing always moves forward).
    """
    total = 0
    taken = 0
    for size in sizes[:page_size]:
        if taken and total + size > budget:
            break
        total += size
        taken += 1
    return taken
