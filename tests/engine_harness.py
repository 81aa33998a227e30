"""An engine in the test's own loop, signed in against the sandbox, watching a temp folder."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests_auth_helpers import sandbox_settings, signed_in_service

from app.composition import Connections
from app.core.events import EventBus
from app.core.settings import make_root
from app.engine.service import EngineService


async def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Harness:
    def __init__(self, sandbox: Any, watch: Path, **env: str) -> None:
        self.sandbox = sandbox
        self.watch = watch
        self.env = {"POSTFLOW_STABLE_SECONDS": "0.3", "POSTFLOW_SCAN_INTERVAL": "0.2", **env}
        self.events: list[Any] = []
        self.bus = EventBus()
        self.bus.subscribe(self.events.append)
        self.auth: Connections | None = None
        self.engine: EngineService | None = None
        self.root_options: dict[str, Any] = {}  # e.g. done_marker

    async def start(self, project: str = "Demo Project", folder: str = "Incoming") -> EngineService:
        settings = sandbox_settings(self.sandbox, **self.env)
        if self.auth is None:
            self.auth = await signed_in_service(self.sandbox, self.bus)
        self.engine = EngineService(
            settings,
            self.auth.auth,
            self.auth.frameio,
            self.bus,
            [replace(make_root(str(self.watch), project, folder), **self.root_options)],
        )
        await self.engine.start()
        return self.engine

    async def restart(self) -> EngineService:
        assert self.engine is not None
        await self.engine.stop()
        return await self.start()

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
        if self.auth is not None:
            await self.auth.aclose()

    def remote_files(self) -> list[dict[str, Any]]:
        return list(self.sandbox.files())

    def delivered(self) -> dict[str, dict[str, Any]]:
        return {f["path"]: f for f in self.remote_files() if f["status"] in ("uploaded", "transcoded")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class EngineProcess:
    """``postflow run --headless`` in its own process, as an ingest machine runs it."""

    def __init__(self, sandbox: Any, home: Path, watch: Path, keyring_file: Path, **env: str) -> None:
        self.log_path = home / "engine.log"
        self.env = {
            **os.environ,
            "POSTFLOW_SANDBOX": "1",
            "POSTFLOW_SANDBOX_URL": sandbox.url,
            "POSTFLOW_CONFIG_DIR": str(home / "config"),
            "POSTFLOW_DATA_DIR": str(home / "data"),
            "POSTFLOW_STABLE_SECONDS": "1",
            "POSTFLOW_SCAN_INTERVAL": "0.5",
            "POSTFLOW_LISTING_SETTLE": "1",  # the sandbox's listings do not lag unless told to
            "PYTHONPATH": str(Path(__file__).resolve().parent),
            "PYTHON_KEYRING_BACKEND": "support_keyrings.JsonFileKeyring",
            "POSTFLOW_TEST_KEYRING": str(keyring_file),
            **env,
        }
        self.args = [sys.executable, "-m", "app", "run", "--headless", "--watch", str(watch),
                     "--project", "Demo Project", "--folder", "Incoming"]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def ready(self) -> bool:
        return self.log().count("PostFlow is running headless") >= self.starts

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def sign_in_into_file_keyring(sandbox: Any, keyring_file: Path) -> None:
    """Sign in once, tokens written where the engine process will look."""
    import keyring
    from support_keyrings import JsonFileKeyring

    previous = keyring.get_keyring()
    os.environ["POSTFLOW_TEST_KEYRING"] = str(keyring_file)
    keyring.set_keyring(JsonFileKeyring())
    try:
        auth = await signed_in_service(sandbox)
        await auth.aclose()
    finally:
        keyring.set_keyring(previous)
        del os.environ["POSTFLOW_TEST_KEYRING"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int, seed: int) -> Path:
    """Deterministic bytes, written in slices so a 1 GiB file never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    block = rng.randbytes(min(size, 4 * 1024 * 1024)) if size else b""
    with path.open("wb") as fh:
        left = size
        counter = 0
        while left > 0:
            piece = block[: min(left, len(block))]
            fh.write(counter.to_bytes(8, "little") + piece[8:] if len(piece) > 8 else piece)
            left -= len(piece)
            counter += 1
    return path


def expected_from_disk(watch: Path) -> dict[str, str]:
    return {
        "Demo Project/Incoming/" + p.relative_to(watch).as_posix(): file_sha256(p)
        for p in watch.rglob("*")
        if p.is_file() and p.stat().st_size > 0
    }


def check_exactly_once(sandbox: Any, expected: dict[str, str]) -> None:
    remote = sandbox.files()
    placeholders = [f for f in remote if f["status"] == "created"]
    assert placeholders == [], f"placeholders left: {[f['path'] for f in placeholders]}"
    by_path: dict[str, list[str]] = {}
    for f in remote:
        by_path.setdefault(f["path"], []).append(f["sha256"])
    duplicates = {p: len(v) for p, v in by_path.items() if len(v) > 1}
    assert duplicates == {}
    assert {p: v[0] for p, v in by_path.items()} == expected
