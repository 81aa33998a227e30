"""Assemble the sandbox app and serve it on one port, in-process (tests) or as a command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from app.sandbox import (
    address,
    control,
    discord,
    frameio_comments,
    frameio_files,
    frameio_stacks,
    frameio_structure,
    ims,
    storage,
)  # fmt: skip
from app.sandbox.config import SandboxConfig
from app.sandbox.context import SANDBOX_KEY, Sandbox
from app.sandbox.fault_responses import ConnectionDropped, fault_response
from app.sandbox.frameio_common import documented_operation, not_emulated
from app.sandbox.responses import ApiError, error_response

log = logging.getLogger(__name__)


@web.middleware
async def _shape_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown /v4 routes answer in Frame.io's error shape; dropped connections stay dropped."""
    if request.path.startswith("/ims/"):
        sb = request.app[SANDBOX_KEY]
        kind = sb.faults.pick("ims")
        if kind is not None:
            try:
                faulty: web.StreamResponse = await fault_response(sb, request, "ims", kind)
                return faulty
            except ConnectionDropped:
                return web.Response(status=499)
    try:
        return await handler(request)
    except ConnectionDropped:
        return web.Response(status=499)  # never reaches the client: the socket is gone
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if not request.path.startswith("/v4/"):
            raise
        documented = documented_operation(request.method, request.path)
        if documented is not None:
            return not_emulated(request, *documented)
        if isinstance(exc, web.HTTPNotFound):
            return error_response(ApiError(404, "Not found"))
        return error_response(ApiError(405, "Method not allowed"))


def build_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(middlewares=[_shape_errors], client_max_size=1024**2 * 4)
    app[SANDBOX_KEY] = sandbox
    for module in (
        ims,
        frameio_structure,
        frameio_files,
        frameio_stacks,
        frameio_comments,
        storage,
        discord,
        control,
    ):
        app.add_routes(module.routes)
    return app


class SandboxServer:
    """A running sandbox on a real loopback socket. ``async with SandboxServer(cfg) as s:``."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._temp: Path | None = None
        if self.config.state_dir is None:
            self._temp = Path(tempfile.mkdtemp(prefix="postflow-sandbox-"))
            self.config.state_dir = self._temp
        self.sandbox = Sandbox(self.config)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    async def start(self) -> str:
        """Bind, then serve; a port that cannot be had raises ``OSError`` (out of range too).

        A failed start cleans up after itself (``async with`` never calls ``stop`` then).
        """
        sock: socket.socket | None = None
        served = False
        try:
            sock = self._bind()
            host, port = sock.getsockname()[:2]
            self.sandbox.base_url = f"http://{host}:{port}"
            if self.config.reuse_port:
                address.remember(self._address_file, self.config.host, port)
            self._runner = web.AppRunner(
                build_app(self.sandbox), access_log=None, handle_signals=False, shutdown_timeout=1.0
            )
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
            served = True
        except BaseException:
            if sock is not None and not served:
                sock.close()  # no site owns it: nobody else will close it
            await self.stop()
            raise
        return self.sandbox.base_url

    @property
    def _address_file(self) -> Path:
        assert self.config.state_dir is not None
        return self.config.state_dir / address.FILE_NAME

    def _bind(self) -> socket.socket:
        """The remembered port first (``reuse_port``), else the configured one (0: any free)."""
        host, wanted = self.config.host, self.config.port
        if self.config.reuse_port and wanted == 0:
            remembered = address.recall(self._address_file, host)
            if remembered is not None:
                try:
                    return address.bind(host, remembered)
                except OSError as exc:
                    log.warning("sandbox: port %d is taken (%s); using a free port", remembered, exc)
        return address.bind(host, wanted)

    async def stop(self) -> None:
        for task in list(self.sandbox.background):
            task.cancel()
        if self.sandbox.background:
            await asyncio.gather(*self.sandbox.background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.sandbox.store.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_forever(config: SandboxConfig) -> None:
    """``postflow sandbox``: print the base URL first, then serve until SIGINT/SIGTERM."""
    server = SandboxServer(config)
    url = await server.start()  # OSError when the address cannot be had: the caller says so
    try:
        print(url, flush=True)
        sb = server.sandbox
        print(
            f"PostFlow sandbox ready: Frame.io API {url}/v4, Adobe IMS {url}/ims, "
            f"client id 'postflow-sandbox', account {sb.default_account_id()}, "
            f"state in {config.state_dir}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C raises instead
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
        print("sandbox stopped", file=sys.stderr, flush=True)
