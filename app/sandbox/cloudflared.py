"""A stand-in for ``cloudflared tunnel --url ...`` (a quick tunnel), for tests and the demo.

Run as ``python -m app.sandbox.cloudflared tunnel [flags]``. It takes the flags PostFlow
passes (and refuses others as cloudflared does), logs to stderr only, with the same banner,
serves the metrics endpoints (``/ready``, ``/quicktunnel``, ``/metrics``) on ``--metrics``,
and stands for Cloudflare's edge with a local port that forwards every request to ``--url``:
at most 200 in flight (then 429), 502 when the origin does not answer. Its "public hostname"
is that port on 127.0.0.1, new on every start, as a quick tunnel's hostname is. SIGTERM stops
it gracefully within ``--grace-period``.

``POSTFLOW_STANDIN_MODE`` chooses a failure to play: ``blocked`` (port 7844 unreachable: it
never becomes ready), ``rate_limited`` (quick tunnel creation refused with 429: exits 1),
``crash`` (exits 1 right after the banner). ``POSTFLOW_STANDIN_READY_DELAY`` delays readiness.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from typing import NoReturn

import aiohttp
from aiohttp import web

VERSION = "2024.12.2"
MAX_IN_FLIGHT = 200
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection", "host",
              "content-length"}  # fmt: skip


def _log(level: str, text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        sys.stderr.write(f"{stamp} {level} {text}\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass  # nobody reads it any more: a quiet cloudflared would not notice either


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        flag = message.split(":")[-1].strip() if "unrecognized" in message else message
        sys.stderr.write(f"Incorrect Usage: flag provided but not defined: {flag}\n")
        raise SystemExit(1)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="cloudflared", add_help=False)
    parser.add_argument("--version", "-v", action="store_true")
    parser.add_argument("command", nargs="?")
    parser.add_argument("--no-autoupdate", action="store_true")
    parser.add_argument("--config")
    parser.add_argument("--metrics", default="127.0.0.1:0")
    parser.add_argument("--loglevel", default="info")
    parser.add_argument("--grace-period", default="30s")
    parser.add_argument("--url")
    parser.add_argument("--protocol", default="auto")
    return parser.parse_args(argv)


class StandIn:
    def __init__(self, origin: str, grace: float) -> None:
        self.origin = origin.rstrip("/")
        self.grace = grace
        self.in_flight = 0
        self.total = 0
        self.ready = False
        self.edge_port = 0
        self.connector = str(uuid.uuid4())
        self.session: aiohttp.ClientSession | None = None

    # ---- metrics ----
    async def ready_route(self, request: web.Request) -> web.Response:
        status = 200 if self.ready else 503
        body = {"status": status, "readyConnections": 1 if self.ready else 0, "connectorId": self.connector}
        return web.json_response(body, status=status)

    async def quicktunnel(self, request: web.Request) -> web.Response:
        return web.json_response({"hostname": f"127.0.0.1:{self.edge_port}"})

    async def metrics(self, request: web.Request) -> web.Response:
        text = (
            "# HELP cloudflared_tunnel_total_requests Amount of requests proxied through all the tunnels\n"
            "# TYPE cloudflared_tunnel_total_requests counter\n"
            f"cloudflared_tunnel_total_requests {self.total}\n"
            "# HELP cloudflared_tunnel_concurrent_requests_per_tunnel Concurrent requests proxied\n"
            "# TYPE cloudflared_tunnel_concurrent_requests_per_tunnel gauge\n"
            f"cloudflared_tunnel_concurrent_requests_per_tunnel {self.in_flight}\n"
            f'build_info{{goversion="go1.22",revision="standin",version="{VERSION}"}} 1\n'
        )
        return web.Response(text=text, content_type="text/plain")

    # ---- the edge ----
    async def forward(self, request: web.Request) -> web.StreamResponse:
        if not self.ready:
            return web.Response(status=530, text="error code: 1033")
        if self.in_flight >= MAX_IN_FLIGHT:
            return web.Response(status=429, text="Too Many Requests")
        self.in_flight += 1
        self.total += 1
        try:
            return await self._forward(request)
        finally:
            self.in_flight -= 1

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            async with self.session.request(
                request.method, self.origin + request.rel_url.raw_path_qs, headers=headers,
                data=await request.read() or None, allow_redirects=False,
            ) as upstream:  # fmt: skip
                out = web.StreamResponse(status=upstream.status)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        out.headers[key] = value
                if upstream.content_length is not None:
                    out.content_length = upstream.content_length
                await out.prepare(request)
                if request.method != "HEAD":
                    async for chunk in upstream.content.iter_chunked(1 << 20):
                        await out.write(chunk)
                await out.write_eof()
                return out
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError):
            _log(
                "ERR",
                f'Request failed error="Unable to reach the origin service" originService={self.origin}',
            )
            return web.Response(status=502, text="Bad gateway")


async def _serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    bound: int = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, bound


def _seconds(text: str) -> float:
    text = text.strip()
    return float(text[:-1]) if text.endswith("s") else float(text)


async def run(args: argparse.Namespace) -> int:
    mode = os.environ.get("POSTFLOW_STANDIN_MODE", "ok")
    ready_delay = float(os.environ.get("POSTFLOW_STANDIN_READY_DELAY", "0.2"))
    if args.config and not os.path.exists(args.config):
        _log("ERR", f"Cannot determine default configuration path. No file [{args.config}] in location")
        return 1
    if not args.url:
        _log("ERR", "no origin URL given (--url)")
        return 1
    _log("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick "
         "way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime "
         "guarantee, are subject to the Cloudflare Online Services Terms of Use "
         "(https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your "
         "use of Tunnels for violations of such terms.")  # fmt: skip
    _log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if mode == "rate_limited":
        _log("ERR", "Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character "
             "'e' looking for beginning of value\" status_code=\"429 Too Many Requests\"")  # fmt: skip
        _log("ERR", "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value")
        return 1
    stand_in = StandIn(args.url, _seconds(args.grace_period))
    edge = web.Application()
    edge.router.add_route("*", "/{tail:.*}", stand_in.forward)
    edge_runner, stand_in.edge_port = await _serve(edge, "127.0.0.1", 0)
    metrics = web.Application()
    metrics.router.add_get("/ready", stand_in.ready_route)
    metrics.router.add_get("/quicktunnel", stand_in.quicktunnel)
    metrics.router.add_get("/metrics", stand_in.metrics)
    host, _, port = args.metrics.rpartition(":")
    try:
        metrics_runner, metrics_port = await _serve(metrics, host or "127.0.0.1", int(port or 0))
    except OSError as exc:
        _log("ERR", f"failed to bind the metrics server on {args.metrics}: {exc.strerror}")
        await edge_runner.cleanup()
        return 1
    url = f"http://127.0.0.1:{stand_in.edge_port}"
    box = "+" + "-" * 92 + "+"
    _log("INF", box)
    _log(
        "INF",
        "|  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |",
    )
    _log("INF", f"|  {url:<90}|")
    _log("INF", box)
    _log("INF", f"Version {VERSION} (PostFlow stand-in)")
    _log("INF", f"Starting metrics server on 127.0.0.1:{metrics_port}/metrics")
    if mode == "crash":
        _log("ERR", "panic: stand-in asked to crash")
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stand_in.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        if mode == "blocked":
            blocked = asyncio.ensure_future(_blocked_logs(stop))
        else:
            await asyncio.sleep(ready_delay)
            stand_in.ready = True
            _log("INF", f"Registered tunnel connection connIndex=0 connection={stand_in.connector} event=0 "
                 "ip=198.41.200.13 location=ams01 protocol=quic")  # fmt: skip
        await stop.wait()
        _log("INF", "Initiating graceful shutdown due to signal terminated ...")
        deadline = time.monotonic() + stand_in.grace
        while stand_in.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if mode == "blocked":
            blocked.cancel()
    finally:
        await stand_in.session.close()
        await edge_runner.cleanup()
        await metrics_runner.cleanup()
    _log("INF", "Tunnel server stopped")
    return 0


async def _blocked_logs(stop: asyncio.Event) -> None:
    while not stop.is_set():
        _log("ERR", 'Failed to dial a quic connection error="failed to dial to edge with quic: timeout: '
             'no recent network activity" connIndex=0 event=0 ip=198.41.192.7')  # fmt: skip
        _log("ERR", 'Unable to establish connection with Cloudflare edge error="DialContext error: dial tcp '
             '198.41.192.167:7844: i/o timeout" connIndex=0 event=0 ip=198.41.192.167')  # fmt: skip
        _log("INF", "Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.167")
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.version:
        print(f"cloudflared version {VERSION} (built standin) [PostFlow stand-in]")
        return 0
    if args.command != "tunnel":
        sys.stderr.write(f"Incorrect Usage: unknown command {args.command!r}\n")
        return 1
    return asyncio.run(run(args))


def command() -> list[str]:
    """How to run this stand-in where PostFlow would run cloudflared."""
    return [sys.executable, "-m", "app.sandbox.cloudflared"]


if __name__ == "__main__":
    raise SystemExit(main())
