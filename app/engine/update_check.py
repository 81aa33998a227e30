"""The update notice: once a day, read the release feed and say when a newer PostFlow is out.

The feed is JSON: ``{"version": "1.4.0", "notes": "…", "download_url": "https://…",
"sha256": "<64 hex digits>"}``. PostFlow never downloads or installs anything by itself: a newer
version is shown in the menu (``Snapshot.update``) and told once: news in every snapshot
(``update_unannounced``) until the tray app has shown it (``acknowledge``, remembered across
restarts); ``UpdateAvailable`` is published for other listeners. A feed that cannot be read, is
malformed, or carries a checksum that is not a SHA-256 is one clear log line, and the next check
is tomorrow's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core.errors import ConfigError
from app.core.events import EventBus, UpdateAvailable, UpdateNotice
from app.engine.queue_store import QueueStore
from app.proxy.router import ProxyRouter
from app.proxy.transport import routed

log = logging.getLogger(__name__)
CHECK_EVERY = 24 * 3600.0
CHECKED_KEY = "update_checked_at"
ANNOUNCED_KEY = "update_announced"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
MAX_FEED = 64 * 1024


class FeedError(ConfigError):
    title = "Release feed unreadable"


def version_key(text: str) -> tuple[int, ...]:
    if not _VERSION.match(text):
        raise FeedError(f"version {text!r} is not a release number such as 1.4.0")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def parse_feed(doc: Any) -> UpdateNotice:
    """The feed's release, every field checked; ``FeedError`` saying what is wrong."""
    if not isinstance(doc, dict):
        raise FeedError("the feed is not a JSON object")
    missing = [k for k in ("version", "download_url", "sha256") if not isinstance(doc.get(k), str)]
    if missing:
        raise FeedError(f"the feed lacks {', '.join(missing)}")
    version_key(doc["version"])
    url = urlsplit(doc["download_url"])
    loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
    if url.scheme != "https" and not (url.scheme == "http" and loopback):
        raise FeedError(f"download_url {doc['download_url']!r} is not an https address")
    if not _SHA256.match(doc["sha256"]):
        raise FeedError(f"sha256 {doc['sha256'][:80]!r} is not a SHA-256 checksum (64 hexadecimal digits)")
    notes = doc.get("notes", "")
    return UpdateNotice(doc["version"], notes if isinstance(notes, str) else "", doc["download_url"],
                        doc["sha256"].lower())  # fmt: skip


def is_newer(candidate: str, current: str) -> bool:
    return version_key(candidate) > version_key(current)


@dataclass
class UpdateChecker:
    store: QueueStore
    bus: EventBus
    feed_url: str
    current_version: str
    clock: Callable[[], float] = time.time
    every: float = CHECK_EVERY
    proxies: ProxyRouter | None = None  # the way out every client of PostFlow takes

    def __post_init__(self) -> None:
        self.available: UpdateNotice | None = None
        self.announced: str | None = None  # the version the user was told of (kept across restarts)
        self._task: asyncio.Task[None] | None = None
        self._one_at_a_time = asyncio.Lock()  # a check on demand during the daily one: told once

    @property
    def unannounced(self) -> bool:
        return self.available is not None and self.available.version != self.announced

    def start(self) -> None:
        if self.feed_url:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="update-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def acknowledge(self, version: str) -> None:
        """The user was told (a notification shown): not again for this version, even after a
        restart. Until then every snapshot carries it as news, so a tray app starting after the
        check, or after a headless run, still tells it once."""
        self.announced = version
        await self.store.set_meta(ANNOUNCED_KEY, version)

    async def _run(self) -> None:
        self.announced = await self.store.meta(ANNOUNCED_KEY)
        while True:
            try:
                last = await self.store.meta(CHECKED_KEY)
                due = (float(last) if last else 0.0) + self.every
                if self.clock() >= due:
                    await self.check_now()
                    await self.store.set_meta(CHECKED_KEY, str(self.clock()))
                    due = self.clock() + self.every
            except Exception:  # a bug or our own disk: said once, tried again in an hour
                log.exception("update check failed")
                due = self.clock() + 3600.0
            await asyncio.sleep(min(3600.0, max(1.0, due - self.clock())))

    async def check_now(self) -> UpdateNotice | None:
        """Read the feed now; the newer release, if any. Never raises for a bad feed."""
        async with self._one_at_a_time:
            if self.announced is None:
                self.announced = await self.store.meta(ANNOUNCED_KEY)
            return await self._check()

    async def _check(self) -> UpdateNotice | None:
        try:
            notice = parse_feed(await self._fetch())
            newer = is_newer(notice.version, self.current_version)
        except FeedError as exc:
            log.warning("update check: %s (%s); PostFlow tries again tomorrow", exc.message, self.feed_url)
            return None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.info("update check: the release feed could not be read (%s); tried again tomorrow",
                     type(exc).__name__)  # fmt: skip
            return None
        if not newer:
            log.debug("update check: %s is the latest release", self.current_version)
            return None
        fresh = self.available is None or self.available.version != notice.version
        self.available = notice
        if fresh and notice.version != self.announced:
            log.info("PostFlow %s is available: %s", notice.version, notice.download_url)
            self.bus.publish(UpdateAvailable(notice))
        return notice

    async def _fetch(self) -> Any:
        body = bytearray()
        async with (
            httpx.AsyncClient(timeout=20.0, follow_redirects=True, **routed(self.proxies)) as http,
            http.stream("GET", self.feed_url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FeedError(f"the feed answered HTTP {response.status_code}")
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > MAX_FEED:  # an installer's address by mistake: never read it all
                    raise FeedError("the feed is larger than a release feed can be")
        try:
            return json.loads(body)
        except ValueError:
            raise FeedError("the feed is not JSON") from None
