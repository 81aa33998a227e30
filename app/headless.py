"""``postflow run --headless``: PostFlow with console logging until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from app.composition import running_app
from app.core.jobs import WatchRoot
from app.core.settings import Settings

log = logging.getLogger(__name__)


async def run_headless(settings: Settings, roots: tuple[WatchRoot, ...]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running_app(settings, roots):
        log.info("PostFlow is running headless; stop with Ctrl+C")
        await stop.wait()
        log.info("stopping")
    return 0
