"""``postflow publish FILE [--tunnel]``: serve one file as pull mode would, until Ctrl-C.

Support uses it to test a user's network: the URL is printed alone on the first line of
stdout (scripts read it), everything else goes to stderr. With ``--tunnel`` the URL is the
public one through cloudflared, so "can Frame.io reach this machine?" is one command away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from app.core.errors import ConfigError, PostFlowError
from app.core.settings import Settings
from app.pull.cloudflared_binary import cloudflared_command
from app.pull.range_server import RangeServer
from app.pull.tunnel import TunnelManager, TunnelStatus

log = logging.getLogger(__name__)


async def publish(settings: Settings, path: Path, *, tunnel: bool, lifetime: float) -> int:
    file = path.expanduser()
    if not file.is_file():
        raise ConfigError(f"{file} is not a file that can be published.")
    if not os.access(file, os.R_OK):
        raise ConfigError(f"{file} cannot be read by PostFlow (check its permissions).")
    server = RangeServer()
    port = await server.start()
    manager: TunnelManager | None = None
    try:
        publication = server.publish(str(file), lifetime)
        base = f"http://127.0.0.1:{port}"
        if tunnel:
            manager = TunnelManager(
                origin_port=port, state_dir=settings.paths.data_dir / "publish",
                command=cloudflared_command(settings.cloudflared_path, settings.sandbox),
                on_status=_say_status,
            )  # fmt: skip
            manager.start()
            status = await manager.wait_ready(settings.pull_ready_timeout)
            assert status.url is not None
            base = status.url
        print(base + server.url_path(publication), flush=True)
        _say(f"Serving {file.name} ({publication.size:,} bytes) until Ctrl-C"
             f"{' through the tunnel' if tunnel else ' on this computer only'}.")  # fmt: skip
        await _until_stopped(publication.expires_at - time.monotonic())
        served = server.served.get(publication.token)
        if served is not None:
            _say(f"Stopped: {served.requests} request(s), {served.covered:,} distinct bytes sent.")
        return 0
    except PostFlowError:
        raise
    finally:
        if manager is not None:
            await manager.stop()
        await server.stop()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _say_status(status: TunnelStatus) -> None:
    if status.message:
        _say(f"tunnel: {status.message}")


async def _until_stopped(lifetime: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, lifetime)):
            await stop.wait()
