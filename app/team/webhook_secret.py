"""The Discord webhook address: a secret (anyone holding it can post to the channel), so it
lives in the keychain beside the sign-in, never in config.toml or the logs."""

from __future__ import annotations

import re

from app.auth.token_store import TokenStore
from app.core.errors import ConfigError
from app.core.settings import Settings

WEBHOOK_KEY = "discord-webhook"
_DISCORD = re.compile(
    r"^https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/(\d+)/([A-Za-z0-9_.\-]+)/?$"
)
_ANY_HOST = re.compile(r"^https?://[^/\s]+(?:/[^\s]*)?/api(?:/v\d+)?/webhooks/(\d+)/([A-Za-z0-9_.\-]+)/?$")


def parse_webhook_url(text: str, sandbox: bool) -> str:
    """The address as Discord shows it (Server Settings → Integrations → Webhooks → Copy
    Webhook URL). In sandbox mode the sandbox's stand-in is accepted too."""
    url = text.strip()
    if _DISCORD.match(url) or (sandbox and _ANY_HOST.match(url)):
        return url.rstrip("/")
    raise ConfigError(
        "That is not a Discord webhook address: it looks like https://discord.com/api/webhooks/123…/abc… "
        "(in Discord: Server Settings → Integrations → Webhooks → Copy Webhook URL)."
    )


def load_webhook_url(settings: Settings, store: TokenStore | None = None) -> str | None:
    if store is None:
        from app.auth.service import backend_for, keychain_service

        store = TokenStore(keychain_service(settings), backend_for(settings))
    return store.secret(WEBHOOK_KEY)


def save_webhook_url(store: TokenStore, url: str | None) -> None:
    store.set_secret(WEBHOOK_KEY, url)


def secret_parts(url: str | None) -> tuple[str, ...]:
    """What must never be shown: the address, and its token alone (it is the secret part)."""
    if not url:
        return ()
    return (url, url.rstrip("/").rsplit("/", 1)[-1])
