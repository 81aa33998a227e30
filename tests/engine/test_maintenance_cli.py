"""``postflow move-folder`` and ``postflow confirm-account``: the terminal's side of defects 3 and 8."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import EXIT_CONFIG, EXIT_FAILURE, main
from app.core.roots import make_root
from app.core.settings import load_settings
from app.engine.instance_lock import InstanceLock
from app.engine.queue_store import QueueStore


def _queue(db: Path, root_id: str, base: Path, names: list[str]) -> None:
    async def fill() -> None:
        store = QueueStore(db)
        await store.open()
        for name in names:
            await store.add(root_id, name, str(base / name), 10, 1)
        await store.close()

    asyncio.run(fill())


def _jobs(db: Path) -> list[Any]:
    async def read() -> list[Any]:
        store = QueueStore(db)
        await store.open()
        try:
            return await store.jobs()
        finally:
            await store.close()

    return asyncio.run(read())


def test_move_folder_keeps_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "Volumes" / "FS", tmp_path / "mnt" / "FS"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    settings = load_settings()
    _queue(settings.paths.state_db, make_root(str(old), "P").id, old, ["a.mov", "Day 1/b.mov"])
    assert main(["move-folder", str(old), str(new)]) == 0
    assert "2 files" in capsys.readouterr().out
    jobs = _jobs(settings.paths.state_db)
    assert {j.root_id for j in jobs} == {make_root(str(new), "Other spelling").id}
    assert sorted(j.abs_path for j in jobs) == sorted([str(new / "a.mov"), str(new / "Day 1" / "b.mov")])


def test_move_folder_says_plainly_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "new").mkdir()
    assert main(["move-folder", str(tmp_path / "never"), str(tmp_path / "new")]) == EXIT_CONFIG
    assert "no history" in capsys.readouterr().err
    assert main(["move-folder", str(tmp_path / "never"), str(tmp_path / "missing")]) == EXIT_CONFIG
    assert "no such folder" in capsys.readouterr().err
    lock = InstanceLock(load_settings().paths.data_dir / "engine.lock")
    lock.acquire()
    try:
        assert main(["move-folder", str(tmp_path / "never"), str(tmp_path / "new")]) == EXIT_FAILURE
        assert "already uploading" in capsys.readouterr().err
    finally:
        lock.release()


async def test_confirm_account_records_the_signed_in_account(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests_auth_helpers import signed_in_service

    monkeypatch.setenv("POSTFLOW_SANDBOX", "1")
    monkeypatch.setenv("POSTFLOW_SANDBOX_URL", sandbox.url)
    auth = await signed_in_service(sandbox)
    await auth.aclose()
    code = await asyncio.to_thread(main, ["confirm-account"])
    assert code == 0, capsys.readouterr().err
    store = QueueStore(load_settings().paths.state_db)
    await store.open()
    meant = json.loads(await store.meta("account") or "{}")
    await store.close()
    assert meant["account_id"] == sandbox.sandbox.default_account_id()


def test_confirm_account_needs_a_sign_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["confirm-account"]) == EXIT_CONFIG
    assert "not signed in" in capsys.readouterr().err
