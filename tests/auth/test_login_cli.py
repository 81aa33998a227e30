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
    signed_in = "[ok  ] Adobe sign-in: Signed in as Sandbox Editor <editor@sandbox.postflow.invalid>"
    assert signed_in in doctor.stdout

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


def no_keychain_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Sandbox mode with no keychain at all; the sandbox URL is never contacted before the check."""
    return {
        **os.environ,
        "POSTFLOW_SANDBOX": "1",
        "POSTFLOW_SANDBOX_URL": "http://127.0.0.1:9",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        **extra,
    }


def test_login_without_a_keychain_stops_before_the_browser(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "app", "login", "--no-browser"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=no_keychain_env(tmp_path),
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "" once it exits; the sign-in address if it went on
        if first:
            proc.kill()  # it went on to the sign-in: do not leave it waiting for a browser
        out, err = proc.communicate(timeout=60)
    assert first == "" and out == "", "the sign-in started although the keychain is unusable"
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("postflow: Keychain unavailable: No keychain is available")
    assert 'auth.keyring_backend = "encrypted-file"' in lines[0]


def test_login_with_a_wrong_passphrase_stops_before_the_browser(tmp_path: Path) -> None:
    from app.auth.encrypted_file_keyring import EncryptedFileKeyring

    data = tmp_path / "data"
    EncryptedFileKeyring(data / "tokens.enc", passphrase="right").set_password("s", "u", "v")
    env = no_keychain_env(
        tmp_path,
        POSTFLOW_DATA_DIR=str(data),
        POSTFLOW_KEYRING_BACKEND="encrypted-file",
        POSTFLOW_KEYRING_PASSPHRASE="wrong",
    )
    result = subprocess.run(
        [sys.executable, "-m", "app", "login", "--no-browser"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 78 and "Open this address" not in result.stdout
    wrong = f"postflow: POSTFLOW_KEYRING_PASSPHRASE does not open {data / 'tokens.enc'}."
    assert result.stderr.strip() == wrong


@pytest.mark.parametrize("command", ["login", "logout"])
def test_web_client_secret_without_a_keychain_is_one_line(tmp_path: Path, command: str) -> None:
    env = no_keychain_env(tmp_path, POSTFLOW_CREDENTIAL_TYPE="web")
    result = subprocess.run(
        [sys.executable, "-m", "app", command, *(["--no-browser"] if command == "login" else [])],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("postflow: Keychain unavailable: No keychain is available")
    assert len(result.stderr.strip().splitlines()) == 1
