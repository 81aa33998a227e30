"""The ``postflow`` command as a user runs it: a real subprocess each time."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app import __version__, cli
from app.core.errors import PostFlowError


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"PostFlow {__version__}"


def test_unknown_option_prints_usage_and_exits_2() -> None:
    result = run("--frobnicate")
    assert result.returncode == 2 and result.stderr.startswith("usage: postflow")
    assert run("status", "--nope").returncode == 2


def test_bad_setting_in_file_is_one_line_naming_file_key_value(isolated_env: Path) -> None:
    config = isolated_env / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[upload]\nmax_concurrent_files = "lots"\n')
    result = run("doctor")
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert str(config / "config.toml") in line and "upload.max_concurrent_files" in line
    assert "'lots'" in line and "expected a whole number" in line


def test_bad_environment_variable_is_named(isolated_env: Path) -> None:
    result = run("doctor", env={"POSTFLOW_API_URL": "ftp://nope"})
    assert result.returncode == 78
    assert "POSTFLOW_API_URL" in result.stderr and "'ftp://nope'" in result.stderr
    assert "http:// or https:// URL" in result.stderr


def test_doctor_shows_where_things_are(isolated_env: Path) -> None:
    result = run("doctor", "--sandbox")
    assert str(isolated_env / "data") in result.stdout and "built-in sandbox" in result.stdout
    assert "api.frame.io" not in result.stdout and "adobelogin" not in result.stdout  # not used in a demo
    assert "Demo mode" in result.stdout and "unknown" not in result.stdout
    assert result.returncode == 1 and "No folder is watched" in result.stdout  # nothing would upload


def test_sandbox_prints_url_first_and_is_ready_quickly(tmp_path: Path) -> None:
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", "0", "--state", str(tmp_path / "st")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            with httpx.Client(timeout=5) as client:
                health = client.get(f"{url}/_sandbox/health")
            elapsed = time.monotonic() - started
            assert health.status_code == 200 and health.json()["ok"] is True
            assert elapsed < 2.0, f"sandbox took {elapsed:.2f}s to be ready"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0
    assert (tmp_path / "st" / "sandbox-state.json").exists()


def test_sandbox_refuses_bad_fault_json() -> None:
    result = run("sandbox", "--faults", "{nope")
    assert result.returncode == 78 and "--faults" in result.stderr


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("{tmp}/missing", "no such folder"),
        ("relative-missing", "no such folder"),
        ("{tmp}/a-file.mov", "is a file, not a folder"),
        ("~postflow-no-such-user/renders", "no such user's home folder"),
    ],
)
def test_run_refuses_a_watch_folder_that_is_not_there(
    isolated_env: Path, tmp_path: Path, given: str, problem: str
) -> None:
    (tmp_path / "a-file.mov").write_bytes(b"not a folder")
    watch = given.format(tmp=tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "app", "run", "--headless", "--watch", watch, "--project", "Demo Project"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert result.returncode == 78, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"postflow: option --watch {watch}") and line.endswith(problem)
    if given == "relative-missing":
        assert f"({tmp_path / watch})" in line  # where it was looked for
    data = isolated_env / "data"
    assert not (data / "sandbox").exists() and not (data / "logs").exists()  # nothing started


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "99999"], "argument --port: 99999 is not a port number: use 0 to 65535"),
        (["--port", "-1"], "argument --port: -1 is not a port number"),
        (["--port", "http"], "argument --port: 'http' is not a port number (0 to 65535)"),
        (["--host", "..."], "argument --host: '...' is not a host name or IP address"),
        (["--token-lifetime", "nan"], "argument --token-lifetime: 'nan' is invalid: expected a finite"),
        (["--rate-limit-scale", "-2"], "argument --rate-limit-scale: '-2' is invalid"),
        (["--part-size", "0"], "argument --part-size: '0' is invalid: expected a whole number ≥ 1"),
    ],
)
def test_sandbox_refuses_bad_flags_with_usage(args: list[str], needle: str) -> None:
    result = run("sandbox", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: postflow sandbox")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"postflow sandbox: error: {needle}")


def test_sandbox_bind_refusals_are_one_line(tmp_path: Path) -> None:
    """A port the parser would have refused still ends in one line (OSError or OverflowError)."""
    args = argparse.Namespace(
        host="127.0.0.1", port=70000, state=tmp_path / "st", seed=0,
        token_lifetime=None, rate_limit_scale=None, part_size=None, faults=None,
    )  # fmt: skip
    with pytest.raises(PostFlowError, match=r"^cannot serve on 127\.0\.0\.1:70000: .*65535"):
        cli.cmd_sandbox(args)


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize(
    "args", [["status", "--json"], ["status"], ["doctor"], ["--help"], ["--version"]], ids=" ".join
)
def test_output_into_a_closed_pipe_ends_quietly(args: list[str], unbuffered: bool) -> None:
    """`postflow status --json | head -1`: the reader is gone before PostFlow writes a byte.

    Buffered (the default) the failure shows at the final flush; unbuffered at the first write.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all: every write fails with EPIPE, no timing involved
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app", *args],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=30, env=env,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == ""
    # argparse itself swallows a failed write of --help/--version, so unbuffered those end with 0
    swallowed = unbuffered and args[0].startswith("--")
    assert result.returncode == (cli.EXIT_OK if swallowed else cli.EXIT_BROKEN_PIPE)
    assert cli.EXIT_BROKEN_PIPE == 141


def test_the_tray_app_without_a_desktop_points_to_headless_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-m", "app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "no desktop" in result.stderr and "postflow run --headless" in result.stderr


def test_start_at_login_on_status_off_read_back(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    entry = tmp_path / "xdg" / "autostart" / "postflow.desktop"
    assert run("start-at-login", env=env).stdout.startswith("Not registered")
    on = run("start-at-login", "on", env=env)
    assert on.returncode == 0 and "starts this PostFlow" in on.stdout and entry.is_file()
    assert f"exec {sys.executable} -m app" in entry.read_text()
    entry.write_text(entry.read_text().replace(sys.executable, "/old/place/python"))  # moved since
    stale = run("start-at-login", env=env)
    assert "but for /old/place/python" in stale.stdout
    assert run("start-at-login", "on", env=env).returncode == 0  # points it here again
    off = run("start-at-login", "off", env=env)
    assert off.returncode == 0 and off.stdout.startswith("Not registered") and not entry.exists()
    assert run("start-at-login", "sometimes", env=env).returncode == 2
