"""``postflow run --headless``: the engine with console logging until SIGINT/SIGTERM.

In sandbox mode with no sandbox URL, a sandbox runs inside the process (state kept in the
data folder) and the demo user is signed in through the real OAuth flow, so a new user sees the
whole product work with no account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from typing import Any

import httpx

from app.auth.service import AuthService
from app.core.events import EventBus
from app.core.jobs import WatchRoot
from app.core.roots import check_overlaps
from app.core.settings import Settings
from app.engine.instance_lock import InstanceLock
from app.engine.service import EngineService

log = logging.getLogger(__name__)


async def _demo_sign_in(auth: AuthService) -> None:
    flow = auth.new_flow("http://127.0.0.1:9/callback")
    async with httpx.AsyncClient() as http:
        answer = await http.get(flow.authorize_url)
    await auth.finish(flow, answer.headers["location"])


async def run_headless(settings: Settings, roots: tuple[WatchRoot, ...]) -> int:
    check_overlaps(roots or settings.watch_roots)  # a plain error before anything starts
    bus = EventBus()
    holder = EngineService.lock_holder(settings)
    holder.acquire()  # a second instance is refused before it touches anything (the demo sandbox too)
    try:
        return await _run_locked(settings, roots, bus, holder)
    finally:
        holder.release()


async def _run_locked(
    settings: Settings, roots: tuple[WatchRoot, ...], bus: EventBus, lock: InstanceLock
) -> int:
    sandbox: Any = None
    if settings.sandbox and not settings.sandbox_url:
        from app.sandbox.config import SandboxConfig
        from app.sandbox.server import SandboxServer

        # A stable address (saved part URLs stay valid across restarts) and no copy of the bytes
        # (a demo must not fill the disk with a second copy of every render).
        config = SandboxConfig(
            state_dir=settings.paths.data_dir / "sandbox", reuse_port=True, keep_bytes=False
        )
        sandbox = SandboxServer(config)
        settings = replace(settings, sandbox_url=await sandbox.start())
        log.info("demo mode: built-in sandbox at %s", settings.sandbox_url)
    store = None
    if sandbox is not None:  # demo tokens open nothing real: memory, so any machine can run it
        from app.auth.memory_keyring import MemoryKeyring
        from app.auth.service import keychain_service
        from app.auth.token_store import TokenStore

        store = TokenStore(keychain_service(settings), MemoryKeyring())
    auth = AuthService(settings, bus, store)
    try:
        engine = EngineService(settings, auth, bus, roots or settings.watch_roots, lock=lock)
    except BaseException:
        await auth.aclose()
        if sandbox is not None:
            await sandbox.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await auth.provider.load()
        if auth.provider.tokens is None:
            if sandbox is not None:
                await _demo_sign_in(auth)
            else:
                log.warning("not signed in: run `postflow login`; uploads start once you are signed in")
        if not (roots or settings.watch_roots):
            log.warning(
                "no watched folders: use --watch DIR --project NAME or [[watch.roots]] in config.toml"
            )
        await engine.start()
        log.info("PostFlow is running headless; stop with Ctrl+C")
        await stop.wait()
        log.info("stopping")
    finally:
        await engine.stop()
        await auth.aclose()
        if sandbox is not None:
            await sandbox.stop()
    return 0
