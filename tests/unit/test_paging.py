"""Pages of a listing without I/O: the cursor, and the byte budget of one reply."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from libs import paging
from libs.errors import InvalidInput


def test_a_cursor_names_its_position_exactly() -> None:
    at = datetime(2025, 3, 5, 9, 5, 7, 123456, tzinfo=UTC)
    cursor = paging.encode_cursor(at, 42)
    assert cursor.isascii() and len(cursor) <= paging.MAX_CURSOR_CHARS
    assert paging.decode_cursor(cursor) == paging.Position(at, 42)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        base64.urlsafe_b64encode(b"v1:12:x").decode(),
        base64.urlsafe_b64encode(b"v1:99999999999999999999:1").decode(),
        base64.urlsafe_b64encode("v1:１２:1".encode()).decode(),
        "é",
        "A" * 200,
    ],
)
def test_a_cursor_this_service_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        paging.decode_cursor(cursor)


def test_a_page_stops_at_its_size_or_its_byte_budget_whichever_first() -> None:
    assert paging.take_within([10, 10, 10], page_size=2, budget=100) == 2
    assert paging.take_within([40, 40, 40], page_size=10, budget=100) == 2
    assert paging.take_within([40, 60, 1], page_size=10, budget=100) == 2
    assert paging.take_within([], page_size=10, budget=100) == 0


def test_a_page_always_takes_its_first_item_so_a_listing_moves_forward() -> None:
    assert paging.take_within([500, 1], page_size=10, budget=100) == 1
