"""Smoke-test a frozen PostFlow as an editor's machine would run it, with no Python around:
``--version``, then the headless engine in sandbox mode (the built-in emulator, no account)
delivering one file end to end, checked through the frozen ``status --json``.

    python installers/smoke_test.py dist/PostFlow/postflow             # Linux
    python installers/smoke_test.py dist/PostFlow/PostFlow.exe         # Windows
    python installers/smoke_test.py dist/PostFlow.app/Contents/MacOS/PostFlow

Only the standard library. The CI workflow runs it on the macOS and Windows builders; the Linux
bundle's test (tests/frozen) runs the same functions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT = 120.0
# What any program needs from the session (Windows keeps its system folders in these).
SYSTEM_VARIABLES = (
    "PATH", "LANG", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "WINDIR", "LOCALAPPDATA", "APPDATA", "USERPROFILE",
)  # fmt: skip


def isolated_env(home: Path) -> dict[str, str]:
    """A fresh user's session: no virtualenv, no PostFlow variables, its own folders."""
    keep = {k: v for k, v in os.environ.items() if k in SYSTEM_VARIABLES}
    return {**keep, "HOME": str(home), "POSTFLOW_CONFIG_DIR": str(home / "config"),
            "POSTFLOW_DATA_DIR": str(home / "data"), "XDG_CONFIG_HOME": str(home / ".config"),
            "POSTFLOW_STABLE_SECONDS": "1", "POSTFLOW_SCAN_INTERVAL": "0.5"}  # fmt: skip


def check_version(app: Path, env: dict[str, str], expected: str | None = None) -> str:
    done = subprocess.run([str(app), "--version"], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not done.stdout.startswith("PostFlow "):
        raise AssertionError(f"--version failed ({done.returncode}): {done.stdout!r} {done.stderr!r}")
    if expected is not None and done.stdout.strip() != f"PostFlow {expected}":
        raise AssertionError(f"--version says {done.stdout.strip()!r}, not PostFlow {expected}")
    return done.stdout.strip()


def deliver_one_file(app: Path, work: Path) -> str:
    """Start ``run --headless --sandbox``, drop a file, wait for ``status --json`` to count it
    done, stop the engine; its log."""
    home, watch, log_path = work / "home", work / "watch", work / "run.log"
    home.mkdir(parents=True, exist_ok=True)
    watch.mkdir(parents=True, exist_ok=True)
    env = isolated_env(home)
    command = [str(app), "run", "--headless", "--sandbox", "--watch", str(watch), "--project", "Demo Project"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait("the engine running", lambda: "PostFlow is running headless" in _read(log_path), proc, log_path)
        partial = watch / ".A001_C001.mov.part"
        partial.write_bytes(os.urandom(3 * 1024 * 1024))
        partial.rename(watch / "A001_C001.mov")
        _wait("the file delivered", lambda: _done(app, env) == 1, proc, log_path)
        if "A001_C001.mov: delivered to Frame.io" not in _read(log_path):
            raise AssertionError("status counts the file done, but the log never said it was delivered")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Windows: TerminateProcess (no clean stop to check there)
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("the engine did not stop within 60 s of SIGTERM") from None
            if sys.platform != "win32" and code != 0:
                raise AssertionError(f"the engine stopped with status {code}:\n{_read(log_path)[-3000:]}")
    return _read(log_path)


def _done(app: Path, env: dict[str, str]) -> int:
    done = subprocess.run([str(app), "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return -1
    return int(json.loads(done.stdout)["queue"]["counts"]["done"])


def _wait(what: str, check: object, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():  # type: ignore[operator]
        if proc.poll() is not None:
            raise AssertionError(f"PostFlow stopped ({proc.returncode}) before {what}:\n{_read(log)[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{_read(log)[-3000:]}")
        time.sleep(0.3)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    app = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory(prefix="postflow-smoke-") as tmp:
        work = Path(tmp)
        print(check_version(app, isolated_env(work)))
        started = time.monotonic()
        deliver_one_file(app, work)
        print(f"headless sandbox: a file delivered end to end in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
