"""No token or code ever lands in config files, logs, state files or exception messages."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_login_cli import cli_env
from tests_auth_helpers import LOOPBACK, follow_authorize, sandbox_settings

from app.composition import connect
from app.core.errors import PostFlowError
from app.core.events import EventBus
from app.core.logging_setup import setup_logging


async def test_tokens_never_leak(
    sandbox: Any, tmp_path: Path, isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # 1. A CLI sign-in in its own process, logging at DEBUG into the data folder.
    env = {**cli_env(sandbox, tmp_path), "POSTFLOW_LOG_LEVEL": "DEBUG"}
    with subprocess.Popen(
        [sys.executable, "-m", "app", "login", "--no-browser"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        proc.stdout.readline()
        import httpx

        with httpx.Client(follow_redirects=True) as browser:
            browser.get(proc.stdout.readline().strip())
        cli_out, cli_err = proc.communicate(timeout=60)
    assert proc.returncode == 0, cli_err

    # 2. In process: sign in, refresh, a 401, a forged redirect, sign out, calls while signed out.
    settings = sandbox_settings(sandbox, POSTFLOW_LOG_LEVEL="DEBUG")
    setup_logging("DEBUG", settings.paths.log_file, console=True)
    messages: list[str] = []
    auth = connect(settings, EventBus())
    try:
        flow = auth.auth.new_flow(LOOPBACK)
        redirect = await follow_authorize(flow.authorize_url)
        try:
            await auth.auth.finish(auth.auth.new_flow(LOOPBACK), redirect)  # wrong flow: state mismatch
        except PostFlowError as exc:
            messages.append(str(exc))
        await auth.auth.finish(flow, redirect)
        assert auth.provider.tokens is not None
        await auth.provider.adopt(dataclasses.replace(auth.provider.tokens, expires_at=time.time() - 1))
        await auth.frameio.me()
        sandbox.http.post(
            "/ims/revoke", data={"client_id": "postflow-sandbox", "token": auth.provider.tokens.access_token}
        )
        await auth.frameio.me()
        await auth.auth.sign_out()
        for call in (auth.frameio.me, auth.provider.access_token):
            try:
                await call()
            except PostFlowError as exc:
                messages.append(f"{exc.title}: {exc}")
    finally:
        await auth.aclose()
        setup_logging("INFO", None, console=False)

    # PostFlow's own records, unformatted (the test's stand-in browser logs its URLs, as browsers do).
    app_records = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app"))
    secrets = list(sandbox.sandbox.store.tokens) + list(sandbox.sandbox.store.codes)
    assert len(secrets) >= 8
    haystacks = {
        "cli output": cli_out + cli_err,
        "messages": "\n".join(messages),
        "app log records": app_records,
    }
    for path in isolated_env.rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_text(errors="replace")
    assert any("logs" in name for name in haystacks), "the log file should exist"
    leaks = [(name, s[:12]) for name, text in haystacks.items() for s in secrets if s in text]
    assert leaks == []
    # Fragments too: the signature part of a JWT on its own is still a secret.
    fragments = [s.split(".")[-1][:40] for s in secrets if "." in s]
    assert [(n, f[:8]) for n, text in haystacks.items() for f in fragments if f in text] == []
