"""The sandbox's listening socket, and the port it remembers between runs (``reuse_port``).

A demo that restarts on the same port keeps one base URL: the app's settings, its tokens' issuer
and any browser tab that names it stay valid. The port is only a preference: when another
program holds it, the sandbox takes a free one and says so.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)
FILE_NAME = "address.json"


def bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket; ``OSError`` for every reason it cannot be had (a port out of range too).

    Python's own ``bind`` raises ``OverflowError`` for a port outside 0-65535; callers should
    have one exception to catch, so that case is an ``OSError`` (``EINVAL``) here.
    """
    if not 0 <= port <= 65535:
        raise OSError(errno.EINVAL, f"port {port} is out of range (0-65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":  # there SO_REUSEADDR would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:  # restart at once on a port whose old connections linger in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def recall(path: Path, host: str) -> int | None:
    """The port bound last time on this host, if one was remembered (anything odd: None)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    port = doc.get("port") if isinstance(doc, dict) else None
    if doc.get("host") != host or isinstance(port, bool) or not isinstance(port, int):
        return None
    return port if 0 < port <= 65535 else None


def remember(path: Path, host: str, port: int) -> None:
    """Write the address atomically; failing to is worth a warning, never a failed start."""
    tmp = path.with_name(f"{path.name}.tmp")
    try:
        tmp.write_text(json.dumps({"host": host, "port": port}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("sandbox: could not remember its port in %s: %s", path, exc)
