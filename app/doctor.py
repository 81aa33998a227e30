"""``postflow doctor``: is everything PostFlow needs in order? Red checks exit non-zero.

With PostFlow running, the running app runs its own checks (it knows the live sign-in, the
watch folders' state, the Discord webhook's last answer) and doctor prints them. Without it,
doctor checks the same things itself, the same way the engine would: the keychain the engine
uses (the encrypted file too), the configured folders by the engine's availability rule,
Frame.io (or the sandbox in sandbox mode), the clock, free disk, the queue database.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app import __version__
from app.control.client import ControlClient
from app.control.status_document import StateUnreadable, health_json, offline_status
from app.core.errors import PostFlowError
from app.core.events import Health
from app.core.settings import Settings
from app.engine.health_monitor import action_for, label_for
from app.engine.health_probes import clock_problem, disk_space_problem, tokens_words
from app.proxy.router import ProxyRouter
from app.proxy.transport import routed
from app.pull.cloudflared_binary import cloudflared_command


def describe(settings: Settings, running: bool) -> list[str]:
    paths = settings.paths
    missing = "" if paths.config_file.exists() else " (not present: defaults)"
    demo = settings.sandbox and not settings.sandbox_url
    if demo:
        services = ["mode        : demo (the built-in sandbox; no Adobe account needed)",
                    "Frame.io API: built-in sandbox, started with PostFlow",
                    "Adobe IMS   : built-in sandbox, started with PostFlow"]  # fmt: skip
    elif settings.sandbox:
        url = settings.sandbox_url
        services = [f"mode        : sandbox at {url}", f"Frame.io API: {url}", f"Adobe IMS   : {url}"]
    else:
        services = [
            "mode        : Frame.io",
            f"Frame.io API: {settings.api_url}",
            f"Adobe IMS   : {settings.ims_url}",
        ]
    return [
        f"PostFlow {__version__} ({'running' if running else 'not running'})",
        f"config file : {paths.config_file}{missing}",
        f"data folder : {paths.data_dir}",
        f"log folder  : {paths.log_dir}",
        *services,
        f"client id   : {settings.effective_client_id or '(not set: set auth.client_id)'}",
    ]


def run(settings: Settings) -> tuple[list[str], list[dict[str, Any]]]:
    """(description lines, checks in the ``postflow.health/1`` shape)."""
    client = ControlClient.connect(settings.paths.data_dir)
    if client is not None:
        with client:
            checks = client.get("/v1/health", check="1")["checks"]
        return describe(settings, True), list(checks)
    return describe(settings, False), [health_json(h) for h in asyncio.run(offline_checks(settings))]


def render(lines: list[str], checks: list[dict[str, Any]]) -> str:
    out = [*lines, ""]
    for check in checks:
        mark = "ok  " if check["ok"] else "FAIL"
        words = check["message"] or ("OK" if check["ok"] else "Problem")
        action = f" → {check['action']}" if not check["ok"] and check["action"] else ""
        out.append(f"[{mark}] {check['label']}: {words}{action}")
    red = sum(not c["ok"] for c in checks)
    out.append("")
    out.append(f"{red} check(s) need attention." if red else "Everything PostFlow needs is in order.")
    return "\n".join(out)


def _health(component: str, problem: str | None, fine: str, roots: dict[str, Any] | None = None) -> Health:
    return Health(component, problem is None, problem if problem is not None else fine,
                  None if problem is None else action_for(component) or None,
                  label_for(component, roots or {}), time.time())  # fmt: skip


async def offline_checks(settings: Settings) -> list[Health]:
    checks = [_signin(settings)]
    checks += await _network(settings)
    checks += await asyncio.to_thread(_folders, settings)
    space = await asyncio.to_thread(
        disk_space_problem,
        {"data": settings.paths.data_dir, "logs": settings.paths.log_dir},
        settings.min_free_mb,
    )
    checks.append(_health("disk_space", space, "Enough free space for the queue and the logs."))
    checks += await _discord(settings)
    checks += await asyncio.to_thread(_tunnel, settings)
    checks.append(_queue(settings))
    return checks


def _tunnel(settings: Settings) -> list[Health]:
    """Pull mode needs a cloudflared it can run; only asked when a folder uses pull mode."""
    pulling = [r.path for r in settings.watch_roots if r.upload_mode != "push"]
    if not pulling:
        return []
    command = cloudflared_command(settings.cloudflared_path, settings.sandbox)
    if command is None:
        where = f" ({settings.cloudflared_path})" if settings.cloudflared_path else ""
        return [_health("tunnel", f"cloudflared was not found{where}, so pull uploads cannot run.", "")]
    return [
        _health(
            "tunnel", None, f"cloudflared to run: {' '.join(command)} (Test tunnel checks it end to end)."
        )
    ]


async def _discord(settings: Settings) -> list[Health]:
    """The webhook in the keychain, asked whether it still exists (no message is posted)."""
    if settings.sandbox and not settings.sandbox_url:
        return []  # the demo's stand-in channel starts with PostFlow
    from app.team.discord_webhook import TIMEOUT, DiscordWebhook
    from app.team.webhook_secret import load_webhook_url

    try:
        url = await asyncio.to_thread(load_webhook_url, settings)
    except PostFlowError as exc:
        return [
            _health("discord", f"The webhook address cannot be read from the keychain: {exc.message}", "")
        ]
    if url is None:
        return []  # no webhook: the team channel is simply not used
    proxies = await asyncio.to_thread(_proxies, settings)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, **routed(proxies)) as http:
            answer = await DiscordWebhook(http).check(url)
    finally:
        await asyncio.to_thread(proxies.close)
    if answer.outcome == "sent":
        return [_health("discord", None, f"The webhook answers ({answer.detail or 'Discord'}).")]
    if answer.outcome == "gone":
        return [_health("discord", f"Discord no longer accepts this webhook ({answer.detail}): it was "
                        "deleted or its address is wrong.", "")]  # fmt: skip
    return [_health("discord", f"{answer.detail}: messages wait and are sent later.", "")]


def _proxies(settings: Settings) -> ProxyRouter:
    """Blocking (the keychain): the way out the app would take, so doctor sees what it sees."""
    from app.auth.proxy_config import proxy_router

    try:
        return proxy_router(settings)
    except PostFlowError:
        return ProxyRouter()


def _signin(settings: Settings) -> Health:
    if settings.sandbox and not settings.sandbox_url:
        return _health(
            "signin", None, "Demo mode: the built-in sandbox signs a demo user in when PostFlow starts."
        )
    from app.auth.service import backend_for, keychain_service
    from app.auth.token_store import TokenStore

    try:
        tokens = TokenStore(keychain_service(settings), backend_for(settings)).load()
    except PostFlowError as exc:
        return _health("signin", f"The keychain cannot be read: {exc.message}", "")
    problem, fine = tokens_words(tokens, time.time())
    if tokens is None:
        problem = "Not signed in: run `postflow login` (or Sign in with Adobe in the tray menu)."
    return _health("signin", problem, fine)


async def _network(settings: Settings) -> list[Health]:
    if settings.sandbox and not settings.sandbox_url:
        return [_health("network", None, "Demo mode: the built-in sandbox starts with PostFlow.")]
    base = settings.sandbox_url or settings.api_url
    proxies = await asyncio.to_thread(_proxies, settings)
    try:
        way = await asyncio.to_thread(proxies.explain, base)
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), **routed(proxies)) as http:
            response = await http.get(f"{base}/v4/me")
    except httpx.TransportError as exc:
        where = "The sandbox" if settings.sandbox else "Frame.io"
        return [_health("network", f"{where} cannot be reached at {base} ({type(exc).__name__}; {way}).", "")]
    finally:
        await asyncio.to_thread(proxies.close)
    from email.utils import parsedate_to_datetime

    try:
        server: float | None = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        server = None
    return [
        _health("network", None, f"{base} answers ({way})."),
        _health("clock", clock_problem(time.time(), server), "The clock agrees with Frame.io's."),
    ]


def _folders(settings: Settings) -> list[Health]:
    """Blocking (a thread): each configured folder judged by the engine's own rule."""
    from app.engine.root_health import RootIdentity, judge

    roots = {r.id: r for r in settings.watch_roots}
    if not roots:
        return [Health("watch", False, "No folder is watched.", "Add one in Settings, or [[watch.roots]] in "
                       "config.toml.", "Watch folders", time.time())]  # fmt: skip
    identities = _identities(settings)
    out = []
    for root in roots.values():
        saved = identities.get(root.id)
        problem, _ = judge(root.path, RootIdentity.from_json(saved) if saved else None)
        target = " / ".join(p for p in (root.project, root.folder) if p)
        out.append(_health(f"watch:{root.id}", problem, f"Readable; files go to {target}.", roots))
    return out


def _identities(settings: Settings) -> dict[str, str]:
    import sqlite3

    db_path = settings.paths.state_db
    if not db_path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'root:%'").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return {}  # the queue check says what is wrong with the database
    return {str(k).removeprefix("root:"): str(v) for k, v in rows}


def _queue(settings: Settings) -> Health:
    try:
        doc = offline_status(settings.paths.state_db, settings.watch_roots)
    except StateUnreadable as exc:
        return Health("queue", False, exc.message, "Quit PostFlow, then see docs/troubleshooting.md.",
                      "Queue database", time.time())  # fmt: skip
    counts = doc["queue"]["counts"]
    waiting = counts["pending"] + counts["uploading"] + counts["paused"]
    words = f"Readable: {waiting} waiting, {counts['failed']} failed, {counts['done']} delivered."
    return Health("queue", True, words, None, "Queue database", time.time())
