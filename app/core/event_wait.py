"""Waiting for an ``asyncio.Event`` with a time limit, without ever losing a cancellation.

Python 3.11's ``asyncio.wait_for`` returns normally when it is cancelled at the moment its
inner wait completes (CPython gh-86296, fixed in 3.12): a loop around it then never sees the
cancel, and whoever awaits the cancelled task waits for ever (an engine that cannot stop).
``asyncio.timeout`` has no such window.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """True once the event is set, False when ``timeout`` seconds pass first."""
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await event.wait()
    except TimeoutError:
        return False
    return True
