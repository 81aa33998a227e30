"""The server's address (a remembered port, a port out of range) and bad control values."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from support_sandbox import RunningSandbox

from app.sandbox.config import SandboxConfig
from app.sandbox.server import SandboxServer, serve_forever


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_remembered_port_gives_the_same_url_after_a_restart(tmp_path: Path) -> None:
    config = SandboxConfig(state_dir=tmp_path / "state", reuse_port=True)
    first = RunningSandbox(config).start()
    first.stop()
    assert json.loads((tmp_path / "state" / "address.json").read_text())["port"] == _port(first.url)
    second = RunningSandbox(SandboxConfig(state_dir=tmp_path / "state", reuse_port=True)).start()
    try:
        assert second.url == first.url
        assert second.control("/_sandbox/health")["base_url"] == first.url
    finally:
        second.stop()


def test_a_remembered_port_that_is_taken_falls_back_to_a_free_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = RunningSandbox(SandboxConfig(state_dir=tmp_path / "state", reuse_port=True)).start()
    first.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", _port(first.url)))
        squatter.listen()
        with caplog.at_level(logging.WARNING):
            second = RunningSandbox(SandboxConfig(state_dir=tmp_path / "state", reuse_port=True)).start()
        try:
            assert second.url != first.url
            assert any("is taken" in r.getMessage() for r in caplog.records)
        finally:
            second.stop()
    saved = json.loads((tmp_path / "state" / "address.json").read_text())
    assert saved["port"] == _port(second.url)  # the new one is remembered


def test_without_reuse_port_nothing_is_remembered(tmp_path: Path) -> None:
    RunningSandbox(SandboxConfig(state_dir=tmp_path / "state")).start().stop()
    assert not (tmp_path / "state" / "address.json").exists()


@pytest.mark.parametrize("port", [99999, -1, 65536])
async def test_a_port_out_of_range_is_an_oserror(tmp_path: Path, port: int) -> None:
    with pytest.raises(OSError, match="out of range"):
        await SandboxServer(SandboxConfig(state_dir=tmp_path / "state", port=port)).start()
    with pytest.raises(OSError, match="out of range"):
        await serve_forever(SandboxConfig(state_dir=tmp_path / "state", port=port))


async def test_a_failed_start_removes_its_temporary_state(tmp_path: Path) -> None:
    server = SandboxServer(SandboxConfig(port=99999))
    state = server.config.state_dir
    assert state is not None and state.exists()
    with pytest.raises(OSError):
        await server.start()
    assert not state.exists()


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ({"part_size": "abc"}, "part_size"),
        ({"part_size": 1.5}, "part_size"),
        ({"part_size": 0}, "part_size"),
        ({"keep_bytes": "no"}, "keep_bytes"),
        ({"listing_lag": -1}, "listing_lag"),
        ({"listing_lag": None}, "listing_lag"),
        ({"rate_limit_scale": True}, "rate_limit_scale"),
        ({"fail_next_uploads": "2"}, "fail_next_uploads"),
        ({"transcode_delay": 0.1, "stall_seconds": []}, "stall_seconds"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_settings_answer_400_and_change_nothing(
    sandbox: RunningSandbox, doc: dict[str, Any], named: str
) -> None:
    assert sandbox.http is not None
    before = sandbox.control("/_sandbox/settings")
    r = sandbox.http.post("/_sandbox/settings", json=doc)
    assert r.status_code == 400 and named in r.text and "Traceback" not in r.text
    assert sandbox.control("/_sandbox/settings") == before


def test_good_settings_round_trip(sandbox: RunningSandbox) -> None:
    doc = {"part_size": 5_000_000, "keep_bytes": False, "listing_lag": 2, "rate_limit_scale": 0.5}
    after = sandbox.control("/_sandbox/settings", doc)
    assert {k: after[k] for k in doc} == doc
    assert isinstance(after["listing_lag"], float)


@pytest.mark.parametrize(
    ("path", "doc"),
    [("/_sandbox/clock", {"advance_seconds": "x"}), ("/_sandbox/token", {"lifetime": "long"})],
)
def test_bad_control_numbers_answer_400(sandbox: RunningSandbox, path: str, doc: dict[str, Any]) -> None:
    assert sandbox.http is not None
    r = sandbox.http.post(path, json=doc)
    assert r.status_code == 400 and next(iter(doc)) in r.text
