"""A service works on a bounded number of request bytes at once (`libs.budget`)."""

from __future__ import annotations

import asyncio

import pytest

from libs.budget import ByteBudget


async def _hold(
    budget: ByteBudget, size: int, log: list[str], name: str, release: asyncio.Event
) -> None:
    async with budget.held(size):
        log.append(f"{name} in")
        await release.wait()
    log.append(f"{name} out")


async def test_a_large_request_waits_for_room_while_small_ones_pass_beside_it() -> None:
    budget = ByteBudget(10)
    log: list[str] = []
    first, second, small = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(_hold(budget, 7, log, "big1", first))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_hold(budget, 7, log, "big2", second)))
    tasks.append(asyncio.create_task(_hold(budget, 2, log, "small", small)))
    await asyncio.sleep(0.01)
    assert log == ["big1 in", "small in"] and budget.in_use == 9
    first.set()
    await asyncio.sleep(0.01)
    assert log == ["big1 in", "small in", "big1 out", "big2 in"]
    small.set()
    second.set()
    await asyncio.gather(*tasks)
    assert budget.in_use == 0


async def test_a_request_larger_than_the_whole_budget_runs_alone() -> None:
    budget = ByteBudget(10)
    log: list[str] = []
    huge, small = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(_hold(budget, 50, log, "huge", huge))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_hold(budget, 1, log, "small", small)))
    await asyncio.sleep(0.01)
    assert log == ["huge in"]
    huge.set()
    small.set()
    await asyncio.gather(*tasks)
    assert log == ["huge in", "huge out", "small in", "small out"] and budget.in_use == 0


async def test_bytes_are_given_back_when_the_work_fails_or_is_cancelled() -> None:
    budget = ByteBudget(10)
    with pytest.raises(RuntimeError):
        async with budget.held(8):
            raise RuntimeError("the handler failed")
    waiter = asyncio.create_task(_hold(budget, 8, [], "w", asyncio.Event()))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.in_use == 0
