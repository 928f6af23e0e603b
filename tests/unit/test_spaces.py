"""The space-status rule (libs/spaces.py), without I/O: which of the held change and an incoming
one wins, whatever order identity's lifecycle events arrive in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import permutations
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from libs.spaces import Change, supersedes

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def opened(hours: int) -> Change:
    return Change("open", at(hours))


def closed(hours: int) -> Change:
    return Change("closed", at(hours))


def delivered(changes: Iterable[Change]) -> list[Change | None]:
    """What the projection holds after each delivery, in the order given."""
    held: Change | None = None
    seen: list[Change | None] = []
    for change in changes:
        if supersedes(change, held):
            held = change
        seen.append(held)
    return seen


def final(changes: Iterable[Change]) -> Change | None:
    return delivered(changes)[-1]


def test_the_first_change_heard_of_a_space_is_recorded_whatever_it_is() -> None:
    assert supersedes(opened(0), None)
    assert supersedes(closed(0), None)


def test_a_closure_after_the_opening_closes_the_space__RET_05() -> None:
    assert delivered([opened(0), closed(1)]) == [opened(0), closed(1)]


def test_an_older_opening_delivered_after_the_closure_leaves_the_space_closed__ACC_17() -> None:
    assert delivered([closed(1), opened(0)]) == [closed(1), closed(1)]


def test_an_opening_later_than_the_closure_is_a_reactivation_in_any_order__RET_01() -> None:
    history = [opened(0), closed(1), opened(2)]
    for order in permutations(history):
        assert final(order) == opened(2), order


def test_open_close_reopen_close_ends_closed_in_every_order__RET_05() -> None:
    history = [opened(0), closed(1), opened(2), closed(3)]
    for order in permutations(history):
        assert final(order) == closed(3), order


def test_after_each_delivery_the_latest_change_delivered_so_far_is_held__RET_01() -> None:
    history = [opened(0), closed(1), opened(2), closed(3)]
    for order in permutations(history):
        expected = [max(order[: i + 1], key=lambda c: c.at) for i in range(len(order))]
        assert delivered(order) == expected, order


def test_at_the_same_instant_the_closure_wins_in_either_order__ACC_17() -> None:
    assert final([opened(1), closed(1)]) == closed(1)
    assert final([closed(1), opened(1)]) == closed(1)
    assert supersedes(closed(1), opened(1))
    assert not supersedes(opened(1), closed(1))


def test_the_same_change_heard_again_changes_nothing() -> None:
    for change in (opened(1), closed(1)):
        assert not supersedes(change, change)
    history = [opened(0), opened(0), closed(1), closed(1), opened(0), closed(1)]
    for order in set(permutations(history)):
        assert final(order) == closed(1), order


def test_a_later_change_to_the_same_status_is_kept_so_an_older_one_still_loses__RET_05() -> None:
    # Closed at 1 and at 3 means it was reopened in between: the reopening at 2, late, loses.
    assert supersedes(closed(3), closed(1))
    assert final([closed(1), closed(3), opened(2)]) == closed(3)
    assert final([opened(0), opened(2), closed(1)]) == opened(2)


def test_an_earlier_change_never_supersedes_a_later_one() -> None:
    for earlier, later in ((opened(0), closed(1)), (closed(0), opened(1)), (opened(0), opened(1))):
        assert not supersedes(earlier, later)
        assert supersedes(later, earlier)


changes = st.builds(
    Change,
    st.sampled_from(["open", "closed"]),
    st.integers(min_value=0, max_value=5).map(at),
)


@given(st.lists(changes, min_size=1, max_size=8), st.randoms())
def test_any_delivery_order_with_duplicates_ends_in_the_same_state__ACC_17(
    history: list[Change], random: Random
) -> None:
    shuffled = list(history)
    random.shuffle(shuffled)
    latest = max(history, key=lambda c: (c.at, c.status == "closed"))
    assert final(history) == final(shuffled) == latest
