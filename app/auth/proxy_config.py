"""Which proxy PostFlow's own requests use: the one set in settings, else the environment's and
the system's.

- ``network.proxy`` (e.g. ``http://proxy.studio:3128``): every request PostFlow makes (Adobe
  sign-in, Frame.io, the upload storage, Discord, the release feed) goes through it, whatever
  the environment says. Its user name and password live in the keychain (``proxy`` entry, as
  ``user:password``), never in config.toml, and never in a log line.
- empty: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY``, and on macOS and Windows the
  system's proxy settings (Python reads them through ``urllib.request.getproxies``). PAC and
  WPAD scripts are not evaluated: a network that only has one needs ``network.proxy``.
cloudflared (pull mode) does not use HTTPS proxies at all; the tunnel's health says so.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from app.auth.token_store import TokenStore
from app.core.logging_setup import SECRETS
from app.core.settings import Settings

PROXY_KEY = "proxy"


def proxy_url(settings: Settings, store: TokenStore | None = None) -> str | None:
    """The manual proxy with its credentials, or None (the environment and system decide)."""
    if not settings.proxy_url:
        return None
    base = settings.proxy_url  # checked when the settings were read
    credentials = None
    if store is None:
        from app.auth.service import backend_for, keychain_service

        store = TokenStore(keychain_service(settings), backend_for(settings))
    try:
        credentials = store.secret(PROXY_KEY)
    except Exception:  # noqa: BLE001 - no keychain: the proxy without a password, and it may say 407
        credentials = None
    if not credentials:
        return base
    user, _, password = credentials.partition(":")
    quoted_user, quoted_password = urllib.parse.quote(user, safe=""), urllib.parse.quote(password, safe="")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    SECRETS.add(password, quoted_password, f"{quoted_user}:{quoted_password}", basic)  # however it is shown
    parts = urllib.parse.urlsplit(base)
    netloc = f"{quoted_user}:{quoted_password}@{parts.netloc}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, "", "", ""))


def httpx_options(proxy: str | None) -> dict[str, Any]:
    """Keyword arguments for an ``httpx`` client: the manual proxy for every address (loopback
    included), or nothing (httpx then reads the environment and the system)."""
    return {"proxy": proxy} if proxy else {}
