"""Pull mode's moving parts for the engine: the range server and the tunnel, run only while a
watch folder uses pull (or auto) mode, and their state as the ``tunnel`` health check.

Nothing listens and no tunnel is open while every folder pushes: the door exists only while
it is wanted. In sandbox mode the tunnel is the stand-in cloudflared (``app.sandbox.cloudflared``),
so the demo shows pull mode working with no account and no internet.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app.core.jobs import WatchRoot
from app.pull.range_server import RangeServer
from app.pull.tunnel import TunnelManager, TunnelState, TunnelStatus, TunnelUnavailable, find_cloudflared

log = logging.getLogger(__name__)
PULL_MODES = ("pull", "auto")
TUNNEL = "tunnel"  # health component
HealthSet = Callable[[str, str | None, str | None, str | None], None]  # component, problem, ok text, action


def standin_command() -> list[str]:
    if getattr(sys, "frozen", False):  # the frozen app runs the stand-in itself
        return [sys.executable, "--cloudflared-standin"]
    return [sys.executable, "-m", "app.sandbox.cloudflared"]


def cloudflared_command(configured: str, sandbox: bool) -> list[str] | None:
    """The real cloudflared when one is found (or configured); in sandbox mode the stand-in."""
    if sandbox and not configured:
        return standin_command()
    found = find_cloudflared(configured)
    return [found] if found else None


class PullService:
    def __init__(
        self,
        *,
        state_dir: Path,
        command: Sequence[str] | None,
        health: HealthSet,
        ready_timeout: float = 30.0,
        max_in_flight: int = 64,
    ) -> None:
        self._state_dir = state_dir
        self._command = list(command) if command else None
        self._health = health
        self.ready_timeout = ready_timeout
        self._max_in_flight = max_in_flight
        self._server: RangeServer | None = None
        self._tunnel: TunnelManager | None = None
        self._lock = asyncio.Lock()
        self._wanted = False
        self.on_status: Callable[[TunnelStatus], None] = lambda status: None

    # ---- lifecycle ----
    @property
    def running(self) -> bool:
        return self._tunnel is not None

    async def follow_roots(self, roots: Iterable[WatchRoot]) -> None:
        """Run while some folder wants pull mode, stop when none does."""
        wanted = any(r.upload_mode in PULL_MODES for r in roots)
        if wanted:
            await self.start()
        elif self.running:
            await self.stop()
            self._health(TUNNEL, None, "Off: every watch folder uses push.", None)

    async def start(self) -> None:
        async with self._lock:
            if self._tunnel is not None:
                return
            self._server = RangeServer(max_in_flight=self._max_in_flight)
            port = await self._server.start()
            self._tunnel = TunnelManager(origin_port=port, state_dir=self._state_dir, command=self._command,
                                         on_status=self._status_changed)  # fmt: skip
            self._tunnel.ready_budget = self.ready_timeout
            self._tunnel.start()
            log.info("pull mode: range server on 127.0.0.1:%d, starting the tunnel", port)

    async def stop(self) -> None:
        async with self._lock:
            tunnel, self._tunnel = self._tunnel, None
            server, self._server = self._server, None
            if tunnel is not None:
                await tunnel.stop()
            if server is not None:
                await server.stop()

    # ---- what the uploader asks ----
    def server(self) -> RangeServer:
        if self._server is None:
            raise TunnelUnavailable("Pull mode is not running (no watch folder uses it).")
        return self._server

    def status(self) -> TunnelStatus:
        return self._tunnel.status if self._tunnel is not None else TunnelStatus(TunnelState.OFF)

    def ready_now(self) -> bool:
        return self.status().state is TunnelState.READY

    async def ready(self) -> TunnelStatus:
        """The tunnel once ready; ``TunnelUnavailable`` (retryable) with the reason otherwise."""
        await self.start()
        assert self._tunnel is not None
        return await self._tunnel.wait_ready(self.ready_timeout)

    def _status_changed(self, status: TunnelStatus) -> None:
        if status.state is TunnelState.READY:
            self._health(TUNNEL, None, f"Up at {status.url}", None)
        elif status.state is TunnelState.FAILED:
            self._health(TUNNEL, status.message, None, status.action)
        elif status.state is TunnelState.STARTING and status.generation == 0:
            self._health(TUNNEL, None, "Starting…", None)
        self.on_status(status)
