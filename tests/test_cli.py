"""The ``postflow`` command as a user runs it: a real subprocess each time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app import __version__


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
    assert result.returncode == 0
    assert str(isolated_env / "data") in result.stdout and "sandbox" in result.stdout


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
