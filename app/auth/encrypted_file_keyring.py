"""Opt-in keyring for machines with no keychain (a bare Linux ingest server).

Only used when an administrator sets ``auth.keyring_backend = "encrypted-file"``: entries are
kept in one file, encrypted with a key derived from ``POSTFLOW_KEYRING_PASSPHRASE``. Weaker than
an OS keychain (whoever has the passphrase and the file has the tokens), hence never a default.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from app.core.errors import ConfigError

PASSPHRASE_VAR = "POSTFLOW_KEYRING_PASSPHRASE"


class EncryptedFileKeyring(KeyringBackend):
    priority = 0  # never chosen by keyring itself

    def __init__(self, path: Path, passphrase: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

        secret = passphrase if passphrase is not None else os.environ.get(PASSPHRASE_VAR, "")
        if not secret:
            raise ConfigError(
                f'auth.keyring_backend is "encrypted-file" but {PASSPHRASE_VAR} is not set: '
                "set it in the environment PostFlow runs with."
            )
        self.path = path
        salt_file = path.with_suffix(".salt")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not salt_file.exists():
            salt_file.write_bytes(os.urandom(16))
        salt = salt_file.read_bytes()
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=390_000)
        self._fernet = Fernet(base64.urlsafe_b64encode(kdf.derive(secret.encode())))

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        from cryptography.fernet import InvalidToken

        try:
            doc: dict[str, str] = json.loads(self._fernet.decrypt(self.path.read_bytes()))
        except InvalidToken:
            raise ConfigError(f"{PASSPHRASE_VAR} does not open {self.path}.") from None
        return doc

    def _write(self, doc: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self._fernet.encrypt(json.dumps(doc).encode()))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        doc = self._read()
        doc[f"{service}\0{username}"] = password
        self._write(doc)

    def delete_password(self, service: str, username: str) -> None:
        doc = self._read()
        if doc.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError("not found")
        self._write(doc)
