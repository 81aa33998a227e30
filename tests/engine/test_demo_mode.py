"""The README's first command: no account, no keychain, the built-in sandbox, a file delivered."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_headless_demo_delivers_without_account_or_keychain(tmp_path: Path, isolated_env: Path) -> None:
    watch = tmp_path / "demo-watch"
    (watch / "Day 01").mkdir(parents=True)
    (watch / "Day 01" / "A001.mov").write_bytes(os.urandom(40_000))
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # a bare Linux box
        "POSTFLOW_STABLE_SECONDS": "0.5",
        "POSTFLOW_SCAN_INTERVAL": "0.3",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        args = ["run", "--headless", "--watch", str(watch), "--project", "Demo Project"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "delivered to Frame.io" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0, log.read_text()
    text = log.read_text()
    assert "demo mode: built-in sandbox" in text and "Day 01/A001.mov: delivered" in text
    status = subprocess.run([sys.executable, "-m", "app", "status", "--json"], capture_output=True, text=True,
                            env=env, timeout=60)  # fmt: skip
    counts = json.loads(status.stdout)["queue"]["counts"]
    assert counts["done"] == 1 and sum(counts.values()) == 1


def _wait_in_log(log: Path, text: str, proc: subprocess.Popen[bytes], count: int = 1) -> str:
    deadline = time.monotonic() + 90
    while log.read_text(errors="replace").count(text) < count:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return log.read_text(errors="replace")


def test_demo_interrupted_mid_upload_resumes_on_the_same_address(tmp_path: Path, isolated_env: Path) -> None:
    """Defect 11: Ctrl+C mid-upload, restart: the saved part URLs still work (same address);
    defect 18: a second instance is refused before it starts a sandbox of its own."""
    watch = tmp_path / "demo-watch"
    watch.mkdir()
    (watch / "master.mov").write_bytes(os.urandom(6_000_000))
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "POSTFLOW_STABLE_SECONDS": "0.3",
        "POSTFLOW_SCAN_INTERVAL": "0.3",
        "POSTFLOW_BANDWIDTH_LIMIT": "2000000",
    }
    args = [
        sys.executable,
        "-m",
        "app",
        "run",
        "--headless",
        "--watch",
        str(watch),
        "--project",
        "Demo Project",
    ]
    log = tmp_path / "run.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    first = start()
    try:
        _wait_in_log(log, "created on Frame.io", first)
        first.send_signal(signal.SIGINT)  # Ctrl+C mid-upload
        assert first.wait(timeout=60) == 0, log.read_text()
    finally:
        if first.poll() is None:
            first.kill()
    second = start()
    try:
        _wait_in_log(log, "PostFlow is running headless", second, count=2)
        third = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert third.returncode == 1 and "already uploading" in third.stderr
        assert "built-in sandbox" not in third.stdout + third.stderr
        text = _wait_in_log(log, "delivered to Frame.io", second)
    finally:
        second.terminate()
        assert second.wait(timeout=60) == 0, log.read_text()
    addresses = re.findall(r"demo mode: built-in sandbox at (\S+)", text)
    assert len(addresses) == 2 and addresses[0] == addresses[1]
    assert "storage unreachable" not in text and "Traceback" not in text
    # Defect 17: the demo keeps sizes and checksums, not a second copy of every render.
    kept = [p for p in (isolated_env / "data").rglob("*") if p.is_file() and p.stat().st_size >= 1_000_000]
    assert kept == []
