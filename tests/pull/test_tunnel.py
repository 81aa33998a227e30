"""The tunnel manager against the stand-in cloudflared: start, learn the URL, restart, fail in words."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from engine_harness import wait_for

from app.pull import child_process
from app.pull.cloudflared_binary import find_cloudflared
from app.pull.range_server import RangeServer
from app.pull.tunnel import (
    TunnelManager,
    TunnelState,
    TunnelStatus,
    TunnelUnavailable,
    explain_failure,
    public_url,
)
from app.sandbox import cloudflared


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[tuple[RangeServer, Path]]:
    server = RangeServer()
    await server.start()
    media = tmp_path / "clip.mov"
    media.write_bytes(os.urandom(200_000))
    yield server, media
    await server.stop()


def _manager(server: RangeServer, state: Path, seen: list[TunnelStatus], **env: str) -> TunnelManager:
    return TunnelManager(origin_port=server.port, state_dir=state, command=cloudflared.command(),
                         on_status=seen.append, env={**os.environ, **env}, ready_budget=10)  # fmt: skip


async def test_the_tunnel_serves_a_published_file_and_a_killed_one_comes_back_with_a_new_url(
    origin: tuple[RangeServer, Path], tmp_path: Path
) -> None:
    server, media = origin
    seen: list[TunnelStatus] = []
    manager = _manager(server, tmp_path / "state", seen, TUNNEL_ORIGIN_CERT="/users/own/cert.pem")
    manager.start()
    try:
        status = await manager.wait_ready(20)
        publication = server.publish(str(media), 60)
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                status.url + server.url_path(publication), headers={"Range": "bytes=10-19"}
            )
        assert answer.status_code == 206 and answer.content == media.read_bytes()[10:20]
        assert manager.process is not None
        argv = child_process.command_line(manager.process.pid) or ""
        assert "--no-autoupdate" in argv and f"--config {manager.config_file}" in argv
        assert f"--url http://127.0.0.1:{server.port}" in argv and "--grace-period 5s" in argv
        environ = Path(f"/proc/{manager.process.pid}/environ").read_bytes()
        assert b"TUNNEL_ORIGIN_CERT" not in environ  # a user's TUNNEL_* must not steer our tunnel
        assert child_process.read_pid(manager.pidfile) == manager.process.pid
        manager.process.kill()
        await wait_for(lambda: manager.status.generation == 2 and manager.status.state is TunnelState.READY,
                       30, "a restarted tunnel")  # fmt: skip
        assert manager.status.url != status.url and manager.restarts == 1
        failed = [s for s in seen if s.state is TunnelState.FAILED]
        assert failed and "stopped from outside (signal 9)" in (failed[0].message or "")
    finally:
        await manager.stop()
    assert manager.status.state is TunnelState.OFF and not manager.pidfile.exists()


@pytest.mark.parametrize(
    ("mode", "words"),
    [("blocked", "port 7844"), ("rate_limited", "too many requests"), ("crash", "exit code 1")],
)
async def test_a_tunnel_that_cannot_come_up_says_why(
    origin: tuple[RangeServer, Path], tmp_path: Path, mode: str, words: str
) -> None:
    server, _ = origin
    seen: list[TunnelStatus] = []
    manager = _manager(server, tmp_path / "state", seen, POSTFLOW_STANDIN_MODE=mode)
    manager.ready_budget = 1.5
    manager.start()
    try:
        with pytest.raises(TunnelUnavailable):
            await manager.wait_ready(0.5)  # still starting: the wait says so, it does not hang
        await wait_for(lambda: manager.status.state is TunnelState.FAILED, 30, "the failure")
        assert words in (manager.status.message or "").lower()
        assert manager.status.action
        with pytest.raises(TunnelUnavailable) as caught:
            await manager.wait_ready(0.2)
        assert words in caught.value.message.lower() and caught.value.retryable
    finally:
        await manager.stop()


async def test_a_missing_cloudflared_is_a_plain_message_not_a_retry_loop(tmp_path: Path) -> None:
    seen: list[TunnelStatus] = []
    manager = TunnelManager(origin_port=1, state_dir=tmp_path, command=None, on_status=seen.append)
    manager.start()
    await wait_for(lambda: manager.status.state is TunnelState.FAILED, 5, "the failure")
    assert "cloudflared was not found" in (manager.status.message or "")
    with pytest.raises(TunnelUnavailable, match="not found"):
        await manager.wait_ready(5)
    await manager.stop()
    assert len([s for s in seen if s.state is TunnelState.FAILED]) == 1


async def test_an_orphan_left_by_a_crashed_run_is_stopped_at_start(
    origin: tuple[RangeServer, Path], tmp_path: Path
) -> None:
    server, _ = origin
    state = tmp_path / "state"
    state.mkdir()
    (state / "cloudflared.yml").write_text("")
    orphan = subprocess.Popen(
        [*cloudflared.command(), "tunnel", "--no-autoupdate", "--config", str(state / "cloudflared.yml"),
         "--url", f"http://127.0.0.1:{server.port}"],
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    child_process.write_pidfile(state / "cloudflared.pid", orphan.pid)
    manager = _manager(server, state, [])
    manager.start()
    try:
        await manager.wait_ready(20)
        assert orphan.wait(timeout=10) is not None  # stopped by the new run
        assert manager.process is not None and manager.process.pid != orphan.pid
    finally:
        await manager.stop()
        if orphan.poll() is None:
            orphan.kill()


async def test_a_pidfile_naming_someone_elses_process_is_left_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        child_process.write_pidfile(tmp_path / "cloudflared.pid", bystander.pid)
        assert await asyncio.to_thread(child_process.reap_orphan, tmp_path / "cloudflared.pid") is None
        assert bystander.poll() is None and not (tmp_path / "cloudflared.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_finding_cloudflared_prefers_the_bundle_then_settings_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def executable(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
        return path

    on_path = executable(tmp_path / "path" / "cloudflared")
    configured = executable(tmp_path / "mine" / "cloudflared")
    bundled = executable(tmp_path / "bundle" / "bin" / "cloudflared")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert find_cloudflared("") == str(on_path)
    assert find_cloudflared(str(configured)) == str(configured)
    assert find_cloudflared(str(tmp_path / "missing")) is None  # a wrong setting is not silently PATH's
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert find_cloudflared(str(configured)) == str(bundled)


def test_public_urls_are_https_except_for_the_loopback_stand_in() -> None:
    assert public_url("ab-cd.trycloudflare.com") == "https://ab-cd.trycloudflare.com"
    assert public_url("127.0.0.1:4321") == "http://127.0.0.1:4321"
    assert public_url("https://x.trycloudflare.com/") == "https://x.trycloudflare.com"


def test_failures_are_explained_from_cloudflareds_last_lines() -> None:
    assert "updated itself" in explain_failure([], 11)[0]
    assert "proxy" in explain_failure(["ERR proxyconnect tcp: dial failed"], None)[0]
    assert "did not become reachable" in explain_failure(["INF starting"], None)[0]


@pytest.mark.parametrize(
    ("line", "returncode", "words"),
    [
        ('ERR Error unmarshaling QuickTunnel response: status_code="429 Too Many Requests"', 1, "too many"),
        ("ERR failed to dial to edge with quic: 198.41.192.7:7844 timeout", None, "port 7844"),
        # A banner whose own ports contain 429 or 7844 is not a rate limit nor a blocked edge.
        ("INF |  http://127.0.0.1:42913  |  metrics on 127.0.0.1:17844", 1, "exit code 1"),
        ("INF |  http://127.0.0.1:34290  |  https://ab-78441.example", 1, "exit code 1"),
    ],
)
def test_numbers_in_cloudflareds_lines_are_matched_whole(
    line: str, returncode: int | None, words: str
) -> None:
    assert words in explain_failure([line], returncode)[0].lower()


def test_the_stand_in_refuses_flags_cloudflared_does_not_know() -> None:
    run = subprocess.run([*cloudflared.command(), "tunnel", "--bogus"], capture_output=True, text=True)
    assert run.returncode == 1 and "Incorrect Usage: flag provided but not defined" in run.stderr
    version = subprocess.run([*cloudflared.command(), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("cloudflared version")


PARENT = """
import asyncio, sys
from pathlib import Path
from app.pull.tunnel import TunnelManager
from app.sandbox import cloudflared

async def main():
    manager = TunnelManager(origin_port=9, state_dir=Path(sys.argv[1]), command=cloudflared.command())
    manager.start()
    while manager.process is None:
        await asyncio.sleep(0.05)
    print(manager.process.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_cloudflared_dies_with_a_killed_parent(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE,
                          text=True) as parent:  # fmt: skip
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert "cloudflared" in (child_process.command_line(child) or "")
        parent.kill()  # no chance to stop its child: the kernel does it
        parent.wait()

    def gone() -> bool:
        line = child_process.command_line(child)
        return line is None or child_process._is_zombie(child)

    deadline = time.monotonic() + 10
    while not gone():
        assert time.monotonic() < deadline, "cloudflared outlived its killed parent"
        time.sleep(0.05)


def test_cloudflareds_lines_lose_every_url_path_before_they_are_logged_or_shown() -> None:
    from app.pull.tunnel import scrub

    line = ('2026-12-03T10:00:00Z ERR  error="Unable to reach the origin service" '
            'dest=https://ab-cd.trycloudflare.com/Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4 path=/Zm9vYmFyYmF6 '
            'originService=http://127.0.0.1:4321/Zm9vYmFy')  # fmt: skip
    clean = scrub(line)
    assert "Zm9v" not in clean and "ab-cd.trycloudflare.com/…" in clean and "127.0.0.1:4321/…" in clean
    assert (
        scrub("INF Registered tunnel connection connIndex=0")
        == "INF Registered tunnel connection connIndex=0"
    )


async def test_a_cloudflared_that_is_not_ours_is_never_reaped(
    origin: tuple[RangeServer, Path], tmp_path: Path
) -> None:
    """After a reboot the pid in the pidfile may be the user's own cloudflared: left alone."""
    server, _ = origin
    theirs = tmp_path / "theirs.yml"
    theirs.write_text("")
    users = subprocess.Popen(
        [*cloudflared.command(), "tunnel", "--no-autoupdate", "--config", str(theirs),
         "--url", f"http://127.0.0.1:{server.port}"],
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        state = tmp_path / "state"
        state.mkdir()
        child_process.write_pidfile(state / "cloudflared.pid", users.pid)
        reaped = await asyncio.to_thread(
            child_process.reap_orphan, state / "cloudflared.pid", str(state / "cloudflared.yml")
        )
        assert reaped is None and users.poll() is None
    finally:
        users.kill()
        users.wait()
