"""The proxy settings read into a router: the manual proxy's address and its keychain
credentials, and the proxy script's address (see ``app.proxy.router`` for the order).

- ``network.proxy`` (e.g. ``http://proxy.studio:3128``): every request PostFlow makes (Adobe
  sign-in, Frame.io, the upload storage, Discord, the release feed) goes through it, whatever
  the environment says. Its user name and password live in the keychain (``proxy`` entry, as
  ``user:password``), never in config.toml, and never in a log line; they are also given to
  the proxies a proxy script names.
- ``network.pac_url``: a proxy script (PAC) that decides per host.
- both empty: the environment's proxy variables, then the system's proxy script (or WPAD),
  then the system's fixed proxies.
cloudflared (pull mode) does not use HTTPS proxies at all; the tunnel's health says so.
"""

from __future__ import annotations

import base64
import urllib.parse

from app.auth.token_store import TokenStore
from app.core.logging_setup import SECRETS
from app.core.settings import Settings
from app.proxy.router import ProxyRouter, with_credentials

PROXY_KEY = "proxy"


def proxy_credentials(settings: Settings, store: TokenStore | None = None) -> str | None:
    """Blocking (the keychain): ``user:password`` kept by ``postflow proxy-login`` or Settings →
    Network, or None. Every form of the password is masked in the logs from here on."""
    if store is None:
        from app.auth.service import backend_for, keychain_service

        store = TokenStore(keychain_service(settings), backend_for(settings))
    try:
        credentials = store.secret(PROXY_KEY)
    except Exception:  # noqa: BLE001 - no keychain: the proxy without a password, and it may say 407
        return None
    if not credentials:
        return None
    user, _, password = credentials.partition(":")
    quoted_user, quoted_password = urllib.parse.quote(user, safe=""), urllib.parse.quote(password, safe="")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    SECRETS.add(password, quoted_password, f"{quoted_user}:{quoted_password}", basic)  # however it is shown
    return credentials


def proxy_url(
    settings: Settings, store: TokenStore | None = None, credentials: str | None = None
) -> str | None:
    """The manual proxy with its credentials, or None (a script, the environment or the system
    decide). Blocking unless ``credentials`` are given."""
    if not settings.proxy_url:
        return None
    return with_credentials(settings.proxy_url, credentials or proxy_credentials(settings, store))


def proxy_router(settings: Settings, store: TokenStore | None = None) -> ProxyRouter:
    """Blocking (the keychain): the router every client of this session shares."""
    router = ProxyRouter()
    configure_router(router, settings, store)
    return router


def configure_router(router: ProxyRouter, settings: Settings, store: TokenStore | None = None) -> None:
    """Blocking (the keychain): the router follows changed settings or credentials at once."""
    credentials = proxy_credentials(settings, store)
    router.configure(proxy_url(settings, store, credentials), settings.pac_url, credentials)
