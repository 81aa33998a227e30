"""A resource made in a thread while its caller is cancelled is released, never leaked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.core.unabandoned import made_or_released


async def test_cancelled_while_making_the_result_is_released_once_it_exists() -> None:
    go = threading.Event()
    released: list[str] = []

    def make() -> str:
        go.wait(5)
        return "handle"

    task = asyncio.ensure_future(made_or_released(asyncio.to_thread(make), released.append))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert released == []  # not made yet
    go.set()
    for _ in range(100):
        if released:
            break
        await asyncio.sleep(0.01)
    assert released == ["handle"]


async def test_made_in_time_it_is_the_callers_and_nothing_is_released() -> None:
    released: list[str] = []
    assert await made_or_released(asyncio.to_thread(lambda: "handle"), released.append) == "handle"
    assert released == []
