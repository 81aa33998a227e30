"""Storage options: bytes not kept (still checked and hashed in order), a full disk, listing lag."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support_sandbox import RunningSandbox

from app.sandbox import part_receive
from app.sandbox.config import SandboxConfig

PART = 64 * 1024


def _headers(media_type: str) -> dict[str, str]:
    return {"x-amz-acl": "private", "Content-Type": media_type}


def _create(api: httpx.Client, ids: dict[str, str], name: str, size: int) -> dict[str, Any]:
    r = api.post(
        f"/v4/accounts/{ids['account']}/folders/{ids['root']}/files/local_upload",
        json={"data": {"name": name, "file_size": size}},
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def _put(f: dict[str, Any], data: bytes, index: int) -> httpx.Response:
    offset = sum(u["size"] for u in f["upload_urls"][:index])
    u = f["upload_urls"][index]
    return httpx.put(u["url"], content=data[offset : offset + u["size"]], headers=_headers(f["media_type"]))


def _info(sandbox: RunningSandbox, file_id: str) -> dict[str, Any]:
    return next(f for f in sandbox.files() if f["id"] == file_id)


def _wait(predicate: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


@pytest.fixture
def no_bytes(sandbox: RunningSandbox) -> RunningSandbox:
    sandbox.control("/_sandbox/settings", {"part_size": PART, "keep_bytes": False})
    return sandbox


# ---- keep_bytes off ----


def test_without_kept_bytes_parts_out_of_order_still_hash_in_order(
    no_bytes: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str], sandbox_config: SandboxConfig
) -> None:
    state = sandbox_config.state_dir
    assert state is not None
    data = os.urandom(3 * PART - 5000)
    f = _create(api, seed_ids, "nobytes.mov", len(data))
    assert len(f["upload_urls"]) == 3
    assert _put(f, data, 2).status_code == 200
    assert len(_files_under(state / "spool")) == 1  # early: waits on disk until its turn
    assert _put(f, data, 0).status_code == 200
    assert _put(f, data, 0).status_code == 200  # a retried part counts once
    assert _put(f, data, 1).status_code == 200
    info = _wait(lambda: (i := _info(no_bytes, f["id"]))["status"] != "created" and i)
    assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["keep_bytes"] is False
    assert _files_under(state / "spool") == [] and _files_under(state / "blobs") == []


def test_without_kept_bytes_a_download_says_why_it_cannot(
    no_bytes: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str]
) -> None:
    data = os.urandom(1000)
    f = _create(api, seed_ids, "gone.mov", len(data))
    assert _put(f, data, 0).status_code == 200
    _wait(lambda: _info(no_bytes, f["id"])["status"] == "transcoded")
    shown = api.get(
        f"/v4/accounts/{seed_ids['account']}/files/{f['id']}", params={"include": "media_links.original"}
    ).json()["data"]
    url = shown["media_links"]["original"]["download_url"]
    r = httpx.get(url)
    assert r.status_code == 404 and "<Code>NoSuchKey</Code>" in r.text
    assert "bytes not kept by this sandbox (keep_bytes is off)" in r.text
    assert no_bytes.control("/_sandbox/settings")["keep_bytes"] is False
    pulled = api.post(
        f"/v4/accounts/{seed_ids['account']}/folders/{seed_ids['root']}/files/remote_upload",
        json={"data": {"name": "pulled.mov", "source_url": url}},
    ).json()["data"]
    assert _wait(lambda: _info(no_bytes, pulled["id"])["upload_failed"])  # a source without bytes


def test_without_kept_bytes_a_restart_mid_upload_still_completes(tmp_path: Path) -> None:
    """The running hash dies with the process; the file completes with an unknown sha256."""
    config = SandboxConfig(state_dir=tmp_path / "state", keep_bytes=False, part_size=PART, transcode_delay=0)
    data = os.urandom(2 * PART + 10)
    first = RunningSandbox(config).start()
    try:
        api = httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {first.token()}"})
        account = api.get("/v4/accounts").json()["data"][0]["id"]
        root = next(f for f in first.control("/_sandbox/folders")["folders"] if f["parent_id"] is None)
        f = _create(api, {"account": account, "root": root["id"]}, "restart.mov", len(data))
        assert _put(f, data, 0).status_code == 200
        assert _put(f, data, 2).status_code == 200
        api.close()
    finally:
        first.stop()
    second = RunningSandbox(SandboxConfig(state_dir=tmp_path / "state", keep_bytes=False)).start()
    try:
        for u in f["upload_urls"]:  # same signing key, new port
            u["url"] = u["url"].replace(first.url, second.url)
        assert _put(f, data, 1).status_code == 200
        info = _wait(lambda: (i := _info(second, f["id"]))["status"] != "created" and i)
        assert info["sha256"] is None and info["parts_received"] == 3
        assert _files_under(tmp_path / "state" / "spool") == []
    finally:
        second.stop()


# ---- a full disk ----


def _no_space(tmp: Path, chunks: list[bytes]) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(("keep_bytes", "index"), [(True, 0), (False, 1)])  # a blob, a spooled part
def test_a_full_disk_answers_a_plain_s3_error_and_a_retry_works(
    sandbox: RunningSandbox,
    api: httpx.Client,
    seed_ids: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    keep_bytes: bool,
    index: int,
) -> None:
    sandbox.control("/_sandbox/settings", {"part_size": PART, "keep_bytes": keep_bytes})
    data = os.urandom(2 * PART + 3)
    f = _create(api, seed_ids, "full.mov", len(data))
    with monkeypatch.context() as patch, caplog.at_level(logging.ERROR):
        patch.setattr(part_receive, "_write_part", _no_space)
        r = _put(f, data, index)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/xml")
    assert "<Code>InternalError</Code>" in r.text
    assert "sandbox storage is full: no space left on device (" in r.text
    assert str(sandbox.sandbox.config.state_dir) in r.text
    assert any("sandbox storage is full" in rec.getMessage() for rec in caplog.records)
    assert _info(sandbox, f["id"])["parts_received"] == 0
    assert [_put(f, data, i).status_code for i in range(3)] == [200, 200, 200]
    info = _wait(lambda: (i := _info(sandbox, f["id"]))["status"] != "created" and i)
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


# ---- listing lag ----


def test_listing_lag_hides_new_children_from_listings_only(
    sandbox: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str]
) -> None:
    sandbox.control("/_sandbox/settings", {"listing_lag": 30})
    account, root = seed_ids["account"], seed_ids["root"]
    folder = api.post(f"/v4/accounts/{account}/folders/{root}/folders", json={"data": {"name": "Late"}})
    assert folder.status_code == 201
    folder_id = folder.json()["data"]["id"]
    f = _create(api, seed_ids, "late.mov", 10)
    listings = (
        f"/v4/accounts/{account}/folders/{root}/children",
        f"/v4/accounts/{account}/folders/{root}/folders",
    )

    def listed() -> set[str]:
        return {a["id"] for path in listings for a in api.get(path).json()["data"]}

    assert api.get(f"/v4/accounts/{account}/folders/{folder_id}").status_code == 200
    assert api.get(f"/v4/accounts/{account}/files/{f['id']}").status_code == 200
    early = listed()
    assert folder_id not in early and f["id"] not in early
    assert {"Dailies", "VFX"} <= {a["name"] for a in api.get(listings[1]).json()["data"]}  # the seed is old
    sandbox.control("/_sandbox/clock", {"advance_seconds": 31})
    assert {folder_id, f["id"]} <= listed()
