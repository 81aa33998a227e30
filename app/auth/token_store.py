"""Tokens live only in the OS keychain, written so a rotated refresh token is never lost.

A token set is one JSON document. It may be larger than one keychain entry allows (Windows
Credential Manager: 2,560 bytes of UTF-16), so it is split into chunks written under a fresh
generation name; only then is the small pointer entry switched to that generation (the one
atomic step), and the old chunks removed. A crash at any point leaves either the old complete
set or the new complete set readable, never half of each.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from app.auth.tokens import TokenSet
from app.core.errors import KeychainError

log = logging.getLogger(__name__)
CHUNK_CHARS = 1000  # < 1,280 UTF-16 characters, Windows' per-entry cap
POINTER = "tokens"
PROBE = "probe"  # never a token: written and removed by check_usable()

NO_KEYCHAIN_HELP = (
    "No keychain is available on this machine, so PostFlow cannot keep your sign-in. "
    "Install and unlock a Secret Service provider (gnome-keyring or KWallet) and try again, "
    'or, on a server, set auth.keyring_backend = "encrypted-file" and '
    "POSTFLOW_KEYRING_PASSPHRASE to keep tokens in an encrypted file."
)


class TokenStore:
    def __init__(self, service: str = "PostFlow", backend: KeyringBackend | None = None) -> None:
        self.service = service
        self._backend = backend
        self._lock = threading.Lock()  # one writer at a time within this process

    @property
    def backend(self) -> KeyringBackend:
        return self._backend or keyring.get_keyring()

    def _call(self, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except keyring.errors.NoKeyringError:
            raise KeychainError(NO_KEYCHAIN_HELP) from None
        except keyring.errors.KeyringError as exc:
            raise KeychainError(f"The keychain refused to {action} PostFlow's sign-in: {exc}") from None

    # ---- other secrets kept beside the sign-in (the Discord webhook address) ----
    def secret(self, key: str) -> str | None:
        return self._get(key)

    def set_secret(self, key: str, value: str | None) -> None:
        if value is None:
            self._delete(key)
        else:
            self._set(key, value)

    def _get(self, key: str) -> str | None:
        value: str | None = self._call("read", self.backend.get_password, self.service, key)
        return value

    def _set(self, key: str, value: str) -> None:
        self._call("store", self.backend.set_password, self.service, key, value)

    def _delete(self, key: str) -> None:
        try:
            self.backend.delete_password(self.service, key)
        except keyring.errors.PasswordDeleteError:
            pass  # already gone (another process signed out too): fine
        except keyring.errors.NoKeyringError:
            raise KeychainError(NO_KEYCHAIN_HELP) from None
        except keyring.errors.KeyringError as exc:
            raise KeychainError(f"The keychain refused to remove PostFlow's sign-in: {exc}") from None

    def _pointer(self) -> dict[str, Any] | None:
        raw = self._get(POINTER)
        if not raw:
            return None
        try:
            doc: dict[str, Any] = json.loads(raw)
            return doc if isinstance(doc.get("gen"), str) and isinstance(doc.get("n"), int) else None
        except json.JSONDecodeError:
            return None

    def check_usable(self) -> None:
        """Write and remove a throwaway entry: raises ``KeychainError`` now if a sign-in could not
        be kept, so ``postflow login`` can say so before the user signs in in the browser."""
        with self._lock:
            self._set(PROBE, "PostFlow checks that it can keep a sign-in here")
            self._delete(PROBE)

    def load(self) -> TokenSet | None:
        pointer = self._pointer()
        if pointer is None:
            return None
        parts = [self._get(f"{POINTER}.{pointer['gen']}.{i}") for i in range(pointer["n"])]
        if any(p is None for p in parts):
            log.warning("keychain entries for the sign-in are incomplete; signing in again is needed")
            return None
        try:
            return TokenSet.from_json("".join(p for p in parts if p is not None))
        except (ValueError, TypeError):
            log.warning("keychain entry for the sign-in is unreadable; signing in again is needed")
            return None

    def save(self, tokens: TokenSet) -> None:
        with self._lock:
            self._save(tokens)

    def _save(self, tokens: TokenSet) -> None:
        text = tokens.to_json()
        old = self._pointer()
        gen = secrets.token_hex(4)
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        for i, chunk in enumerate(chunks):
            self._set(f"{POINTER}.{gen}.{i}", chunk)
        self._set(POINTER, json.dumps({"gen": gen, "n": len(chunks)}))
        if old is not None:
            self._remove_generation(old)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        old = self._pointer()
        self._delete(POINTER)
        if old is not None:
            self._remove_generation(old)

    def _remove_generation(self, pointer: dict[str, Any]) -> None:
        for i in range(pointer["n"]):
            self._delete(f"{POINTER}.{pointer['gen']}.{i}")
