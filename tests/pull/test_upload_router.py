"""Which way each file goes (push or pull), and the folder option that chooses it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.core.config_file import save_roots
from app.core.errors import ConfigError
from app.core.jobs import Job, JobState, WatchRoot
from app.core.settings import Settings, parse_roots
from app.engine.upload_router import REMOTE_UPLOAD_LIMIT, UploadRouter
from app.pull.tunnel import TunnelState, TunnelStatus


class _Tunnel:
    def __init__(self, state: TunnelState) -> None:
        self.state = state

    def ready_now(self) -> bool:
        return self.state is TunnelState.READY

    def status(self) -> TunnelStatus:
        return TunnelStatus(self.state)


def _job(size: int) -> Job:
    return Job(1, "r", "a.mov", "/w/a.mov", size, 1, JobState.UPLOADING)


@pytest.mark.parametrize(
    ("mode", "tunnel", "size", "way"),
    [
        ("push", TunnelState.READY, 10, "push"),
        ("pull", TunnelState.READY, 10, "pull"),
        ("pull", TunnelState.FAILED, 10, "pull"),  # waits for the tunnel: the user chose pull only
        ("auto", TunnelState.READY, 10, "pull"),
        ("auto", TunnelState.FAILED, 10, "push"),
        ("auto", TunnelState.STARTING, 10, "push"),
        ("pull", TunnelState.READY, REMOTE_UPLOAD_LIMIT, "pull"),
        ("pull", TunnelState.READY, REMOTE_UPLOAD_LIMIT + 1, "push"),  # over 50 GB: always push
        ("auto", TunnelState.READY, REMOTE_UPLOAD_LIMIT + 1, "push"),
    ],
)
def test_the_way_a_file_goes(mode: str, tunnel: TunnelState, size: int, way: str) -> None:
    router = UploadRouter(Any, Any, Any, _Tunnel(tunnel))  # type: ignore[arg-type]
    root = WatchRoot("r", "/w", "P", upload_mode=mode)
    assert router.way_for(_job(size), root) == way


def test_upload_mode_is_checked_and_saved(tmp_path: Path) -> None:
    watch = tmp_path / "w"
    watch.mkdir()
    roots = parse_roots([{"path": str(watch), "project": "P", "upload_mode": "auto"}], "config.toml")
    assert roots[0].upload_mode == "auto"
    with pytest.raises(ConfigError, match="upload_mode = 'tunnel' is invalid: expected push, pull or auto"):
        parse_roots([{"path": str(watch), "project": "P", "upload_mode": "tunnel"}], "config.toml")
    config = tmp_path / "config.toml"
    save_roots(config, [roots[0], replace(roots[0], path=str(tmp_path), upload_mode="push")])
    text = config.read_text()
    assert text.count('upload_mode = "auto"') == 1 and "push" not in text


def test_doctor_checks_cloudflared_only_when_a_folder_pulls(tmp_path: Path) -> None:
    from app.doctor import _tunnel

    watch = tmp_path / "w"
    watch.mkdir()
    pushing = replace(parse_roots([{"path": str(watch), "project": "P"}], "config.toml")[0])
    pulling = replace(pushing, upload_mode="pull")
    base = Settings(sandbox=False, cloudflared_path=str(tmp_path / "nope"))
    assert _tunnel(replace(base, watch_roots=(pushing,))) == []
    (missing,) = _tunnel(replace(base, watch_roots=(pulling,)))
    assert not missing.ok and "cloudflared was not found" in (missing.message or "")
    (standin,) = _tunnel(replace(base, sandbox=True, cloudflared_path="", watch_roots=(pulling,)))
    assert standin.ok and "app.sandbox.cloudflared" in (standin.message or "")
