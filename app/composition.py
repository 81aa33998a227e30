"""The composition root: the one place that builds PostFlow's services and wires them together.

``run --headless``, the tray app and the CLI commands all start here, so the token store, the
sign-in, the Frame.io client and the engine are built once, the same way, and closed in the
reverse order. Nothing below this module constructs another package's services: auth does not
build a Frame.io client, the Frame.io client takes any token source, the engine is handed both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx

from app.auth.ims_client import ImsClient
from app.auth.proxy_config import proxy_router
from app.auth.service import AuthService, backend_for, client_secret, endpoints_for, keychain_service
from app.auth.token_provider import TokenProvider
from app.auth.token_store import TokenStore
from app.control.server import ControlServer
from app.core.events import EventBus
from app.core.jobs import WatchRoot
from app.core.roots import check_overlaps
from app.core.settings import Settings, machine_name
from app.engine.service import EngineService
from app.frameio.client import FrameioClient
from app.proxy.router import ProxyRouter
from app.proxy.transport import RoutingTransport
from app.team.daily_summary import DailySummary
from app.team.discord_notifier import DiscordNotifier
from app.team.discord_webhook import TIMEOUT as DISCORD_TIMEOUT
from app.team.outbox import Outbox

log = logging.getLogger(__name__)
DEMO_STABLE_SECONDS = 3.0


@dataclass
class Connections:
    """Sign-in and Frame.io, for commands that need no engine (login, logout) and for the app."""

    settings: Settings
    bus: EventBus
    store: TokenStore
    provider: TokenProvider
    frameio: FrameioClient
    auth: AuthService
    _ims_http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.frameio.aclose()
        await self._ims_http.aclose()
        if self.frameio.proxies is not None:
            await asyncio.to_thread(self.frameio.proxies.close)  # the proxy scripts' children


def connect(
    settings: Settings, bus: EventBus, store: TokenStore | None = None, *, proxies: ProxyRouter | None = None
) -> Connections:
    """Build the token store (unless given), IMS client, token provider, Frame.io client and
    the sign-in facade. Raises ``ConfigError`` for settings that cannot work."""
    endpoints = endpoints_for(settings)
    store = store or TokenStore(endpoints.keychain_service, backend_for(settings))
    secret = client_secret(settings, endpoints, store)
    if proxies is None:  # not read by the caller (off the event loop): read the keychain now
        proxies = proxy_router(settings, store)
    ims_http = httpx.AsyncClient(
        timeout=httpx.Timeout(20.0, connect=10.0), transport=RoutingTransport(proxies)
    )
    ims = ImsClient(endpoints.ims_url, endpoints.client_id, client_secret=secret, http=ims_http)
    provider = TokenProvider(ims, store, bus)
    frameio = FrameioClient(endpoints.api_url, provider, proxies=proxies)
    auth = AuthService(settings, endpoints, store, ims, provider, frameio)
    return Connections(settings, bus, store, provider, frameio, auth, ims_http)


@dataclass
class Session:
    """A running PostFlow: what the headless runner and the tray app hold while it lives."""

    settings: Settings
    bus: EventBus
    connections: Connections
    engine: EngineService
    demo: bool  # the built-in sandbox serves this session (no account needed)
    discord: DiscordNotifier
    summary: DailySummary

    @property
    def auth(self) -> AuthService:
        return self.connections.auth


async def _demo_sign_in(auth: AuthService) -> None:
    """Sign the demo user in through the sandbox's real OAuth flow, no browser needed."""
    flow = auth.new_flow("http://127.0.0.1:9/callback")
    async with httpx.AsyncClient() as http:
        answer = await http.get(flow.authorize_url)
    await auth.finish(flow, answer.headers["location"])


@asynccontextmanager
async def running_app(
    settings: Settings, roots: Sequence[WatchRoot] = (), *, bus: EventBus | None = None
) -> AsyncIterator[Session]:
    """Start PostFlow (engine started, demo user signed in in demo mode) and stop it cleanly.

    ``roots`` given (``--watch``) replace the configured ones for this run and are not saved;
    otherwise the configured roots are watched and run-time changes are saved to config.toml.
    In sandbox mode with no sandbox URL, a sandbox runs inside the process with its state in
    the data folder.
    """
    from_config = not roots
    watch = tuple(roots) or settings.watch_roots
    check_overlaps(watch)  # a plain error before anything starts
    bus = bus or EventBus()
    async with AsyncExitStack() as stack:
        lock = EngineService.lock_holder(settings)
        lock.acquire()  # a second instance is refused before it touches anything (demo sandbox too)
        stack.callback(lock.release)
        store = None
        demo = settings.sandbox and not settings.sandbox_url
        if demo:
            settings = await _start_demo_sandbox(settings, stack)
            # A demo shows a file going up within seconds, not after half a minute of waiting
            # for a render that is not there (the sample is written whole, then renamed).
            settings = replace(settings, stable_seconds=min(settings.stable_seconds, DEMO_STABLE_SECONDS))
            from app.auth.memory_keyring import MemoryKeyring

            # Demo tokens open nothing real: memory, so any machine can run the demo.
            store = TokenStore(keychain_service(settings), MemoryKeyring())
        proxies = await asyncio.to_thread(proxy_router, settings, store)  # the keychain may ask: off the loop
        connections = connect(settings, bus, store, proxies=proxies)
        stack.push_async_callback(connections.aclose)
        engine = EngineService(
            settings, connections.auth, connections.frameio, bus, watch, lock=lock,
            persist=from_config,
        )  # fmt: skip
        await connections.provider.load()
        if connections.provider.tokens is None:
            if demo:
                await _demo_sign_in(connections.auth)
            else:
                log.warning("not signed in: run `postflow login`; uploads start once you are signed in")
        if not watch:
            log.warning(
                "no watched folders: use --watch DIR --project NAME or [[watch.roots]] in config.toml"
            )
        stack.push_async_callback(engine.stop)
        discord = DiscordNotifier(
            lambda: engine.settings, Outbox(engine.store), connections.store, bus, engine.health_monitor,
            engine.destination_of, http=httpx.AsyncClient(
                timeout=DISCORD_TIMEOUT, headers={"User-Agent": "PostFlow"},
                transport=RoutingTransport(proxies),
            ),
        )  # fmt: skip
        discord.listen()  # before the engine starts: no delivery or failure goes unheard
        await engine.start()
        summary = await _start_discord(engine, discord, demo, stack)
        control = ControlServer(engine, settings.paths.data_dir, tcp_port=settings.control_port, demo=demo)
        await control.start()
        stack.push_async_callback(control.stop)  # first to stop: no command reaches a stopping engine
        _log_roots(engine)
        yield Session(settings, bus, connections, engine, demo, discord, summary)


async def _start_discord(
    engine: EngineService, notifier: DiscordNotifier, demo: bool, stack: AsyncExitStack
) -> DailySummary:
    """The team's channel: after the engine (its database is open), stopped before it. The
    ready-to-review follow-up stops first, so no announcement is made once nobody listens."""
    await notifier.start()
    stack.push_async_callback(notifier.stop)
    stack.push_async_callback(engine.review_watch.stop)
    engine.add_health_check("discord", notifier.check)
    summary = DailySummary(
        lambda: engine.settings, engine.store, notifier, lambda root_id: engine.destination_of(root_id, ""),
        lambda: machine_name(engine.settings),
    )  # fmt: skip
    summary.start()
    stack.push_async_callback(summary.stop)
    if demo and notifier.url is None:  # the demo posts to the sandbox's stand-in channel
        await notifier.set_webhook(
            f"{engine.settings.sandbox_url}/discord/api/webhooks/100000000000000002/demo"
        )
    return summary


def _log_roots(engine: EngineService) -> None:
    """The start-up log says which folder feeds which destination."""
    for root in engine.roots:
        target = " / ".join(p for p in (root.workspace, root.project, root.folder) if p)
        log.info("watching %s → Frame.io %s", root.path, target)


async def _start_demo_sandbox(settings: Settings, stack: AsyncExitStack) -> Settings:
    from app.sandbox.config import SandboxConfig
    from app.sandbox.server import SandboxServer

    # A stable address (saved part URLs stay valid across restarts) and no copy of the bytes
    # (a demo must not fill the disk with a second copy of every render).
    config = SandboxConfig(state_dir=settings.paths.data_dir / "sandbox", reuse_port=True, keep_bytes=False)
    sandbox: Any = SandboxServer(config)
    url = await sandbox.start()
    stack.push_async_callback(sandbox.stop)
    log.info("demo mode: built-in sandbox at %s", url)
    return replace(settings, sandbox_url=url)
