"""The tunnel manager: one cloudflared quick tunnel in front of the range server (BRIEF §6).

It finds the binary (the app bundle, then the settings path, then PATH), starts it with an
app-owned config (a user's ``~/.cloudflared/config.yml`` must not reroute us), ``TUNNEL_*``
removed from its environment and ``--no-autoupdate`` (a GUI-launched cloudflared may replace
itself and exit 11). It learns the public hostname from the metrics port (``/quicktunnel``,
then ``/ready`` with a connection), falls back to the stderr banner, and probes the public
URL before saying "ready": DNS for a new hostname can take seconds.

stderr is always drained (a full pipe would freeze cloudflared) and its last lines are kept to
explain a failure in words (port 7844 blocked, creation rate-limited, the process exited). A
child that dies or stays unready is restarted with backoff; each start has a new hostname, so
``generation`` changes and pulls in progress are re-issued by the engine. A leftover of a
crashed run is reaped at start (``child_process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.core.errors import ServiceUnavailable
from app.core.event_wait import wait_set
from app.core.unabandoned import made_or_released
from app.pull import child_process

log = logging.getLogger(__name__)
URL_PATH = re.compile(r"(https?://[^\s/\"']+)/[^\s\"']*")
PATH_FIELD = re.compile(r"((?:path|dest|url|originService)=\"?)(/[^\s\"]*)")
BANNER_URL = re.compile(r"(https?://[A-Za-z0-9.-]+(?::\d+)?)\s*\|?\s*$")
READY_BUDGET = 30.0  # seconds from start to a tunnel that answers
HEALTH_EVERY = 5.0  # seconds between /ready checks while it runs
UNREADY_LIMIT = 3  # consecutive failed /ready checks before a restart
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 60.0
STABLE_AFTER = 60.0  # a tunnel up this long resets the backoff
NOT_FOUND_BODY = b"Not found.\n"  # what the range server answers for a path it does not serve
TERMS_NOTE = (
    "Pull mode lets Frame.io fetch files from this computer through a Cloudflare quick tunnel. "
    "Cloudflare's terms restrict serving video or large volumes of big files through it, and quick "
    "tunnels have no uptime guarantee: choose it only if that is acceptable to you. Push is the default."
)


class TunnelState(enum.Enum):
    OFF = "off"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"  # not usable now; ``message`` says why and whether it is retrying


@dataclass(frozen=True)
class TunnelStatus:
    state: TunnelState
    url: str | None = None
    message: str | None = None
    action: str | None = None
    generation: int = 0


class TunnelUnavailable(ServiceUnavailable):
    title = "Tunnel unavailable"


def scrub(line: str) -> str:
    """cloudflared's line without any URL path or request path: those hold pull links."""
    line = URL_PATH.sub(lambda m: m.group(1) + "/…", line)
    return PATH_FIELD.sub(lambda m: m.group(1) + "…", line)


def public_url(hostname: str) -> str:
    """Quick tunnels are HTTPS. A loopback "hostname" is the sandbox's stand-in edge: plain HTTP."""
    host = hostname.strip().rstrip("/")
    if "://" in host:
        return host
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        loopback = ipaddress.ip_address(bare.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    return f"{'http' if loopback else 'https'}://{host}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_RATE_LIMITED = re.compile(r"too many requests|(?<![\d.:])429(?!\d)")
_EDGE_PORT = re.compile(r"(?<!\d)7844(?!\d)")


def explain_failure(lines: Sequence[str], returncode: int | None) -> tuple[str, str]:
    """What went wrong, in words, from cloudflared's last lines; and what to do."""
    text = "\n".join(lines).lower()
    # Whole numbers only: the banner's own URLs carry ports such as :42913 or :17844.
    if _RATE_LIMITED.search(text):
        return ("Cloudflare refused to create a tunnel right now (too many requests).",
                "PostFlow tries again with growing pauses; nothing to do unless it lasts.")  # fmt: skip
    if _EDGE_PORT.search(text) or "failed to dial" in text or "connection refused" in text and "edge" in text:
        return ("cloudflared cannot reach Cloudflare: port 7844 (UDP and TCP) looks blocked on this network.",
                "Ask IT to allow outgoing port 7844, or use push uploads.")  # fmt: skip
    if "proxy" in text:
        return ("cloudflared cannot use this network's proxy (it ignores HTTPS_PROXY).",
                "Pull mode needs direct access to Cloudflare; use push uploads behind a proxy.")  # fmt: skip
    if returncode == 11:
        return ("cloudflared updated itself and stopped.", "PostFlow starts it again.")
    if returncode is not None and returncode < 0:
        return (f"cloudflared was stopped from outside (signal {-returncode}).", "PostFlow starts it again.")
    if returncode is not None:
        errors = [line for line in lines if " ERR " in line or "rror" in line]
        detail = f": {errors[-1].strip()[-200:]}" if errors else ""
        return (f"cloudflared stopped (exit code {returncode}){detail}.", "PostFlow starts it again.")
    return ("The tunnel did not become reachable in time.", "PostFlow starts it again.")


class TunnelManager:
    def __init__(
        self,
        *,
        origin_port: int,
        state_dir: Path,
        command: Sequence[str] | None,
        on_status: Callable[[TunnelStatus], None] = lambda status: None,
        ready_budget: float = READY_BUDGET,
        env: dict[str, str] | None = None,
        generation: int = 0,
    ) -> None:
        """``command``: how to run cloudflared (its path, or the stand-in's argv); None if it
        was not found (the status then says so)."""
        self.origin_port = origin_port
        self._state_dir = state_dir
        self._command = list(command) if command else None
        self._on_status = on_status
        self.ready_budget = ready_budget
        self.health_every = HEALTH_EVERY
        self._env = dict(os.environ if env is None else env)
        self.status = TunnelStatus(TunnelState.OFF)
        self.process: asyncio.subprocess.Process | None = None
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self.restarts = 0
        self._generation = generation  # continues a previous manager's count: never the same twice
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._banner_url: str | None = None

    @property
    def pidfile(self) -> Path:
        return self._state_dir / "cloudflared.pid"

    @property
    def config_file(self) -> Path:
        return self._state_dir / "cloudflared.yml"

    # ---- lifecycle ----
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name="tunnel")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_child()
        self._set(TunnelStatus(TunnelState.OFF, generation=self._generation))

    async def wait_ready(self, timeout: float) -> TunnelStatus:
        """The tunnel's status once ready, or raise ``TunnelUnavailable`` with the reason after
        ``timeout`` seconds (or at once if it cannot run at all)."""
        deadline = time.monotonic() + timeout
        while self.status.state is not TunnelState.READY:
            if self._command is None or self._task is None:
                raise TunnelUnavailable(self.status.message or "The tunnel is not running.")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TunnelUnavailable(self.status.message or "The tunnel is still starting.")
            self._changed.clear()
            await wait_set(self._changed, left)
        return self.status

    def _set(self, status: TunnelStatus) -> None:
        if status != self.status:
            self.status = status
            self._changed.set()
            self._on_status(status)

    # ---- supervision ----
    async def _supervise(self) -> None:
        if self._command is None:
            self._set(TunnelStatus(
                TunnelState.FAILED, message="cloudflared was not found, so pull uploads cannot run.",
                action="Reinstall PostFlow, or set pull.cloudflared in config.toml to a cloudflared binary.",
            ))  # fmt: skip
            return
        backoff = BACKOFF_FIRST
        while True:
            began = time.monotonic()
            try:
                await asyncio.to_thread(self._prepare)
                message, action = await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # our own disk, a bug: said, and tried again, never silent
                log.exception("tunnel: could not run cloudflared")
                message, action = f"The tunnel could not be run ({exc}).", "PostFlow tries again."
            if time.monotonic() - began > STABLE_AFTER:
                backoff = BACKOFF_FIRST
            self.restarts += 1
            log.warning("tunnel: %s Restarting in %.0f s.", message, backoff)
            self._set(TunnelStatus(TunnelState.FAILED, message=f"{message} Restarting in {backoff:.0f} s.",
                                   action=action, generation=self._generation))  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_CAP, backoff * 2)

    def _prepare(self) -> None:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        child_process.reap_orphan(self.pidfile, marker=str(self.config_file))
        # Our own config: nothing in it, so no ingress rule of the user's can override --url.
        self.config_file.write_text("# written by PostFlow: the tunnel's settings are its flags\n")

    def argv(self, metrics_port: int) -> list[str]:
        assert self._command is not None
        return [
            *self._command, "tunnel", "--no-autoupdate", "--config", str(self.config_file),
            "--metrics", f"127.0.0.1:{metrics_port}", "--loglevel", "info", "--grace-period", "5s",
            "--url", f"http://127.0.0.1:{self.origin_port}",
        ]  # fmt: skip

    async def _run_once(self) -> tuple[str, str]:
        """Start cloudflared, wait for it to be ready, watch it; returns why it ended."""
        metrics_port = free_port()
        self._banner_url = None
        self.stderr_tail.clear()
        self._set(
            TunnelStatus(TunnelState.STARTING, message="Starting the tunnel…", generation=self._generation)
        )
        try:
            self.process = await _spawn_unleaked(
                self.argv(metrics_port), child_process.clean_environment(self._env)
            )
        except OSError as exc:
            return (
                f"cloudflared could not be started ({exc.strerror or exc}).",
                "Check pull.cloudflared in config.toml.",
            )
        self._drain = asyncio.get_running_loop().create_task(self._drain_stderr(self.process))
        try:
            await asyncio.to_thread(child_process.write_pidfile, self.pidfile, self.process.pid)
            async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
                url = await self._until_ready(http, metrics_port)
                if url is None:
                    return explain_failure(list(self.stderr_tail), self.process.returncode)
                self._generation += 1
                log.info("tunnel: ready at %s (generation %d)", url, self._generation)
                self._set(TunnelStatus(TunnelState.READY, url=url, generation=self._generation))
                await self._watch(http, metrics_port)
                return explain_failure(list(self.stderr_tail), self.process.returncode)
        finally:
            await asyncio.shield(self._stop_child())  # a second cancel must not skip the kill

    async def _until_ready(self, http: httpx.AsyncClient, metrics_port: int) -> str | None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_budget
        metrics = f"http://127.0.0.1:{metrics_port}"
        hostname: str | None = None
        delay = 0.05
        while time.monotonic() < deadline and self.process.returncode is None:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if hostname is None:
                    answer = await http.get(f"{metrics}/quicktunnel")
                    hostname = str(answer.json().get("hostname") or "") or None
                if hostname is None and self._banner_url:
                    hostname = self._banner_url
                if hostname is not None:
                    ready = await http.get(f"{metrics}/ready")
                    if ready.status_code == 200 and int(ready.json().get("readyConnections", 0)) >= 1:
                        url = public_url(hostname)
                        if await self._reaches_us(http, url):
                            return url
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return None

    async def _reaches_us(self, http: httpx.AsyncClient, url: str) -> bool:
        """The public URL leads to the range server: it answers its own 404 for a path it never
        served (DNS for a new hostname can take a few seconds)."""
        try:
            answer = await http.get(f"{url}/postflow-tunnel-probe")
        except httpx.HTTPError:
            return False
        return answer.status_code == 404 and answer.content == NOT_FOUND_BODY

    async def _watch(self, http: httpx.AsyncClient, metrics_port: int) -> None:
        """Until the child exits or stays unready ``UNREADY_LIMIT`` checks in a row."""
        assert self.process is not None
        misses = 0
        while misses < UNREADY_LIMIT:
            await _exited_within(self.process, self.health_every)
            if self.process.returncode is not None:
                return
            try:
                ready = await http.get(f"http://127.0.0.1:{metrics_port}/ready")
                ok = ready.status_code == 200 and int(ready.json().get("readyConnections", 0)) >= 1
            except (httpx.HTTPError, ValueError):
                ok = False
            misses = 0 if ok else misses + 1

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while True:
            line = await process.stderr.readline()
            if not line:
                return
            raw = line.decode(errors="replace").rstrip()
            found = BANNER_URL.search(raw.rstrip("| "))
            if found and ("trycloudflare.com" in raw or "127.0.0.1" in raw) and "--url" not in raw:
                self._banner_url = found[1]
            text = scrub(raw)  # a failed origin request names its URL, whose path is a pull link
            self.stderr_tail.append(text)
            log.debug("cloudflared: %s", text)

    async def _stop_child(self) -> None:
        """Idempotent: the child is forgotten only once it is dead."""
        process = self.process
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()  # SIGTERM: cloudflared stops within its grace period
                if not await _exited_within(process, 7.0):
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
            if self.process is process:
                self.process = None
            await asyncio.to_thread(child_process.clear_pidfile, self.pidfile, process.pid)
        drain, self._drain = self._drain, None
        if drain is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(drain)
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def _exited_within(process: asyncio.subprocess.Process, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await process.wait()
    except TimeoutError:
        return False
    return True


async def _spawn_unleaked(argv: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """A stop arriving while the child is being created still stops that child."""
    return await made_or_released(child_process.spawn(argv, env), _kill)


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
