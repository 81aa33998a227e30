"""Pull mode's moving parts for the engine: the range server and the tunnel, run only while a
watch folder uses pull (or auto) mode, and their state as the ``tunnel`` health check.

Nothing listens and no tunnel is open while every folder pushes: the door exists only while
it is wanted. In sandbox mode the tunnel is the stand-in cloudflared (``app.sandbox.cloudflared``),
so the demo shows pull mode working with no account and no internet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx

from app.core.jobs import WatchRoot
from app.proxy.router import ProxyRouter
from app.proxy.transport import routed
from app.pull.range_server import Pacer, RangeServer
from app.pull.tunnel import TunnelManager, TunnelState, TunnelStatus, TunnelUnavailable

log = logging.getLogger(__name__)
PROBE_SIZE = 256 * 1024
PROXY_NOTE = (
    "This computer reaches the internet through a proxy, which cloudflared does not use (it ignores "
    "HTTPS_PROXY): pull mode needs direct access to Cloudflare on port 7844, else use push."
)
PULL_MODES = ("pull", "auto")
TUNNEL = "tunnel"  # health component
HealthSet = Callable[[str, str | None, str | None, str | None], None]  # component, problem, ok text, action


class PullService:
    def __init__(
        self,
        *,
        state_dir: Path,
        command: Sequence[str] | None,
        health: HealthSet,
        ready_timeout: float = 30.0,
        max_in_flight: int = 64,
        pacer: Pacer | None = None,
    ) -> None:
        self._state_dir = state_dir
        self._command = list(command) if command else None
        self._health = health
        self.ready_timeout = ready_timeout
        self._max_in_flight = max_in_flight
        self._pacer = pacer
        self._server: RangeServer | None = None
        self._tunnel: TunnelManager | None = None
        self._lock = asyncio.Lock()
        self._following = asyncio.Lock()
        self._generation = 0  # carried from one tunnel to the next: a new address is a new number
        self._stopping: asyncio.Future[None] | None = None
        self._wanted_by_roots = False
        self.on_status: Callable[[TunnelStatus], None] = lambda status: None
        # PostFlow's way out: the tunnel test goes out as uploads do, and a proxy in the way is
        # said when the tunnel fails (cloudflared cannot follow it).
        self.proxies: ProxyRouter | None = None
        self.proxy_set: Callable[[], bool] = lambda: False  # a proxy is set in settings

    # ---- lifecycle ----
    @property
    def running(self) -> bool:
        return self._tunnel is not None

    async def follow_roots(self, roots: Iterable[WatchRoot]) -> None:
        """Run while some folder wants pull mode, stop when none does. One change at a time, in
        the order they came: a stop never overtakes the start before it."""
        wanted = any(r.upload_mode in PULL_MODES for r in roots)
        self._wanted_by_roots = wanted
        async with self._following:
            if wanted:
                await self.start()
            elif self.running:
                await self.stop()
                self._health(TUNNEL, None, "Off: every watch folder uses push.", None)

    async def start(self) -> None:
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
        async with self._lock:
            if self._tunnel is not None:
                return
            self._server = RangeServer(max_in_flight=self._max_in_flight, pacer=self._pacer)
            port = await self._server.start()
            self._tunnel = TunnelManager(
                origin_port=port, state_dir=self._state_dir, command=self._command,
                on_status=self._status_changed, generation=self._generation,
            )  # fmt: skip
            self._tunnel.ready_budget = self.ready_timeout
            self._tunnel.start()
            log.info("pull mode: range server on 127.0.0.1:%d, starting the tunnel", port)

    async def stop(self) -> None:
        """Runs to its end even if the caller is cancelled meanwhile (a child cloudflared must
        never be left running); a second call waits for the same stop."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        try:
            async with self._lock:
                if self._tunnel is not None:
                    await self._tunnel.stop()
                if self._server is not None:
                    await self._server.stop()
                self._tunnel = self._server = None
        finally:
            self._stopping = None

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

    async def test(self, probe_dir: Path) -> str:
        """ "Test tunnel": a small probe file fetched back through the public URL, by range, as
        Frame.io would. Returns what worked; raises ``TunnelUnavailable`` saying what did not."""
        was_running = self.running
        try:
            status = await self.ready()
            server = self.server()
            probe = probe_dir / "tunnel-probe.bin"
            body = os.urandom(PROBE_SIZE)
            await asyncio.to_thread(_write_probe, probe, body)
            publication = await asyncio.to_thread(server.publish, str(probe), 60.0)
            url = f"{status.url}{server.url_path(publication)}"
            started = time.monotonic()
            try:
                # The way every request of PostFlow goes out:
                async with httpx.AsyncClient(timeout=15.0, **routed(self.proxies)) as http:
                    whole = await http.get(url)
                    tail = await http.get(url, headers={"Range": "bytes=-1000"})
            except httpx.HTTPError as exc:
                raise TunnelUnavailable(
                    f"The tunnel did not carry the test file ({type(exc).__name__})."
                ) from None
            finally:
                server.forget(publication.token)
                await asyncio.to_thread(probe.unlink, missing_ok=True)
            if whole.content != body or tail.status_code != 206 or tail.content != body[-1000:]:
                raise TunnelUnavailable(
                    "The tunnel answered, but not with the test file "
                    f"(HTTP {whole.status_code}, {tail.status_code})."
                )
            took = time.monotonic() - started
            kb = PROBE_SIZE // 1024
            return f"The tunnel works: a {kb} KB test file came back whole via {status.url} in {took:.1f} s."
        finally:
            if not was_running and not self._wanted_by_roots:
                await self.stop()

    def _status_changed(self, status: TunnelStatus) -> None:
        self._generation = max(self._generation, status.generation)
        if status.state is TunnelState.READY:
            self._health(TUNNEL, None, f"Up at {status.url}", None)
        elif status.state is TunnelState.FAILED:
            action = status.action
            if self.proxy_set() or (self.proxies is not None and self.proxies.uses_proxy):
                action = (f"{action} " if action else "") + PROXY_NOTE
            self._health(TUNNEL, status.message, None, action)
        elif status.state is TunnelState.STARTING and status.generation == 0:
            self._health(TUNNEL, None, "Starting…", None)
        self.on_status(status)


def _write_probe(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
