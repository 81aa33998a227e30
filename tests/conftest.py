"""Shared fixtures: an isolated environment per test and a sandbox on a real loopback socket."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # never the real keychain

from support_keyrings import MemoryKeyring  # noqa: E402

from app.sandbox.config import SandboxConfig  # noqa: E402
from app.sandbox.server import SandboxServer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO.parent / "shared" / "frameio-v4-openapi.json"


@pytest.fixture(autouse=True)
def test_keyring() -> Iterator[MemoryKeyring]:
    """Each test gets its own in-memory keychain (capped like Windows' entries)."""
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config, data and logs in a temp dir; no POSTFLOW_* or legacy variables leak in."""
    for name in list(os.environ):
        if name.startswith("POSTFLOW_") or name in (
            "FRAMEIO_CLIENT_ID",
            "FRAMEIO_ACCOUNT_ID",
            "LOG_LEVEL",
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "pf"
    monkeypatch.setenv("POSTFLOW_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("POSTFLOW_DATA_DIR", str(home / "data"))
    return home


class RunningSandbox:
    """A sandbox served from its own thread and event loop, plus a sync control client."""

    def __init__(self, config: SandboxConfig) -> None:
        self.server = SandboxServer(config)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox", daemon=True)
        self._stop: asyncio.Event | None = None
        self.url = ""
        self.http: httpx.Client | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self.url = await self.server.start()
            self._ready.set()
            await self._stop.wait()
            await self.server.stop()

        self._loop.run_until_complete(main())
        self._loop.close()

    def start(self) -> RunningSandbox:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("sandbox did not start")
        self.http = httpx.Client(base_url=self.url, timeout=30)
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    # ---- conveniences for tests ----
    @property
    def sandbox(self) -> Any:
        return self.server.sandbox

    def token(self, **kw: Any) -> str:
        assert self.http is not None
        return str(self.http.post("/_sandbox/token", json=kw).json()["access_token"])

    def control(self, path: str, doc: dict[str, Any] | None = None) -> Any:
        assert self.http is not None
        response = self.http.post(path, json=doc or {}) if doc is not None else self.http.get(path)
        response.raise_for_status()
        return response.json()

    def files(self) -> list[dict[str, Any]]:
        return list(self.control("/_sandbox/files")["files"])


@pytest.fixture
def sandbox_config(tmp_path: Path) -> SandboxConfig:
    """Override in a test module to change how the sandbox starts."""
    return SandboxConfig(state_dir=tmp_path / "sandbox-state", transcode_delay=0.05)


@pytest.fixture
def sandbox(sandbox_config: SandboxConfig) -> Iterator[RunningSandbox]:
    running = RunningSandbox(sandbox_config).start()
    yield running
    running.stop()


@pytest.fixture
def api(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox with a valid bearer token."""
    with httpx.Client(
        base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token()}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def seed_ids(api: httpx.Client) -> dict[str, str]:
    account = api.get("/v4/accounts").json()["data"][0]["id"]
    ws = api.get(f"/v4/accounts/{account}/workspaces").json()["data"][0]["id"]
    projects = api.get(f"/v4/accounts/{account}/workspaces/{ws}/projects").json()["data"]
    demo = next(p for p in projects if p["name"] == "Demo Project")
    return {
        "account": account,
        "workspace": ws,
        "project": demo["id"],
        "root": demo["root_folder_id"],
    }


def python_exe() -> str:
    return sys.executable
