"""``postflow login --no-browser`` / ``logout`` in a real subprocess, against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS = Path(__file__).resolve().parent.parent


def cli_env(sandbox: Any, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "POSTFLOW_SANDBOX": "1",
        "POSTFLOW_SANDBOX_URL": sandbox.url,
        "PYTHONPATH": str(TESTS),
        "PYTHON_KEYRING_BACKEND": "support_keyrings.JsonFileKeyring",
        "POSTFLOW_TEST_KEYRING": str(tmp_path / "keyring.json"),
    }


def test_login_prints_a_url_and_the_listener_takes_one_request(sandbox: Any, tmp_path: Path) -> None:
    env = cli_env(sandbox, tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "app", "login", "--no-browser"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert "Open this address" in proc.stdout.readline()
        url = proc.stdout.readline().strip()
        assert url.startswith(f"{sandbox.url}/ims/authorize/v2?")
        with httpx.Client() as browser:
            redirect = browser.get(url)
            assert redirect.status_code == 302
            callback = redirect.headers["location"]
            assert callback.startswith("http://127.0.0.1:")
            page = browser.get(callback)
            assert page.status_code == 200 and "PostFlow" in page.text
            with pytest.raises(httpx.ConnectError):  # the listener is gone
                browser.get(callback)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Signed in as Sandbox Editor <editor@sandbox.postflow.invalid>" in out
    stored = json.loads((tmp_path / "keyring.json").read_text())
    assert any(key.startswith("PostFlow Sandbox/") for key in stored)
    doctor = subprocess.run(
        [sys.executable, "-m", "app", "doctor"], capture_output=True, text=True, env=env, timeout=60
    )
    assert "signed in   : Sandbox Editor <editor@sandbox.postflow.invalid>, account " in doctor.stdout

    logout = subprocess.run(
        [sys.executable, "-m", "app", "logout"], capture_output=True, text=True, env=env, timeout=60
    )
    assert logout.returncode == 0 and "Signed out editor@sandbox.postflow.invalid" in logout.stdout
    assert json.loads((tmp_path / "keyring.json").read_text()) == {}
    assert sorted(sandbox.control("/_sandbox/ims")["revoked"]) == ["access", "refresh"]


def test_login_without_a_keychain_names_the_fix(sandbox: Any, tmp_path: Path) -> None:
    env = {**cli_env(sandbox, tmp_path), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    with subprocess.Popen(
        [sys.executable, "-m", "app", "logout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Keychain unavailable" in err and "encrypted-file" in err and "Traceback" not in err


def test_logout_when_signed_out_is_calm(sandbox: Any, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "logout"],
        capture_output=True,
        text=True,
        env=cli_env(sandbox, tmp_path),
        timeout=60,
    )
    assert result.returncode == 0 and "not signed in" in result.stdout
