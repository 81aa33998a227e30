"""Tokens in the keychain: split across entries, switched atomically, wiped on sign-out."""

from __future__ import annotations

import time
from pathlib import Path

import keyring.errors
import pytest
from keyring.backends import fail
from support_keyrings import MemoryKeyring

from app.auth.encrypted_file_keyring import EncryptedFileKeyring
from app.auth.token_store import TokenStore
from app.auth.tokens import TokenSet
from app.core.errors import ConfigError, KeychainError


def tokens(n: int = 1) -> TokenSet:
    return TokenSet(
        access_token=f"access-{n}-" + "a" * 1400,
        refresh_token=f"refresh-{n}-" + "r" * 1400,
        expires_at=time.time() + 3600,
        account_id="acc",
        user_email="ed@example.com",
        issued_at=time.time(),
    )


def test_round_trip_splits_over_windows_sized_entries(test_keyring: MemoryKeyring) -> None:
    store = TokenStore("PostFlow", test_keyring)
    store.save(tokens())
    loaded = store.load()
    assert loaded is not None and loaded.access_token == tokens().access_token
    assert loaded.refresh_token == tokens().refresh_token and loaded.user_email == "ed@example.com"
    assert len(test_keyring.entries) > 2  # pointer + several chunks
    assert all(len(v) <= 1280 for v in test_keyring.entries.values())


def test_rotation_replaces_the_generation_and_leaves_no_orphans(test_keyring: MemoryKeyring) -> None:
    store = TokenStore("PostFlow", test_keyring)
    store.save(tokens(1))
    count = len(test_keyring.entries)
    store.save(tokens(2))
    loaded = store.load()
    assert loaded is not None and loaded.refresh_token and loaded.refresh_token.startswith("refresh-2-")
    assert len(test_keyring.entries) == count


class CrashingKeyring(MemoryKeyring):
    """Dies after a given number of writes, like a process killed mid-save."""

    def __init__(self, allowed_writes: int) -> None:
        super().__init__()
        self.allowed = allowed_writes

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.writes >= self.allowed:
            raise keyring.errors.PasswordSetError("simulated crash")
        super().set_password(service, username, password)


def test_a_crash_mid_save_keeps_the_previous_complete_set() -> None:
    backend = CrashingKeyring(allowed_writes=100)
    store = TokenStore("PostFlow", backend)
    store.save(tokens(1))
    writes_per_save = backend.writes  # the chunks, then the pointer
    assert writes_per_save >= 3
    for crash_after in range(writes_per_save):  # die before each write of the next save
        backend.allowed = backend.writes + crash_after
        with pytest.raises(KeychainError):
            store.save(tokens(2))
        loaded = store.load()
        assert loaded is not None and loaded.refresh_token and loaded.refresh_token.startswith("refresh-1-")


def test_clear_removes_everything(test_keyring: MemoryKeyring) -> None:
    store = TokenStore("PostFlow", test_keyring)
    store.save(tokens())
    store.clear()
    assert test_keyring.entries == {} and store.load() is None


def test_no_keychain_names_the_fix() -> None:
    store = TokenStore("PostFlow", fail.Keyring())
    with pytest.raises(KeychainError) as info:
        store.save(tokens())
    assert "gnome-keyring" in info.value.message and "encrypted-file" in info.value.message


def test_encrypted_file_backend_round_trip(tmp_path: Path) -> None:
    backend = EncryptedFileKeyring(tmp_path / "tokens.enc", passphrase="correct horse")
    store = TokenStore("PostFlow", backend)
    store.save(tokens())
    assert b"access-1" not in (tmp_path / "tokens.enc").read_bytes()
    again = TokenStore("PostFlow", EncryptedFileKeyring(tmp_path / "tokens.enc", passphrase="correct horse"))
    assert again.load() is not None
    with pytest.raises(ConfigError):
        TokenStore("PostFlow", EncryptedFileKeyring(tmp_path / "tokens.enc", passphrase="wrong")).load()
    with pytest.raises(ConfigError):
        EncryptedFileKeyring(tmp_path / "other.enc", passphrase="")


def test_repr_never_shows_tokens() -> None:
    text = repr(tokens())
    assert "aaaa" not in text and "rrrr" not in text


def test_clearing_twice_is_fine(test_keyring: MemoryKeyring) -> None:
    first, second = TokenStore("PostFlow", test_keyring), TokenStore("PostFlow", test_keyring)
    first.save(tokens())
    first.clear()
    second.clear()  # another process already signed out: not an error
    assert test_keyring.entries == {}
