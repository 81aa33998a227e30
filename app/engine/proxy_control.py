"""The proxy, as the running engine changes it: Settings → Network saves the address or the
script (live settings), keeps the user name and password in the keychain, and asks which way
Frame.io is reached now. Every client shares one router, so a change applies to the next
request of each, without a restart. Keychain reads and the router's answers block: threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from app.auth.proxy_config import PROXY_KEY, configure_router
from app.auth.token_store import TokenStore
from app.core.errors import ConfigError
from app.core.settings import Settings
from app.proxy.router import ProxyRouter

log = logging.getLogger(__name__)


class ProxyControl:
    def __init__(
        self, router: ProxyRouter | None, store: TokenStore, settings: Callable[[], Settings], probe: str
    ) -> None:
        """``probe``: the address whose way out is shown (Frame.io's API, or the sandbox's)."""
        self.probe = probe
        self.router = router  # None: the clients were made without one (httpx reads the environment)
        self._store = store
        self._settings = settings

    async def follow_settings(self) -> None:
        """The proxy settings changed: every client takes the new way from its next request."""
        if self.router is not None:
            await asyncio.to_thread(configure_router, self.router, self._settings(), self._store)

    async def login_user(self) -> str:
        """The proxy user name kept in the keychain ("" when none)."""
        credentials = await asyncio.to_thread(self._store.secret, PROXY_KEY)
        return (credentials or "").partition(":")[0]

    async def set_login(self, user: str, password: str) -> None:
        """Keep (or, with an empty user, forget) the proxy's user name and password."""
        if ":" in user:
            raise ConfigError("a proxy user name cannot contain ':'")
        await asyncio.to_thread(self._store.set_secret, PROXY_KEY, f"{user}:{password}" if user else None)
        log.info("proxy user name and password %s", "kept in the keychain" if user else "forgotten")
        await self.follow_settings()

    async def explain(self, url: str | None = None) -> str:
        """Which way ``url`` (Frame.io) goes now, in words (the router may fetch a script: a thread)."""
        if self.router is None:
            return "the environment's proxy settings, as httpx reads them"
        return await asyncio.to_thread(self.router.explain, url or self.probe)
