"""The tray app's whole UI on a real engine, signed in against a real sandbox (loopback).

An async context manager, not a fixture: everything must start and stop inside the test's
own run of the qasync loop. (pytest-asyncio runs a fixture's set-up in a run of its own;
engine tasks created there would then be stepped by Qt while no asyncio loop is running.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests_auth_helpers import sandbox_settings, signed_in_service

from app.composition import running_app
from app.core.roots import make_root
from app.gui.log_view import QtLogHandler
from app.gui.tray_app import TrayApp


@asynccontextmanager
async def tray_app(
    sandbox: Any, watch_dir: Path, *, first_run: bool = False, **env: str
) -> AsyncIterator[TrayApp]:
    """Watching ``watch_dir`` into "Demo Project"."""
    signed_in = await signed_in_service(sandbox)  # tokens into the test's keychain
    await signed_in.aclose()
    settings = sandbox_settings(
        sandbox,
        POSTFLOW_STABLE_SECONDS="0.2",
        POSTFLOW_SCAN_INTERVAL="0.2",
        POSTFLOW_LISTING_SETTLE="0.3",
        **env,
    )
    settings = replace(settings, watch_roots=(make_root(str(watch_dir), "Demo Project"),))
    async with running_app(settings) as session:
        app = TrayApp(session, QtLogHandler(), first_run=first_run)
        try:
            yield app
        finally:
            await app.close()
