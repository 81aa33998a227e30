"""Which way each request goes: the order of the settings, the environment and the system; a
proxy script's answers cached and tried in order; a script that cannot be used said once, and
nothing stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support_clock import Clock
from support_pac_server import ScriptServer

from app.proxy.pac_script import PacScript
from app.proxy.router import DOWN_FOR, ROUTE_TTL, ProxyRouter, ProxyUnusable, origin
from app.proxy.system_pac import SystemPac

FRAMEIO = "https://api.frame.io/v4/me"


@pytest.fixture
def pac_server() -> Iterator[ScriptServer]:
    server = ScriptServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


NO_SYSTEM_SCRIPT = SystemPac()


def router(clock: Clock | None = None, system: SystemPac = NO_SYSTEM_SCRIPT, **kwargs: Any) -> ProxyRouter:
    """Scripts run in this process here (quicker); test_pac_worker runs them apart."""
    kwargs.setdefault("script", PacScript)
    return ProxyRouter(system=lambda: system, clock=clock or Clock(), **kwargs)


def test_nothing_configured_goes_direct() -> None:
    assert router().routes(FRAMEIO) == (None,)
    assert "no proxy configured" in router().explain(FRAMEIO)


def test_the_proxy_in_settings_wins_over_everything(
    monkeypatch: pytest.MonkeyPatch, pac_server: ScriptServer
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    pac_server.serve("return 'PROXY script:2';")
    chosen = router(manual="http://manual:3128", pac_url=pac_server.url)
    assert chosen.routes(FRAMEIO) == ("http://manual:3128",)
    assert chosen.routes("http://127.0.0.1:9/x") == ("http://manual:3128",)  # loopback too
    assert pac_server.hits == 0


def test_the_script_in_settings_comes_before_the_environment(
    monkeypatch: pytest.MonkeyPatch, pac_server: ScriptServer
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    pac_server.serve("return shExpMatch(host, '*.frame.io') ? 'PROXY script:2; DIRECT' : 'DIRECT';")
    chosen = router(pac_url=pac_server.url)
    assert chosen.routes(FRAMEIO) == ("http://script:2", None)
    assert chosen.routes("https://discord.com/api") == (None,)
    assert f"the proxy script in settings {pac_server.url}" in chosen.explain(FRAMEIO)


def test_the_environment_comes_before_the_systems_script(
    monkeypatch: pytest.MonkeyPatch, pac_server: ScriptServer
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    monkeypatch.setenv("NO_PROXY", "localhost,.studio.lan")
    chosen = router(system=SystemPac(pac_server.url))
    assert chosen.routes(FRAMEIO) == ("http://env:1",)
    assert chosen.routes("https://render.studio.lan/") == (None,)
    assert pac_server.hits == 0


def test_the_systems_script_and_wpad(pac_server: ScriptServer) -> None:
    pac_server.serve("return 'PROXY sys:3128';")
    assert router(system=SystemPac(pac_server.url)).routes(FRAMEIO) == ("http://sys:3128",)
    dead = "http://127.0.0.1:9/wpad.dat"  # nothing listens on the discard port
    found = router(system=SystemPac(None, True), wpad=lambda: [dead, pac_server.url])
    assert found.routes(FRAMEIO) == ("http://sys:3128",)
    assert "found by WPAD" in found.explain(FRAMEIO)


def test_no_wpad_script_anywhere_is_said_once_and_goes_direct(caplog: pytest.LogCaptureFixture) -> None:
    chosen = router(system=SystemPac(None, True), wpad=lambda: ["http://127.0.0.1:9/wpad.dat"])
    with caplog.at_level(logging.WARNING):
        assert chosen.routes(FRAMEIO) == (None,)
        assert chosen.routes("https://discord.com/") == (None,)
    said = [r.getMessage() for r in caplog.records if "discover the proxy automatically" in r.getMessage()]
    assert len(said) == 1 and "http://127.0.0.1:9/wpad.dat" in said[0]


def test_answers_and_scripts_are_cached_then_asked_again(pac_server: ScriptServer) -> None:
    clock = Clock()
    pac_server.serve("return 'PROXY one:1';")
    chosen = router(clock, pac_url=pac_server.url)
    assert chosen.cached(FRAMEIO) is None  # not asked yet: the caller must ask in a thread
    assert chosen.routes(FRAMEIO) == ("http://one:1",)
    assert chosen.cached(FRAMEIO) == ("http://one:1",)
    assert chosen.routes("https://api.frame.io/other/path?signed=secret") == ("http://one:1",)  # same origin
    pac_server.serve("return 'PROXY two:2';")
    clock.now += ROUTE_TTL + 1  # the answer is old; the script is not (kept half an hour)
    assert chosen.routes(FRAMEIO) == ("http://one:1",)
    assert pac_server.hits == 1
    clock.now += 1800
    assert chosen.routes(FRAMEIO) == ("http://two:2",)
    assert pac_server.hits == 2


def test_a_proxy_that_cannot_be_reached_is_passed_over_for_a_minute(pac_server: ScriptServer) -> None:
    clock = Clock()
    pac_server.serve("return 'PROXY first:1; PROXY second:2; DIRECT';")
    chosen = router(clock, pac_url=pac_server.url)
    assert chosen.routes(FRAMEIO) == ("http://first:1", "http://second:2", None)
    chosen.mark_down("http://first:1")
    assert chosen.routes(FRAMEIO) == ("http://second:2", None)
    chosen.mark_down("http://second:2")
    assert chosen.routes(FRAMEIO) == (None,)
    clock.now += DOWN_FOR + 1
    assert chosen.routes(FRAMEIO) == ("http://first:1", "http://second:2", None)
    only = router(clock, manual="http://only:1")
    only.mark_down("http://only:1")
    assert only.routes(FRAMEIO) == ("http://only:1",)  # the only way: tried anyway


def test_a_script_that_cannot_be_fetched_or_run_is_said_once(
    pac_server: ScriptServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pac_server.status = 404
    with caplog.at_level(logging.WARNING):
        assert router(pac_url=pac_server.url).routes(FRAMEIO) == (None,)
    said = [r.getMessage() for r in caplog.records]
    assert any(f"the proxy script {pac_server.url} cannot be used" in m and "HTTP 404" in m for m in said), (
        said
    )
    caplog.clear()
    pac_server.status = 200
    pac_server.serve("return 'PROXY ' + undefinedThing;")
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")  # the fixed settings decide meanwhile
    broken = router(pac_url=pac_server.url)
    with caplog.at_level(logging.WARNING):
        assert broken.routes(FRAMEIO) == ("http://env:1",)
        assert broken.routes("https://other.host/") == ("http://env:1",)
    said = [r.getMessage() for r in caplog.records if "undefinedThing" in r.getMessage()]
    assert len(said) == 1, said


def test_a_script_offering_only_socks_is_refused_in_words(pac_server: ScriptServer) -> None:
    pac_server.serve("return 'SOCKS5 socks.studio:1080';")
    chosen = router(pac_url=pac_server.url)
    with pytest.raises(ProxyUnusable, match="only through SOCKS5 socks.studio:1080.*Settings → Network"):
        chosen.routes(FRAMEIO)
    assert "SOCKS5" in chosen.explain(FRAMEIO)


def test_the_keychains_credentials_go_to_the_proxies_a_script_names(pac_server: ScriptServer) -> None:
    pac_server.serve("return 'PROXY p:3128; DIRECT';")
    chosen = router(pac_url=pac_server.url, credentials="jane:p@ss:word")
    assert chosen.routes(FRAMEIO) == ("http://jane:p%40ss%3Aword@p:3128", None)
    assert "p%40ss" not in chosen.explain(FRAMEIO) and "jane" not in chosen.explain(FRAMEIO)


def test_a_file_script_and_a_new_configuration(tmp_path: Path) -> None:
    pac = tmp_path / "proxy.pac"
    pac.write_text("function FindProxyForURL(url, host) { return 'PROXY file:1'; }")
    chosen = router(pac_url=pac.as_uri())
    assert chosen.routes(FRAMEIO) == ("http://file:1",)
    chosen.configure("http://manual:2", "")
    assert chosen.cached(FRAMEIO) is None
    assert chosen.routes(FRAMEIO) == ("http://manual:2",)
    assert chosen.uses_proxy
    chosen.configure(None, "")
    assert chosen.routes(FRAMEIO) == (None,) and not chosen.uses_proxy


def test_what_a_script_is_asked_carries_no_path_or_query() -> None:
    assert origin("https://s3.amazonaws.com/bucket/part?X-Amz-Signature=abc") == "https://s3.amazonaws.com/"
    assert origin("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080/"
    assert origin("https://[::1]:443/") == "https://[::1]:443/"


def test_no_proxy_alone_leaves_the_systems_script_in_charge(
    monkeypatch: pytest.MonkeyPatch, pac_server: ScriptServer
) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost")  # common on developer machines: no proxy named
    pac_server.serve("return 'PROXY sys:3128';")
    assert router(system=SystemPac(pac_server.url)).routes(FRAMEIO) == ("http://sys:3128",)


def test_the_keychains_login_never_goes_to_a_proxy_wpad_found(pac_server: ScriptServer) -> None:
    pac_server.serve("return 'PROXY found:3128';")
    found = router(system=SystemPac(None, True), wpad=lambda: [pac_server.url], credentials="jane:s3cret")
    assert found.routes(FRAMEIO) == ("http://found:3128",)  # whoever answers wpad.<domain> is not trusted
    system = router(system=SystemPac(pac_server.url), credentials="jane:s3cret")
    assert system.routes(FRAMEIO) == ("http://jane:s3cret@found:3128",)  # the system's own: trusted


def test_settings_changed_during_a_decision_win(pac_server: ScriptServer) -> None:
    """A slow script still deciding when the user sets a proxy: its answer is not kept."""
    entered, release = threading.Event(), threading.Event()

    class SlowScript(PacScript):
        def find(self, url: str, host: str) -> Any:
            entered.set()
            release.wait(10)
            return super().find(url, host)

    pac_server.serve("return 'DIRECT';")
    chosen = router(pac_url=pac_server.url, script=SlowScript)
    answers: list[tuple[str | None, ...]] = []
    asking = threading.Thread(target=lambda: answers.append(chosen.routes(FRAMEIO)))
    asking.start()
    assert entered.wait(10)
    chosen.configure("http://manual:3128", "")
    release.set()
    asking.join(10)
    assert answers == [("http://manual:3128",)] and chosen.routes(FRAMEIO) == ("http://manual:3128",)


def test_the_same_settings_again_keep_what_is_known(pac_server: ScriptServer) -> None:
    pac_server.serve("return 'PROXY one:1';")
    chosen = router(pac_url=pac_server.url)
    assert chosen.routes(FRAMEIO) == ("http://one:1",)
    chosen.configure(None, pac_server.url)  # an Apply in another tab: nothing changed here
    assert chosen.cached(FRAMEIO) == ("http://one:1",) and pac_server.hits == 1


def test_an_oversized_script_is_refused(pac_server: ScriptServer, caplog: pytest.LogCaptureFixture) -> None:
    pac_server.body = b"//" + b"x" * 1_100_000
    with caplog.at_level(logging.WARNING):
        assert router(pac_url=pac_server.url).routes(FRAMEIO) == (None,)
    assert any("larger than a proxy script can be" in r.getMessage() for r in caplog.records)


async def test_a_burst_of_requests_asks_the_router_once(pac_server: ScriptServer) -> None:
    import asyncio

    import httpx

    from app.proxy.transport import RoutingTransport

    asked: list[str] = []

    class Counting(PacScript):
        def find(self, url: str, host: str) -> Any:
            asked.append(host)
            return super().find(url, host)

    pac_server.serve("return 'DIRECT';")
    chosen = router(pac_url=pac_server.url, script=Counting)
    async with httpx.AsyncClient(transport=RoutingTransport(chosen)) as http:
        answers = await asyncio.gather(*(http.get(pac_server.url) for _ in range(20)))
    assert all(a.status_code == 200 for a in answers)
    assert asked == ["127.0.0.1"] and chosen.asking == {}
