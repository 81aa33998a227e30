"""A sandbox served from a background thread, for sync and async tests alike.

Lives outside conftest.py: test modules import it, and ``from conftest import`` would pick
whichever conftest.py is first on sys.path.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

from app.sandbox.config import SandboxConfig
from app.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO.parent / "shared" / "frameio-v4-openapi.json"


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
        leftovers = asyncio.all_tasks(self._loop)  # connections still open at shutdown
        for task in leftovers:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        for _ in range(3):  # let closed transports run their connection_lost (closes the socket)
            self._loop.run_until_complete(asyncio.sleep(0))
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
