"""Shared fixtures: an isolated environment per test and a sandbox on a real loopback socket."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # never the real keychain

from support_keyrings import MemoryKeyring  # noqa: E402
from support_sandbox import RunningSandbox  # noqa: E402

from app.sandbox.config import SandboxConfig  # noqa: E402


@pytest.fixture(autouse=True)
def collected_garbage() -> Iterator[None]:
    """Collect cyclic garbage after every test, so an unclosed socket or file is reported
    (filterwarnings = error) by the test that leaked it, not by whichever test happens to be
    running when the collector next wakes up."""
    yield
    gc.collect()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Qt tests last: once QtWebEngine and a qasync loop have run in this process, pytest-qt
    processes Qt events after every later test, and Qt state left behind (socket notifiers of a
    closed loop) must not meet the sockets of unrelated tests."""
    gui = [item for item in items if item.nodeid.startswith("tests/gui/")]
    items[:] = [item for item in items if item not in gui] + gui
