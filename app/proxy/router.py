"""Which way each request goes out: through which proxy, or direct.

One router serves every client PostFlow has (Adobe sign-in, Frame.io, the upload storage,
Discord, the release feed), so they all go the same way, and a change in Settings → Network
applies to all of them at once, without a restart. In order, the first that applies decides:

1. a proxy set in settings (``network.proxy``): every request, loopback included;
2. a proxy script set in settings (``network.pac_url``);
3. the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``);
4. the system's proxy script, or WPAD when the system says "discover automatically";
5. the system's fixed proxies (macOS, Windows), else direct.

A script is fetched direct (as browsers do), run in a child process with a time limit
(``pac_worker``), kept for half an hour, and asked once per host every few minutes; its answer
may list several proxies and DIRECT, tried in that order, and a proxy whose port cannot be
reached is passed over for a minute. A script that cannot be fetched or run is said once in
the log, and the next source in the order decides meanwhile (usually: direct). The keychain's
proxy login goes only to the proxy in settings and to proxies named by a script the settings
or the system name, never to one a WPAD lookup found (anyone on the network can answer it).
Asking may block (a download, a name lookup): callers on the event loop use a thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from app.core.logging_setup import SECRETS
from app.proxy.pac_script import PacAnswer, PacError
from app.proxy.pac_worker import IsolatedPacScript
from app.proxy.system_pac import SystemPac, system_pac, wpad_urls

log = logging.getLogger(__name__)

Route = str | None  # an http:// proxy address (maybe with credentials), or None: direct
ROUTE_TTL = 300.0  # seconds a host's answer is kept (and the system's settings re-read)
SCRIPT_TTL = 1800.0  # seconds a fetched script is kept
RETRY_FAILED_SCRIPT = 300.0  # seconds before a script that could not be fetched is tried again
DOWN_FOR = 60.0  # seconds an unreachable proxy is passed over when the script offers another
MAX_SCRIPT_BYTES = 1_000_000


class Script(Protocol):
    def find(self, url: str, host: str) -> PacAnswer: ...

    def close(self) -> None: ...


class ProxyUnusable(Exception):
    """Every way the script offers is one PostFlow cannot take (SOCKS, HTTPS proxies)."""


@dataclass(frozen=True)
class Decision:
    """The routes for one address and who chose them (for the log, doctor and Settings)."""

    routes: tuple[Route, ...]
    source: str  # "the proxy in settings", "the proxy script <url>", "the environment", …


class ProxyRouter:
    def __init__(
        self,
        manual: str | None = None,
        pac_url: str = "",
        *,
        credentials: str | None = None,
        system: Callable[[], SystemPac] = system_pac,
        wpad: Callable[[], list[str]] = wpad_urls,
        clock: Callable[[], float] = time.monotonic,
        script: Callable[[str, str], Script] = IsolatedPacScript,
    ) -> None:
        self._make_script = script
        self._system = system
        self._wpad = wpad
        self._clock = clock
        self._lock = threading.RLock()
        self._routes: dict[str, tuple[float, Decision]] = {}
        self._down: dict[str, float] = {}
        self._scripts: dict[str, tuple[float, Script | None]] = {}  # url → (until, script)
        self._system_pac: tuple[float, SystemPac] | None = None
        self._said: set[str] = set()
        self._generation = 0  # a decision made under older settings is not kept
        self._busy: dict[str, threading.Lock] = {}  # one fetch per script, one decision per origin
        self.asking: dict[str, Any] = {}  # origin → the event loop's task asking (RoutingTransport)
        self.manual: str | None = None
        self.pac_url = ""
        self.credentials: str | None = None
        self.configure(manual, pac_url, credentials)

    def configure(self, manual: str | None, pac_url: str = "", credentials: str | None = None) -> None:
        """New settings: every cached answer and script is forgotten (the same settings again
        change nothing, so an Apply elsewhere does not make the script be fetched anew)."""
        manual, pac_url, credentials = manual or None, pac_url.strip(), credentials or None
        with self._lock:
            if (manual, pac_url, credentials) == (self.manual, self.pac_url, self.credentials):
                return
            self.manual, self.pac_url, self.credentials = manual, pac_url, credentials
            self._generation += 1
            self._routes.clear()
            self._down.clear()
            scripts = [script for _until, script in self._scripts.values() if script is not None]
            self._scripts.clear()
            self._system_pac = None
            self._said.clear()
        for script in scripts:
            script.close()

    def close(self) -> None:
        """End the scripts' child processes (they end by themselves when PostFlow does, too)."""
        with self._lock:
            scripts = [script for _until, script in self._scripts.values() if script is not None]
            self._scripts.clear()
        for script in scripts:
            script.close()

    # ---- asking ----
    def cached(self, url: str) -> tuple[Route, ...] | None:
        """The routes for ``url`` when known (never blocks), else None."""
        key = origin(url)
        with self._lock:
            entry = self._routes.get(key)
            if entry is None or entry[0] < self._clock():
                return None
            return self._alive(entry[1].routes)

    def routes(self, url: str) -> tuple[Route, ...]:
        """Blocking. Raises ``ProxyUnusable`` when nothing offered can be used."""
        return self._alive(self.decide(url).routes)

    def decide(self, url: str) -> Decision:
        key = origin(url)
        with self._one_at_a_time(f"origin {key}"):  # a burst of requests: one decision, shared
            while True:
                with self._lock:
                    entry = self._routes.get(key)
                    if entry is not None and entry[0] >= self._clock():
                        return entry[1]
                    generation = self._generation
                    settings = (self.manual, self.pac_url, self.credentials)
                decision = self._decide(key, *settings)
                with self._lock:
                    if generation == self._generation:  # else: decided under old settings, again
                        self._routes[key] = (self._clock() + ROUTE_TTL, decision)
                        return decision

    def first(self, url: str) -> Route:
        """The route to take for a single try (the upload parts): blocking."""
        return self.routes(url)[0]

    def mark_down(self, route: Route) -> None:
        if route is None:
            return
        with self._lock:
            self._down[route] = self._clock() + DOWN_FOR
        log.info("the proxy %s cannot be reached: another way is tried for a minute", _shown(route))

    def explain(self, url: str) -> str:
        """Blocking. ``"api.frame.io: through http://proxy:3128 (the proxy script …)"``."""
        host = urllib.parse.urlsplit(url).hostname or url
        try:
            decision = self.decide(url)
        except ProxyUnusable as exc:
            return f"{host}: {exc}"
        ways = ", then ".join("direct" if r is None else f"through {_shown(r)}" for r in decision.routes)
        return f"{host}: {ways} ({decision.source})"

    @property
    def uses_proxy(self) -> bool:
        """Some request may go through a proxy (pull mode warns: cloudflared would not follow)."""
        with self._lock:
            decisions = [d for _until, d in self._routes.values()]
        return bool(self.manual) or any(r is not None for d in decisions for r in d.routes)

    # ---- deciding ----
    def _decide(self, key: str, manual: str | None, pac_url: str, credentials: str | None) -> Decision:
        if manual:
            return Decision((manual,), "the proxy in settings")
        if pac_url:
            decision = self._from_script(key, pac_url, "the proxy script in settings", credentials)
            if decision is not None:
                return decision
        if {k for k in urllib.request.getproxies_environment() if k != "no"}:  # NO_PROXY alone: not
            return Decision(_static(key), "the environment's proxy variables")
        system = self._system_settings()
        if system.url:
            decision = self._from_script(key, system.url, "the system's proxy script", credentials)
            if decision is not None:
                return decision
        elif system.discover:
            for candidate in self._wpad():
                # No login for these: whoever answers for wpad.<domain> names the proxy.
                decision = self._from_script(
                    key, candidate, "the proxy script found by WPAD", None, quiet=True
                )
                if decision is not None:
                    return decision
            self._say_once("wpad", "the system asks to discover the proxy automatically, and no proxy script "
                           f"answers at {', '.join(self._wpad()) or '(this computer has no domain name)'}: "
                           "the fixed proxy settings are used")  # fmt: skip
        routes = _static(key)
        return Decision(routes, "the system's proxy settings" if routes != (None,) else "no proxy configured")

    def _from_script(
        self, key: str, url: str, source: str, credentials: str | None, *, quiet: bool = False
    ) -> Decision | None:
        script = self._script_at(url, quiet)
        if script is None:
            return None
        host = urllib.parse.urlsplit(key).hostname or ""
        try:
            answer = script.find(key, host)
        except PacError as exc:
            self._say_once(f"run {url}", f"{exc}: the next proxy setting decides meanwhile")
            return None
        routes = tuple(with_credentials(r, credentials) for r in answer.routes)
        if not routes:
            raise ProxyUnusable(
                f"the proxy script sends {host} only through {', '.join(answer.skipped)}, which PostFlow "
                "cannot use (it needs an http proxy or direct access): set a proxy in Settings → Network"
            )
        if answer.skipped:
            self._say_once(f"skip {answer.skipped}", f"the proxy script offers {', '.join(answer.skipped)} "
                           "for some addresses; PostFlow uses only its PROXY and DIRECT entries")  # fmt: skip
        return Decision(routes, f"{source} {url}")

    def _script_at(self, url: str, quiet: bool) -> Script | None:
        with self._one_at_a_time(f"script {url}"):  # one download and one child per script
            with self._lock:
                known = self._scripts.get(url)
                if known is not None and known[0] >= self._clock():
                    return known[1]
                generation = self._generation
            script: Script | None = None
            try:
                script = self._make_script(fetch_script(url), url)
                log.info("proxy script %s read", url)
            except (OSError, httpx.HTTPError, PacError, UnicodeError, ValueError) as exc:
                if not quiet:
                    self._say_once(f"fetch {url}", f"the proxy script {url} cannot be used ({exc}): the next "
                                   "proxy setting decides meanwhile")  # fmt: skip
            with self._lock:
                current = generation == self._generation
                if current:
                    old = self._scripts.get(url)
                    ttl = SCRIPT_TTL if script is not None else RETRY_FAILED_SCRIPT
                    self._scripts[url] = (self._clock() + ttl, script)
            if current and old is not None and old[1] is not None:
                old[1].close()  # the expired copy of the same script
            if not current and script is not None:
                script.close()  # the settings changed meanwhile
            return script

    def _system_settings(self) -> SystemPac:
        with self._lock:
            if self._system_pac is not None and self._system_pac[0] >= self._clock():
                return self._system_pac[1]
        found = self._system()
        with self._lock:
            self._system_pac = (self._clock() + ROUTE_TTL, found)
        return found

    def _one_at_a_time(self, what: str) -> threading.Lock:
        with self._lock:
            return self._busy.setdefault(what, threading.Lock())

    def _alive(self, routes: tuple[Route, ...]) -> tuple[Route, ...]:
        now = self._clock()
        with self._lock:
            alive = tuple(r for r in routes if r is None or self._down.get(r, 0.0) < now)
        return alive or routes  # all down: try them anyway, rather than not at all

    def _say_once(self, key: str, words: str) -> None:
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        log.warning(words)


def with_credentials(route: Route, credentials: str | None) -> Route:
    """``http://host:port`` with ``user:password`` in it, quoted (every form masked in the logs)."""
    if route is None or not credentials:
        return route
    user, _, password = credentials.partition(":")
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    SECRETS.add(password, urllib.parse.quote(password, safe=""), quoted)
    return route.replace("http://", f"http://{quoted}@", 1)


def reachable(route: str, timeout: float = 3.0) -> bool:
    """Blocking: does the proxy's port take a connection? (A proxy that answers, even "no", is
    not down: what failed is beyond it, and another way round it is not for PostFlow to take.)"""
    parts = urllib.parse.urlsplit(route)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def origin(url: str) -> str:
    """``https://host[:port]/``: what a script is asked, as Chrome asks it (no path, no query: a
    signed upload address is nobody's business)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}/"


def fetch_script(url: str) -> str:
    """Blocking: the script at ``url`` (http, https or file), fetched direct."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        data = Path(urllib.request.url2pathname(parts.path)).read_bytes()[:MAX_SCRIPT_BYTES]
    elif parts.scheme in ("http", "https"):
        timeout = httpx.Timeout(10.0, connect=3.0)
        with (
            httpx.Client(trust_env=False, timeout=timeout, follow_redirects=True) as http,
            http.stream("GET", url) as answer,
        ):
            if answer.status_code != 200:
                raise ValueError(f"it answers HTTP {answer.status_code}")
            body = bytearray()
            for piece in answer.iter_bytes():
                body += piece
                if len(body) > MAX_SCRIPT_BYTES:
                    raise ValueError(f"it is larger than a proxy script can be ({MAX_SCRIPT_BYTES} bytes)")
            data = bytes(body)
    else:
        raise ValueError(f"a proxy script address starts with http://, https:// or file:// (not {url!r})")
    return data.decode("utf-8-sig", errors="replace")


def _static(key: str) -> tuple[Route, ...]:
    """The environment's proxies, else the system's fixed ones, as urllib reads them."""
    parts = urllib.parse.urlsplit(key)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return (None,)
    proxies = urllib.request.getproxies()
    address = proxies.get(parts.scheme) or proxies.get("all")
    if not address:
        return (None,)
    return (address if "://" in address else f"http://{address}",)


def _shown(route: str) -> str:
    parts = urllib.parse.urlsplit(route)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 80}"
