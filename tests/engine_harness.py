"""An engine in the test's own loop, signed in against the sandbox, watching a temp folder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests_auth_helpers import sandbox_settings, signed_in_service

from app.auth.service import AuthService
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
        self.auth: AuthService | None = None
        self.engine: EngineService | None = None

    async def start(self, project: str = "Demo Project", folder: str = "Incoming") -> EngineService:
        settings = sandbox_settings(self.sandbox, **self.env)
        if self.auth is None:
            self.auth = await signed_in_service(self.sandbox, self.bus)
        self.engine = EngineService(
            settings, self.auth, self.bus, [make_root(str(self.watch), project, folder)]
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


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
