"""Secrets never reach a log line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from app.core.logging_setup import SECRETS, setup_logging


def test_known_secrets_and_token_shapes_are_redacted(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "postflow.log"
    setup_logging("DEBUG", log_file, console=False)
    SECRETS.add("s3cr3t-token-value-123")
    log = logging.getLogger("test")
    log.info("got s3cr3t-token-value-123 back")
    log.info("header Authorization: Bearer abc.def.ghi")
    log.info("redirect https://localhost/cb?code=sbx_ABCDEF&state=xyz")
    log.info("form refresh_token=eyJhbGciOi.zzz&client_id=x")
    log.info("webhook https://discord.com/api/webhooks/123/TOKENPART")
    log.info('json {"access_token": "eyJ0eXAi.abc"}')
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    for secret in (
        "s3cr3t-token-value-123",
        "abc.def.ghi",
        "sbx_ABCDEF",
        "eyJhbGciOi",
        "TOKENPART",
        "eyJ0eXAi",
    ):
        assert secret not in text
    assert text.count("[redacted]") >= 6
    assert "state=xyz" in text and "client_id=x" in text
    setup_logging("INFO", None, console=False)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_log_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "postflow.log"
    setup_logging("INFO", log_file, console=False)
    logging.getLogger("test").info("clip from the Secret Project")
    setup_logging("INFO", None, console=False)
    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(log_file.parent).st_mode) == 0o700
