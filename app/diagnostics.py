"""The diagnostics bundle support asks for: one zip instead of a description of the problem.

It holds the settings (secrets never: they live in the keychain, and every text is passed
through the same redaction as the logs, with the tokens, webhook address and control secret
known at that moment added to it), the health checks, a queue summary, the recent logs and
the versions of everything. Not in it: the keychain, the control secret, the queue database.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import sys
import time
import zipfile
from dataclasses import asdict, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from app import __version__
from app.control import endpoint as ep
from app.core.errors import PostFlowError
from app.core.logging_setup import SECRETS
from app.core.settings import Settings

LOG_TAIL = 2 * 1024 * 1024  # bytes of each log file kept (the newest)
PACKAGES = ("PySide6", "qasync", "httpx", "aiohttp", "watchdog", "keyring", "desktop-notifier",
            "prometheus_client", "xxhash", "cryptography", "platformdirs")  # fmt: skip


def _learn_secrets(settings: Settings) -> None:
    """Whatever secret this machine holds is masked, even where no pattern would catch it."""
    SECRETS.add(ep.read_secret(settings.paths.data_dir))
    with contextlib.suppress(Exception):  # no keychain: nothing of it can leak either
        from app.auth.service import backend_for, keychain_service
        from app.auth.token_store import TokenStore

        store = TokenStore(keychain_service(settings), backend_for(settings))
        tokens = store.load()
        if tokens is not None:
            SECRETS.add(tokens.access_token, tokens.refresh_token)
        from app.team.webhook_secret import load_webhook_url, secret_parts

        SECRETS.add(*secret_parts(load_webhook_url(settings)))


def versions() -> dict[str, Any]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return {
        "postflow": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "machine": platform.machine(), "frozen": bool(getattr(sys, "frozen", False)), "packages": found,
    }  # fmt: skip


def settings_doc(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name == "watch_roots":
            value = [asdict(r) for r in value]
        elif f.name == "paths":
            value = {k: str(v) for k, v in asdict(value).items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL))
            data = fh.read()
    except OSError as exc:
        return f"(cannot be read: {exc.strerror or exc})\n"
    text = data.decode("utf-8", errors="replace")
    if size > LOG_TAIL:
        text = text.split("\n", 1)[-1]  # start on a whole line
    return "\n".join(SECRETS.redact(line) for line in text.split("\n"))


def _status(settings: Settings) -> dict[str, Any]:
    from app.control.client import ControlClient
    from app.control.status_document import offline_status

    try:
        client = ControlClient.connect(settings.paths.data_dir)
        if client is not None:
            with client:
                return client.get("/v1/status")
        return offline_status(settings.paths.state_db, settings.watch_roots)
    except PostFlowError as exc:
        return {"error": exc.message}


def write_bundle(settings: Settings, target: Path, lines: list[str], checks: list[dict[str, Any]]) -> Path:
    """Write the zip (whole, or not at all); returns its path."""
    _learn_secrets(settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:

        def put(name: str, text: str) -> None:
            zf.writestr(name, SECRETS.redact(text))

        put("README.txt", f"PostFlow diagnostics, made {time.strftime('%Y-%m-%d %H:%M:%S %z')}.\n"
            "No tokens, client secrets, webhook addresses or the control secret are included.\n")  # fmt: skip
        put("doctor.txt", "\n".join(lines) + "\n")
        put("health.json", json.dumps(checks, indent=2))
        put("versions.json", json.dumps(versions(), indent=2))
        put("settings.json", json.dumps(settings_doc(settings), indent=2, default=str))
        config = settings.paths.config_file
        if config.exists():
            put("config.toml", _tail(config))
        put("status.json", json.dumps(_status(settings), indent=2))
        log_file = settings.paths.log_file
        for path in sorted(log_file.parent.glob(log_file.name + "*")):
            put(f"logs/{path.name}", _tail(path))
    target = target.expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(buffer.getvalue())
    os.replace(tmp, target)
    return target
