"""A manual proxy, or the proxy a PAC script names, carries every request PostFlow makes (a real
tinyproxy on loopback), with its credentials from the keychain; without one configured, or with
a script that says DIRECT, the proxy sees nothing. A proxy set while PostFlow runs applies at
once."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_harness import wait_for, write_random
from support_pac_server import ScriptServer
from tests_auth_helpers import LOOPBACK, follow_authorize, sandbox_settings

from app.auth.proxy_config import PROXY_KEY
from app.auth.service import backend_for, keychain_service
from app.auth.token_store import TokenStore
from app.composition import connect, running_app
from app.core.events import EventBus
from app.core.jobs import JobState
from app.core.settings import Settings, make_root

pytestmark = pytest.mark.skipif(
    shutil.which("tinyproxy") is None and not os.environ.get("POSTFLOW_REQUIRE_DESKTOP"),
    reason="tinyproxy (Debian package) is not installed",
)


@dataclass
class Proxy:
    url: str
    log: Path

    def requests(self) -> list[str]:
        """``METHOD URL`` of every request the proxy carried."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line.split("): ", 1)[1].rsplit(" HTTP/", 1)[0] for line in text.splitlines()
                if "Request (file descriptor" in line]  # fmt: skip


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Proxy]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f'Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile "{log}"\nLogLevel Info\n'
                    "MaxClients 200\nAllow 127.0.0.1\nBasicAuth jane s3cret\n")  # fmt: skip
    with subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "tinyproxy did not start"
            time.sleep(0.05)
        yield Proxy(f"http://127.0.0.1:{port}", log)
        proc.terminate()
        proc.wait(timeout=10)


async def _sign_in(settings: Settings) -> None:
    connections = connect(settings, EventBus())  # the token exchange: PostFlow's own IMS client
    flow = connections.auth.new_flow(LOOPBACK)
    await connections.auth.finish(flow, await follow_authorize(flow.authorize_url))  # the "browser"
    await connections.aclose()


async def _full_round(sandbox: Any, watch: Path, **env: str) -> None:
    """Sign in, upload a two-part file, post a Discord message."""
    sandbox.control("/_sandbox/settings", {"part_size": 256 * 1024})
    settings = sandbox_settings(sandbox, POSTFLOW_STABLE_SECONDS="0.2", POSTFLOW_SCAN_INTERVAL="0.2", **env)
    if settings.proxy_url or settings.pac_url:
        TokenStore(keychain_service(settings), backend_for(settings)).set_secret(PROXY_KEY, "jane:s3cret")
    await _sign_in(settings)
    watch.mkdir(exist_ok=True)
    write_random(watch / "through.mov", 400_000, seed=1)
    settings = sandbox_settings(sandbox, POSTFLOW_STABLE_SECONDS="0.2", POSTFLOW_SCAN_INTERVAL="0.2", **env)
    settings = settings.__class__(
        **{**settings.__dict__, "watch_roots": (make_root(str(watch), "Demo Project"),)}
    )
    async with running_app(settings) as session:
        engine = session.engine

        async def delivered() -> bool:
            jobs = await engine.jobs()
            return bool(jobs) and jobs[0].state is JobState.DONE

        await wait_for(delivered, 60, "the file delivered")
        await session.discord.set_webhook(f"{sandbox.url}/discord/api/webhooks/100000000000000001/tok")
        await session.discord.send_test()


async def test_every_request_goes_through_the_configured_proxy(
    sandbox: Any, tinyproxy: Proxy, tmp_path: Path
) -> None:
    await _full_round(sandbox, tmp_path / "watch", POSTFLOW_PROXY=tinyproxy.url)
    seen = tinyproxy.requests()
    paths = [r.split(" ", 1)[1].split(sandbox.url, 1)[-1] for r in seen]
    assert any(p.startswith("/ims/token") for p in paths), seen  # sign-in (and refresh)
    assert any(p.startswith("/v4/me") for p in paths) and any("/files/local_upload" in p for p in paths)
    assert len([r for r in seen if r.startswith("PUT ") and "/_storage/upload/" in r]) == 2  # both parts
    assert any(r.startswith("POST ") and "/discord/api/webhooks/" in r for r in seen)
    assert all(r.split(" ", 1)[1].startswith(sandbox.url) for r in seen)  # nothing else, nowhere else
    stats = sandbox.control("/_sandbox/stats")
    assert len([p for p in paths if p.startswith("/v4/")]) == sum(
        n
        for k, n in stats.items()
        if k.startswith(
            ("users.", "accounts.", "workspaces.", "projects.", "folders.", "files.")
        )  # fmt: skip
    )  # every Frame.io call the sandbox answered came through the proxy


async def test_without_a_proxy_configured_the_proxy_sees_nothing(
    sandbox: Any, tinyproxy: Proxy, tmp_path: Path
) -> None:
    await _full_round(sandbox, tmp_path / "watch")
    assert tinyproxy.requests() == []


@pytest.fixture
def pac_server() -> Iterator[ScriptServer]:
    server = ScriptServer()
    yield server
    server.close()


def _assert_all_through(seen: list[str], sandbox: Any) -> None:
    paths = [r.split(" ", 1)[1].split(sandbox.url, 1)[-1] for r in seen]
    assert any(p.startswith("/ims/token") for p in paths), seen
    assert any("/files/local_upload" in p for p in paths)
    assert len([r for r in seen if r.startswith("PUT ") and "/_storage/upload/" in r]) == 2
    assert any(r.startswith("POST ") and "/discord/api/webhooks/" in r for r in seen)


async def test_the_proxy_a_script_names_carries_every_request_past_a_dead_one(
    sandbox: Any, tinyproxy: Proxy, pac_server: ScriptServer, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nobody listens on: the script's first proxy is down
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    where = tinyproxy.url.removeprefix("http://")
    pac_server.serve(f"return isPlainHostName(host) ? 'DIRECT' : 'PROXY 127.0.0.1:{dead}; PROXY {where}';")
    await _full_round(sandbox, tmp_path / "watch", POSTFLOW_PAC_URL=pac_server.url)
    _assert_all_through(tinyproxy.requests(), sandbox)
    assert pac_server.hits >= 1


async def test_a_script_that_says_direct_keeps_the_proxy_out(
    sandbox: Any, tinyproxy: Proxy, pac_server: ScriptServer, tmp_path: Path
) -> None:
    where = tinyproxy.url.removeprefix("http://")
    pac_server.serve(f"return dnsDomainIs(host, '.frame.io') ? 'PROXY {where}' : 'DIRECT';")
    await _full_round(sandbox, tmp_path / "watch", POSTFLOW_PAC_URL=pac_server.url)
    assert tinyproxy.requests() == []  # everything here is 127.0.0.1
    assert pac_server.hits >= 1


async def test_a_proxy_set_while_running_applies_at_once(
    sandbox: Any, tinyproxy: Proxy, tmp_path: Path
) -> None:
    settings = sandbox_settings(sandbox, POSTFLOW_STABLE_SECONDS="0.2", POSTFLOW_SCAN_INTERVAL="0.2")
    await _sign_in(settings)
    async with running_app(settings) as session:
        await session.discord.set_webhook(f"{sandbox.url}/discord/api/webhooks/100000000000000001/tok")
        await session.discord.send_test()
        assert tinyproxy.requests() == []
        engine = session.engine
        await engine.proxy.set_login("jane", "s3cret")  # the keychain, as Settings → Network saves it
        await engine.update_settings({"proxy_url": tinyproxy.url})
        assert await engine.proxy.login_user() == "jane"
        assert f"through {tinyproxy.url} (the proxy in settings)" in await engine.proxy.explain(sandbox.url)
        await session.discord.send_test()
        await session.connections.frameio.me()
        seen = tinyproxy.requests()
        assert any(r.startswith("POST ") and "/discord/api/webhooks/" in r for r in seen), seen
        assert any("/v4/me" in r for r in seen), seen
        await engine.update_settings({"proxy_url": ""})
        before = len(tinyproxy.requests())
        await session.discord.send_test()
        assert len(tinyproxy.requests()) == before


async def test_a_proxy_that_refuses_is_reported_not_walked_around(
    sandbox: Any, tinyproxy: Proxy, pac_server: ScriptServer
) -> None:
    """The script offers DIRECT after the proxy, but the proxy is there and says 407: the studio's
    rule stands, and the answer is the user's to see (no login kept)."""
    import httpx

    from app.proxy.pac_script import PacScript
    from app.proxy.router import ProxyRouter
    from app.proxy.system_pac import SystemPac
    from app.proxy.transport import RoutingTransport

    pac_server.serve(f"return 'PROXY {tinyproxy.url.removeprefix('http://')}; DIRECT';")
    router = ProxyRouter(pac_url=pac_server.url, system=SystemPac, script=PacScript)
    async with httpx.AsyncClient(transport=RoutingTransport(router)) as http:
        answer = await http.get(f"{sandbox.url}/v4/me")
    assert answer.status_code == 407
    assert router.routes(sandbox.url) == (tinyproxy.url, None)  # not marked down
