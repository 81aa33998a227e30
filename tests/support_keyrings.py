"""Keyring backends for tests: never the real keychain.

``MemoryKeyring`` caps an entry like Windows Credential Manager (2,560 bytes of UTF-16) so
splitting is exercised; ``JsonFileKeyring`` persists across processes for CLI tests
(``PYTHON_KEYRING_BACKEND=support_keyrings.JsonFileKeyring``, file in ``POSTFLOW_TEST_KEYRING``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError, PasswordSetError

from app.auth.memory_keyring import MemoryKeyring as AppMemoryKeyring

WINDOWS_MAX_CHARS = 2560 // 2


class MemoryKeyring(AppMemoryKeyring):
    """The app's in-memory keyring, with Windows' per-entry cap and a write counter."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, max_chars: int = WINDOWS_MAX_CHARS) -> None:
        super().__init__()
        self.max_chars = max_chars
        self.writes = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password) > self.max_chars:
            raise PasswordSetError(f"entry of {len(password)} characters is over the limit")
        self.writes += 1
        super().set_password(service, username, password)


class JsonFileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def path(self) -> Path:
        return Path(os.environ["POSTFLOW_TEST_KEYRING"])

    def _read(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _write(self, doc: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password) > WINDOWS_MAX_CHARS:
            raise PasswordSetError("entry over the Windows limit")
        doc = self._read()
        doc[f"{service}/{username}"] = password
        self._write(doc)

    def delete_password(self, service: str, username: str) -> None:
        doc = self._read()
        if doc.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._write(doc)
