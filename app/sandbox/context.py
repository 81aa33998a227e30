"""The running sandbox: its store, clock, limits and faults, shared by every route module."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.sandbox.clock import Clock
from app.sandbox.config import SandboxConfig
from app.sandbox.faults import FaultInjector
from app.sandbox.model import IssuedToken, SandboxStore, User
from app.sandbox.part_hashing import PartHasher
from app.sandbox.ratelimit import RateLimiter


@dataclass
class ImsCounters:
    token_requests: Counter[str] = field(default_factory=Counter)
    revoked: list[str] = field(default_factory=list)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        assert config.state_dir is not None
        self.config = config
        self.clock = Clock()
        self.store = SandboxStore(self.clock, config.state_dir)
        self.limiter = RateLimiter(config.rate_limit_scale)
        self.faults = FaultInjector(config.seed)
        if config.initial_faults:
            self.faults.configure(config.initial_faults)
        self.ims = ImsCounters()
        self.issue_refresh_tokens = True
        self.retry_after_header = False
        self.fail_next_uploads = 0  # the next N complete local uploads end in upload_failed
        self.fail_next_transcodes = 0  # the next N uploaded files cannot be processed
        self.stats: Counter[str] = Counter()
        self.discord_messages: list[dict[str, Any]] = []
        self.discord_windows: dict[str, list[float]] = {}
        self.discord_deleted: set[str] = set()  # webhook ids deleted (DELETE, as in Discord's settings)
        self.release_feed: str | None = None  # the release feed's body, once a test sets one
        self.background: set[asyncio.Task[Any]] = set()
        self.hashes: dict[str, PartHasher] = {}  # file id -> running sha256 of received parts
        self.base_url = ""
        key_file = config.state_dir / "signing.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
        self.signing_key = bytes.fromhex(key_file.read_text().strip())

    # ---- tokens ----
    def mint_token(self, kind: str, client_id: str, user: User, lifetime: float) -> IssuedToken:
        """Long JWT-shaped strings, as IMS issues (they exceed Windows' keychain entry size)."""
        header = _b64({"alg": "RS256", "typ": "JWT", "x5u": "sandbox.cer"})
        payload = _b64(
            {
                "type": f"{kind}_token",
                "client_id": client_id,
                "user_id": user.adobe_user_id,
                "as": "ims-na1-sandbox",
                "created_at": int(self.clock.now() * 1000),
                "expires_in": int(lifetime * 1000),
                "scope": "openid,email,profile,offline_access,additional_info.roles",
                "nonce": secrets.token_hex(16),
            }
        )
        token = f"{header}.{payload}.{secrets.token_urlsafe(512)}"
        issued = IssuedToken(token, kind, client_id, user.id, self.clock.now() + lifetime)
        self.store.tokens[token] = issued
        self.store.changed()
        return issued

    def user_for_access_token(self, request: web.Request) -> User | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        issued = self.store.tokens.get(token.strip())
        if issued is None or issued.kind != "access" or issued.revoked:
            return None
        if issued.expires_at <= self.clock.now():
            return None
        return self.store.users.get(issued.user_id)

    def default_account_id(self) -> str:
        return next(iter(self.store.accounts))

    def default_user(self) -> User:
        return next(iter(self.store.users.values()))

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


def get_sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]
