"""A loop waiting on an event must stop when cancelled, even at the instant the event is set
(Python 3.11's ``asyncio.wait_for`` loses that cancellation: an engine that never stops)."""

from __future__ import annotations

import asyncio

import pytest

from app.core.event_wait import wait_set


async def test_a_cancel_at_the_moment_the_event_is_set_is_not_lost() -> None:
    event = asyncio.Event()
    rounds = 0

    async def loop_forever() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            await wait_set(event, 30)
            event.clear()

    task = asyncio.create_task(loop_forever())
    await asyncio.sleep(0)  # waiting now
    event.set()  # the wait completes…
    task.cancel()  # …and the cancel arrives in the same turn
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled() and rounds == 1


async def test_it_says_whether_the_event_came_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 5) is True
    assert await wait_set(event, -1) is True  # already set: no wait at all
