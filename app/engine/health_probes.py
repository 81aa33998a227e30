"""The health checks nobody meets on the upload path until too late, run on a schedule and on
demand: the sign-in and when it lapses, whether Frame.io answers, the clock, free disk space
for the queue and the logs, and any checks other parts add (the Discord webhook).

Each probe reports through ``HealthMonitor.set`` with a message a person reads, so a green
check also says something useful ("Signed in as …; renewed automatically").
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from app.auth.token_provider import TokenProvider
from app.auth.tokens import TokenSet
from app.core.errors import PostFlowError
from app.core.events import AuthState
from app.engine.health_monitor import HealthMonitor
from app.frameio.client import FrameioClient

log = logging.getLogger(__name__)
CLOCK_TOLERANCE = 300.0  # seconds: presigned storage URLs and sign-in refuse a clock further off
MB = 1_000_000
Probe = Callable[[], Awaitable[None]]


def clock_problem(local: float, server: float | None) -> str | None:
    if server is None:
        return None
    skew = local - server
    if abs(skew) <= CLOCK_TOLERANCE:
        return None
    minutes = round(abs(skew) / 60)
    way = "ahead of" if skew > 0 else "behind"
    return (
        f"This computer's clock is {minutes} minutes {way} Frame.io's. Uploads and sign-in fail when "
        "the clock is off by more than a few minutes."
    )


def disk_space_problem(paths: dict[str, Path], min_free_mb: int) -> str | None:
    """Blocking (a thread): the first place PostFlow writes whose disk is nearly full."""
    for what, path in paths.items():
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # not created yet: the disk it will be on
        try:
            free = shutil.disk_usage(probe).free
        except OSError as exc:
            return f"The disk holding PostFlow's {what} ({path}) cannot be read: {exc.strerror or exc}"
        if free < min_free_mb * MB:
            return (
                f"Only {free // MB} MB free on the disk holding PostFlow's {what} ({path}): below the "
                f"{min_free_mb} MB it keeps free for its queue and logs."
            )
    return None


def signin_words(provider: TokenProvider, now: float) -> tuple[str | None, str]:
    """(problem or None, what to say when fine)."""
    signed_in = provider.state is not AuthState.SIGNED_OUT
    return tokens_words(provider.tokens if signed_in else None, now)


def tokens_words(tokens: TokenSet | None, now: float) -> tuple[str | None, str]:
    if tokens is None:
        return "Signed out: uploads wait (nothing is lost) until you sign in again.", ""
    who = tokens.user_email or tokens.user_name or "your Adobe account"
    if tokens.user_name and tokens.user_email:
        who = f"{tokens.user_name} <{tokens.user_email}>"
    if tokens.account_id:
        who += f" (account {tokens.account_id})"
    until = datetime.fromtimestamp(tokens.expires_at).strftime("%Y-%m-%d %H:%M")
    if tokens.refresh_token:
        return None, f"Signed in as {who}; the sign-in renews itself (current token valid until {until})."
    if tokens.expires_at <= now:
        return f"The sign-in of {who} expired at {until}: sign in again to go on uploading.", ""
    return None, f"Signed in as {who} until {until}; then PostFlow asks you to sign in again."


class HealthProbes:
    def __init__(
        self,
        monitor: HealthMonitor,
        frameio: FrameioClient,
        provider: TokenProvider,
        disk_paths: dict[str, Path],
        min_free_mb: int,
    ) -> None:
        self._monitor = monitor
        self._frameio = frameio
        self._provider = provider
        self._disk_paths = disk_paths
        self.min_free_mb = min_free_mb
        self._extra: dict[str, Probe] = {}
        self._lock = asyncio.Lock()

    def add(self, name: str, probe: Probe) -> None:
        """Another check run with these (``probe`` reports through the monitor itself)."""
        self._extra[name] = probe

    def remove(self, name: str) -> None:
        self._extra.pop(name, None)

    async def run(self) -> None:
        async with self._lock:  # the schedule and "Check now" never probe twice at once
            problem, fine = signin_words(self._provider, time.time())
            self._monitor.set("signin", problem, fine)
            await self._network_and_clock()
            space = await asyncio.to_thread(disk_space_problem, self._disk_paths, self.min_free_mb)
            self._monitor.set("disk_space", space, "Enough free space for the queue and the logs.")
            for name, probe in list(self._extra.items()):
                try:
                    await probe()
                except Exception:  # one broken check must not hide the others
                    log.exception("health check %s failed", name)

    async def _network_and_clock(self) -> None:
        try:
            server = await self._frameio.ping()
        except PostFlowError:
            return  # the client reported "network" itself; the clock cannot be compared
        self._monitor.set("network", None, "Frame.io answers.")
        self._monitor.set("clock", clock_problem(time.time(), server), "The clock agrees with Frame.io's.")
