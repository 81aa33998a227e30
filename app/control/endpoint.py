"""Where a running PostFlow listens for its own commands, and the secret it wants.

On macOS and Linux: a Unix socket in the data folder (owner-only folder and socket, and the
server checks the caller's user id). On Windows, and for a Prometheus scraper when
``control.port`` is set: 127.0.0.1 only. Every request must also carry the per-install secret
(``Authorization: Bearer …``), kept in ``control-secret`` in the data folder, readable by its
owner only; a Prometheus ``credentials_file`` can point at it. ``control.json`` says where the
running app listens; it is removed when the app stops, and a stale one (a crash) is noticed
because nothing answers there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ENDPOINT_FILE = "control.json"
SECRET_FILE = "control-secret"
SOCKET_NAME = "control.sock"
MAX_SOCKET_PATH = 100  # sun_path is 104 bytes on macOS, 108 on Linux


@dataclass(frozen=True)
class Endpoint:
    transport: str  # "unix" or "tcp"
    address: str  # a socket path, or "127.0.0.1:port"
    pid: int
    version: str

    @property
    def base_url(self) -> str:
        return "http://postflow" if self.transport == "unix" else f"http://{self.address}"


def unix_sockets() -> bool:
    return sys.platform != "win32"


def socket_path(data_dir: Path) -> Path:
    """In the data folder, or (a path too long for a socket) a private folder in /tmp named
    after it: the endpoint file says which."""
    path = data_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"postflow-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    os.chmod(short, 0o700)
    if short.stat().st_uid != os.getuid():
        raise PermissionError(f"{short} belongs to another user")
    return short / SOCKET_NAME


def _write_private(path: Path, text: str) -> None:
    """Written whole (a reader never sees half a file), owner-only from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def secret(data_dir: Path) -> str:
    """The per-install secret, made on first use."""
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= 32:
            return text
    value = secrets.token_urlsafe(32)
    _write_private(path, value + "\n")
    return value


def read_secret(data_dir: Path) -> str | None:
    try:
        return (data_dir / SECRET_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def publish(data_dir: Path, endpoint: Endpoint) -> None:
    _write_private(data_dir / ENDPOINT_FILE, json.dumps(asdict(endpoint), indent=2) + "\n")


def withdraw(data_dir: Path, endpoint: Endpoint) -> None:
    """Remove the endpoint file if it is still ours (a newer app may have replaced it)."""
    current = read(data_dir)
    if current is not None and current.pid == endpoint.pid:
        with contextlib.suppress(OSError):
            (data_dir / ENDPOINT_FILE).unlink()


def read(data_dir: Path) -> Endpoint | None:
    try:
        doc = json.loads((data_dir / ENDPOINT_FILE).read_text(encoding="utf-8"))
        return Endpoint(str(doc["transport"]), str(doc["address"]), int(doc["pid"]), str(doc["version"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
