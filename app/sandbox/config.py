"""Sandbox knobs: lifetimes, limits, part sizes, registered OAuth clients."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024

#: Loopback redirect URIs the default client accepts: any port, any path.
LOOPBACK_REDIRECTS = (
    r"http://127\.0\.0\.1(:\d+)?(/.*)?",
    r"http://localhost(:\d+)?(/.*)?",
    r"https://localhost(:\d+)?(/.*)?",
    r"adobe\+sandbox://adobeid/postflow-sandbox(/.*)?",
)


@dataclass
class ClientRegistration:
    """An Adobe Developer Console credential: public (PKCE) or confidential (secret)."""

    client_id: str
    redirect_patterns: tuple[str, ...] = LOOPBACK_REDIRECTS
    client_secret: str | None = None  # None: public client, PKCE required

    def allows_redirect(self, uri: str) -> bool:
        return any(re.fullmatch(p, uri) for p in self.redirect_patterns)


def default_clients() -> dict[str, ClientRegistration]:
    return {
        "postflow-sandbox": ClientRegistration("postflow-sandbox"),
        "postflow-sandbox-web": ClientRegistration(
            "postflow-sandbox-web", client_secret="sandbox-web-secret"
        ),
    }


@dataclass
class SandboxConfig:
    """How a sandbox starts; ``/_sandbox/settings`` changes some fields while it runs."""

    host: str = "127.0.0.1"
    #: 0 asks the OS for a free port (or the remembered one, with ``reuse_port``).
    port: int = 0
    #: Remember the bound port in ``state_dir/address.json`` and try it first next time, so a
    #: demo keeps one base URL across restarts (tokens and settings that name it stay valid).
    reuse_port: bool = False
    state_dir: Path | None = None
    access_token_lifetime: float = 86400.0
    refresh_token_lifetime: float = 14 * 86400.0
    auth_code_lifetime: float = 300.0
    #: Multiplies every documented rate limit; 0 turns rate limiting off.
    rate_limit_scale: float = 1.0
    part_size: int = 25 * MiB
    part_url_lifetime: float = 86400.0
    #: Seconds of processing every file takes, plus its size over ``transcode_bytes_per_second``
    #: (0: no size-dependent part), before it is "transcoded" and its proxies exist.
    transcode_delay: float = 0.2
    transcode_bytes_per_second: float = 0.0
    #: Seconds between the last part arriving and the file counting as uploaded (assembly).
    assembly_delay: float = 0.0
    remote_upload_max: int = 50 * 1000**3
    #: How the remote_upload fetcher reads its source: 0, one plain GET; N, a HEAD then Range
    #: GETs of N bytes, ``remote_fetch_parallel`` at a time, each retried ``remote_fetch_retries``
    #: times, giving up on a request silent for ``remote_fetch_timeout`` seconds.
    remote_fetch_chunk: int = 8 * MiB
    remote_fetch_parallel: int = 4
    remote_fetch_retries: int = 4
    remote_fetch_timeout: float = 120.0
    stall_seconds: float = 60.0
    seed: int = 0
    #: Store uploaded bytes under ``state_dir/blobs``. Off, parts are still checked and hashed,
    #: but nothing is kept: a demo that uploads real media does not fill the disk twice.
    keep_bytes: bool = True
    #: Seconds a new folder or file stays out of folder listings (GET by id sees it at once),
    #: as on the real service, whose listings can lag behind creates.
    listing_lag: float = 0.0
    initial_faults: dict[str, Any] | None = None
    clients: dict[str, ClientRegistration] = field(default_factory=default_clients)
