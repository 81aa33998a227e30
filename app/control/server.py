"""The control endpoint served by the running app (tray or headless): JSON under ``/v1``,
Prometheus text under ``/metrics``. Routes and shapes are documented in docs/automation.md.

Never reachable from the network: a Unix socket (owner-only, caller's user id checked) or
127.0.0.1, and always the per-install secret. Handlers only call ``EngineService`` methods,
like the tray app does: no upload logic here.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from app import __version__
from app.control import endpoint as ep
from app.control.status_document import health_json, iso, job_json, live_status
from app.core.errors import PostFlowError
from app.core.jobs import JobState
from app.engine.metrics import PROMETHEUS_CONTENT_TYPE

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRYABLE = (JobState.FAILED, JobState.CANCELLED)
CANCELLABLE = (JobState.PENDING, JobState.PAUSED, JobState.FAILED, JobState.UPLOADING)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def peer_uid(request: web.Request) -> int | None:
    """The user id of the process on the other end of a Unix socket (None: not known)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != getattr(socket, "AF_UNIX", None):
        return None
    try:
        if sys.platform.startswith("linux"):
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            return int(struct.unpack("3i", creds)[1])
        if sys.platform == "darwin":  # LOCAL_PEERCRED: struct xucred {u_int version; uid_t uid; ...}
            creds = sock.getsockopt(0, 0x001, struct.calcsize("2I"))
            return int(struct.unpack("2I", creds[:8])[1])
    except OSError:
        return None
    return None


class ControlServer:
    def __init__(self, engine: Any, data_dir: Path, *, tcp_port: int = 0, demo: bool = False) -> None:
        """``tcp_port``: also listen on 127.0.0.1:port (0: not, except on Windows, where a free
        port is the only transport)."""
        self._engine = engine
        self._data_dir = data_dir
        self._tcp_port = tcp_port
        self._demo = demo
        self._secret = ep.secret(data_dir)
        self._runner: web.AppRunner | None = None
        self.endpoint: ep.Endpoint | None = None
        self.tcp_address: str | None = None

    async def start(self) -> ep.Endpoint:
        app = web.Application(middlewares=[self._guard])
        app.add_routes([
            web.get("/v1/status", self._status),
            web.get("/v1/queue", self._queue),
            web.get("/v1/health", self._health),
            web.get("/v1/jobs/{id}", self._job),
            web.post("/v1/pause", self._pause),
            web.post("/v1/resume", self._resume),
            web.post("/v1/retry", self._retry),
            web.post("/v1/cancel", self._cancel),
            web.get("/metrics", self._metrics),
        ])  # fmt: skip
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        main: ep.Endpoint
        if ep.unix_sockets():
            path = ep.socket_path(self._data_dir)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a crash left it; the instance lock says nobody else serves here
            old = os.umask(0o177)  # created owner-only: no window where another user can connect
            try:
                await web.UnixSite(self._runner, str(path)).start()
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            main = ep.Endpoint("unix", str(path), os.getpid(), __version__)
        if self._tcp_port or not ep.unix_sockets():
            site = web.TCPSite(self._runner, "127.0.0.1", self._tcp_port, reuse_address=False)
            await site.start()
            port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
            self.tcp_address = f"127.0.0.1:{port}"
            if not ep.unix_sockets():
                main = ep.Endpoint("tcp", self.tcp_address, os.getpid(), __version__)
        self.endpoint = main
        ep.publish(self._data_dir, main)
        also = f" and {self.tcp_address}" if self.tcp_address and main.transport == "unix" else ""
        log.info("control endpoint: %s %s%s", main.transport, main.address, also)
        return main

    async def stop(self) -> None:
        if self.endpoint is not None:
            ep.withdraw(self._data_dir, self.endpoint)
            if self.endpoint.transport == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(self.endpoint.address)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- who may ask ----
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        uid = peer_uid(request)
        if uid is not None and hasattr(os, "getuid") and uid != os.getuid():
            log.warning("control endpoint: refused a request from user id %d", uid)
            return _error(403, "forbidden", "This PostFlow belongs to another user.")
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {self._secret}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(
                401, "unauthorized", f"Send the secret in {ep.SECRET_FILE} as 'Authorization: Bearer …'."
            )
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except PostFlowError as exc:
            return _error(409, "refused", exc.message)

    # ---- reading ----
    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(await live_status(self._engine, self._demo))

    async def _queue(self, request: web.Request) -> web.Response:
        """The old dashboard's ``/api/queue/stats``: counts, bytes and speed."""
        doc = await live_status(self._engine, self._demo)
        return web.json_response({"schema": "postflow.queue/1", "generated_at": doc["generated_at"],
                                  **doc["queue"], "paused": doc["engine"]["paused"]})  # fmt: skip

    async def _health(self, request: web.Request) -> web.Response:
        """``?check=1`` runs every check now (what ``postflow doctor`` asks for)."""
        fresh = request.query.get("check") in ("1", "true", "yes")
        checks = await self._engine.check_health() if fresh else self._engine.health()
        return web.json_response({
            "schema": "postflow.health/1", "generated_at": iso(time.time()),
            "ok": all(h.ok for h in checks), "checks": [health_json(h) for h in checks],
        })  # fmt: skip

    async def _job(self, request: web.Request) -> web.Response:
        job_id = _int(request.match_info["id"])
        view = None if job_id is None else await self._engine.job(job_id)
        if view is None:
            return _error(404, "not_found", f"No job {request.match_info['id']}.")
        return web.json_response(job_json(view.job, view))

    async def _metrics(self, request: web.Request) -> web.Response:
        self._engine.metrics.observe_snapshot(await self._engine.snapshot())
        return web.Response(body=self._engine.metrics.prometheus_text(),
                            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})  # fmt: skip

    # ---- acting ----
    async def _pause(self, request: web.Request) -> web.Response:
        await self._engine.pause_all()
        return web.json_response({"ok": True, "paused": True})

    async def _resume(self, request: web.Request) -> web.Response:
        await self._engine.resume_all()
        return web.json_response({"ok": True, "paused": False})

    async def _retry(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body.get("all") is True:
            failed = [j.id for j in await self._engine.jobs() if j.state is JobState.FAILED]
            await self._engine.retry_failed()
            return web.json_response({"ok": True, "retried": failed})
        job_id = _int(body.get("id"))
        if job_id is None:
            return _error(400, "bad_request", 'Send {"all": true} or {"id": <job id>}.')
        view = await self._engine.job(job_id)
        if view is None:
            return _error(404, "not_found", f"No job {job_id}.")
        if view.job.state not in RETRYABLE:
            return _error(409, "refused", f"Job {job_id} is {view.job.state.value}: only failed or "
                          "cancelled jobs can be retried.")  # fmt: skip
        await self._engine.retry(job_id)
        return web.json_response({"ok": True, "retried": [job_id]})

    async def _cancel(self, request: web.Request) -> web.Response:
        body = await _body(request)
        job_id = _int(body.get("id"))
        if job_id is None:
            return _error(400, "bad_request", 'Send {"id": <job id>}.')
        view = await self._engine.job(job_id)
        if view is None:
            return _error(404, "not_found", f"No job {job_id}.")
        if view.job.state not in CANCELLABLE:
            return _error(409, "refused", f"Job {job_id} is {view.job.state.value}: nothing to cancel.")
        await self._engine.cancel(job_id)
        return web.json_response({"ok": True, "cancelled": job_id})


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        doc = await request.json()
    except ValueError:
        text = '{"error": {"code": "bad_request", "message": "The body is not JSON."}}'
        raise web.HTTPBadRequest(text=text, content_type="application/json") from None
    return doc if isinstance(doc, dict) else {}
