"""Awaiting a resource being made elsewhere (a file opened in a thread, a child process started)
so that a cancellation meanwhile never leaks it.

``asyncio.to_thread`` cannot stop its thread: cancelled, the caller moves on while the thread
still opens the file, publishes the link or starts the process. Whatever it makes is then handed
to ``release`` as soon as it exists, instead of being left open for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def made_or_released(making: Awaitable[T], release: Callable[[T], object]) -> T:
    future = asyncio.ensure_future(making)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:

        def release_late(done: asyncio.Future[T]) -> None:
            if not done.cancelled() and done.exception() is None:
                release(done.result())

        future.add_done_callback(release_late)
        raise
