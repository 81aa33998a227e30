"""A proxy script runs in a child process with a time limit: an endless loop in it costs the
script, never PostFlow (the JavaScript engine holds Python's lock while it runs)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from support_pac_server import ScriptServer

from app.proxy.pac_script import PacError
from app.proxy.pac_worker import IsolatedPacScript
from app.proxy.router import ProxyRouter
from app.proxy.system_pac import SystemPac


def test_a_script_answers_from_its_child_process() -> None:
    source = "console.log('hi'); "
    source += "function FindProxyForURL(u, h) { console.log(h); return 'PROXY p:3128; DIRECT'; }"
    script = IsolatedPacScript(source, "t.pac")  # what it prints is not taken for an answer
    try:
        assert script.find("https://api.frame.io/", "api.frame.io").routes == ("http://p:3128", None)
    finally:
        script.close()


@pytest.mark.parametrize(
    "source",
    ["while (true) {}", "function FindProxyForURL(u, h) { while (true) {} }"],
    ids=["at-load", "when-asked"],
)
def test_an_endless_script_is_stopped_and_nothing_else_waits(source: str) -> None:
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:  # another thread of PostFlow (the event loop, an upload): it must go on
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    ticker.start()
    started = time.monotonic()
    try:
        with pytest.raises(PacError, match="took more than 1 s .*stopped"):
            script = IsolatedPacScript(source, "endless.pac", time_limit=1.0)
            try:
                script.find("https://api.frame.io/", "api.frame.io")
            finally:
                script.close()
    finally:
        done.set()
        ticker.join()
    assert time.monotonic() - started < 10
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert gaps and max(gaps) < 0.5, max(gaps)  # never frozen while the script spun


def test_the_router_goes_on_without_a_script_that_hangs(
    pac_server: ScriptServer, caplog: pytest.LogCaptureFixture
) -> None:
    pac_server.serve("while (true) {}")
    chosen = ProxyRouter(
        pac_url=pac_server.url, system=SystemPac,
        script=lambda source, origin: IsolatedPacScript(source, origin, time_limit=1.0),
    )  # fmt: skip
    try:
        with caplog.at_level(logging.WARNING):
            assert chosen.routes("https://api.frame.io/") == (None,)
        assert any("took more than 1 s" in r.getMessage() for r in caplog.records)
    finally:
        chosen.close()


@pytest.fixture
def pac_server() -> ScriptServer:
    server = ScriptServer()
    yield server  # type: ignore[misc]
    server.close()
