"""Pull mode's range server against nginx, on loopback, in one run.

    .venv/bin/python bench/range_server.py [--size-mib 2048] [--readers 16]

Builds a file of SIZE MiB, publishes it with the range server (its own thread and event loop,
as in the app) and serves the same file with nginx (Debian package ``nginx``; the bench starts
its own instance from a temporary config). ``curl`` then reads it from each: one stream of the
whole file, and READERS parallel range readers that split it. Prints each throughput and the
ratio range server / nginx (target >= 1.0). Not a test: run by hand, figures go to
docs/performance.md.

``--one-core`` runs everything (both servers, their threads, and every curl) on one core, so
that the figures measure what each server costs per byte and nothing else: on two cores a
single stream's throughput also depends on whether the scheduler puts the sender and curl on
the same core, which changes from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.engine.bandwidth import BandwidthLimiter  # noqa: E402
from app.pull.range_server import RangeServer  # noqa: E402

MiB = 1 << 20


def make_file(path: Path, size: int) -> None:
    block = os.urandom(64 * MiB)
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


class ServerThread:
    """The range server on its own loop, like the app's (the loop is not curl's), with the
    app's pacer: the shared bandwidth limiter, here with no limit set (the default)."""

    def __init__(self) -> None:
        self.server = RangeServer(max_in_flight=64, pacer=BandwidthLimiter(0))
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.server.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def publish(self, path: Path) -> str:
        pub = self.server.publish(str(path), lifetime=3600)
        return f"http://127.0.0.1:{self.port}{self.server.url_path(pub)}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_nginx(root: Path, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = 18080 + os.getpid() % 1000
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""
daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fcgi;
  uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
    deadline = time.monotonic() + 10
    while subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start: see " + str(work / "error.log"))
        time.sleep(0.1)
    return process, port


def one_stream(url: str, size: int) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=True)
    return size / (time.perf_counter() - started) / MiB


def parallel_ranges(url: str, size: int, readers: int) -> float:
    share = -(-size // readers)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["curl", "-s", "-o", "/dev/null", "-r", f"{n * share}-{min(size, (n + 1) * share) - 1}", url]
        )
        for n in range(readers)
    ]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("a range reader failed")
    return size / (time.perf_counter() - started) / MiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--one-core", action="store_true", help="servers and curl on one core")
    args = parser.parse_args()
    if args.one_core:  # before any thread or child exists: they all inherit it
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if shutil.which("nginx") is None or shutil.which("curl") is None:
        sys.exit("nginx and curl are needed: apt-get install nginx curl")
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="postflow-bench-range-"))
    media = work / "media"
    media.mkdir()
    path = media / "render.mov"
    make_file(path, size)
    for readable in (work, media, path):  # nginx's workers run as an unprivileged user
        readable.chmod(0o755 if readable.is_dir() else 0o644)
    ours = ServerThread()
    nginx, port = start_nginx(media, work / "nginx")
    try:
        ours_url, nginx_url = ours.publish(path), f"http://127.0.0.1:{port}/render.mov"
        for url in (ours_url, nginx_url):  # warm the page cache and both servers
            one_stream(url, size)
        rows = []
        measures = {
            "1 stream": lambda u: one_stream(u, size),
            f"{args.readers} range readers": lambda u: parallel_ranges(u, size, args.readers),
        }
        for name, measure in measures.items():
            # Interleaved, so a machine that slows down for a while slows both sides alike.
            mine, theirs = [], []
            for _ in range(3):
                mine.append(measure(ours_url))
                theirs.append(measure(nginx_url))
            a, b = max(mine), max(theirs)
            rows.append((name, a, b))
        where = "one core" if args.one_core else f"{len(os.sched_getaffinity(0))} cores"
        print(f"{args.size_mib} MiB file over loopback, {where}, best of 3 (interleaved):")
        for name, a, b in rows:
            ratio = f"ratio {a / b:.2f} (target >= 1.0)"
            print(f"  {name}: range server {a:,.0f} MiB/s, nginx {b:,.0f} MiB/s, {ratio}")
    finally:
        ours.stop()
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
