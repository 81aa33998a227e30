"""Logging: a rotating file always, the console in headless/CLI mode, secrets never.

Redaction works on the formatted line, so a token that slips into any message (an exception from
a library, a URL with ``code=``) is masked before it reaches a handler.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|code|code_verifier|token"
        r"|X-Amz-Signature)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
    ),
    re.compile(r"(?i)(/api(?:/v\d+)?/webhooks/\d+/)[A-Za-z0-9_.\-]+"),  # Discord's and stand-ins
)
REDACTED = "[redacted]"


class SecretRegistry:
    """Exact secret strings known at run time (tokens we hold); masked wherever they appear."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 8)

    def discard(self, *secrets: str) -> None:
        """No longer worth masking (a pull link that is dead for good): the set stays small."""
        with self._lock:
            self._secrets.difference_update(secrets)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


SECRETS = SecretRegistry()


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return SECRETS.redact(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files readable by their owner only: they name clients' projects and files."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):  # a file system without modes: nothing to do
            os.chmod(self.baseFilename, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_installed: list[logging.Handler] = []


def setup_logging(level: str, log_file: Path | None, console: bool) -> None:
    """Install handlers on the root logger once; calling again replaces them."""
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    formatter = RedactingFormatter(_FORMAT)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(log_file.parent, 0o700)
        file_handler = PrivateRotatingFileHandler(
            log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        _installed.append(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        _installed.append(stream)
    for handler in _installed:
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
