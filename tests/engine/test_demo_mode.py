"""The README's first command: no account, no keychain, the built-in sandbox, a file delivered."""

from __future__ import annotations

import json
import os
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
    assert json.loads(status.stdout)["counts"] == {"done": 1}
