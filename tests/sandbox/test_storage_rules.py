"""Part URLs are checked like S3: each rejection rule, then the created → transcoded path."""

from __future__ import annotations

import hashlib
import math
import os
import time
from typing import Any

import httpx
import pytest

from app.sandbox.storage import split_parts

PART = 256 * 1024


@pytest.fixture
def upload(sandbox: Any, api: httpx.Client, seed_ids: dict[str, str]) -> dict[str, Any]:
    sandbox.control("/_sandbox/settings", {"part_size": PART})
    data = os.urandom(PART * 2 + 1000)
    r = api.post(
        f"/v4/accounts/{seed_ids['account']}/folders/{seed_ids['root']}/files/local_upload",
        json={"data": {"name": "shot_010.mov", "file_size": len(data)}},
    )
    assert r.status_code == 201
    return {"file": r.json()["data"], "bytes": data}


def _headers(media_type: str, **extra: str) -> dict[str, str]:
    return {"x-amz-acl": "private", "Content-Type": media_type, **extra}


def _part_bytes(f: dict[str, Any], data: bytes, index: int) -> bytes:
    """Bytes [offset, offset + size) of part ``index``, offsets from the URLs' own sizes."""
    offset = sum(u["size"] for u in f["upload_urls"][:index])
    return data[offset : offset + f["upload_urls"][index]["size"]]


def _first_part(upload: dict[str, Any]) -> bytes:
    return _part_bytes(upload["file"], upload["bytes"], 0)


def _put(f: dict[str, Any], data: bytes, index: int) -> httpx.Response:
    url = f["upload_urls"][index]["url"]
    return httpx.put(url, content=_part_bytes(f, data, index), headers=_headers(f["media_type"]))


def _wait_status(api: httpx.Client, account: str, file_id: str, want: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = api.get(f"/v4/accounts/{account}/files/{file_id}").json()["data"]
        if f["status"] == want:
            return dict(f)
        time.sleep(0.02)
    raise AssertionError(f"file never reached {want}")


@pytest.mark.parametrize(
    ("size", "part_size", "parts"),
    [
        (10, 4, [4, 4, 2]),  # three parts: ceil(10 / 3) = 4 each, the rest last
        (8, 4, [4, 4]),
        (3, 4, [3]),
        (9, 4, [3, 3, 3]),  # not [4, 4, 1]: equal parts, as the SDK cuts them
        (11, 5, [4, 4, 3]),
        (1, 4, [1]),
        (0, 4, [0]),  # the API refuses file_size 0; the model still gives one empty part
        (2 * PART + 1000, PART, [175_096, 175_096, 175_096]),
    ],
)
def test_parts_are_equal_like_the_service_cuts_them(size: int, part_size: int, parts: list[int]) -> None:
    assert split_parts(size, part_size) == parts


@pytest.mark.parametrize(
    ("size", "part_size"),
    [(5 * 10**12, 8 * 1024 * 1024), (19_998, 1), (10_001, 1), (123_457, 30_000), (10**9 + 7, 10**6)],
)
def test_parts_match_the_sdk_chunking_and_the_10000_cap(size: int, part_size: int) -> None:
    parts = split_parts(size, part_size)
    chunk = math.ceil(size / len(parts))  # frameio.core.chunked_uploader.ChunkedS3Uploader
    assert len(parts) <= 10_000 and sum(parts) == size
    assert parts[:-1] == [chunk] * (len(parts) - 1) and 0 < parts[-1] <= chunk


def test_local_upload_returns_split_part_urls(upload: dict[str, Any]) -> None:
    f = upload["file"]
    sizes = [u["size"] for u in f["upload_urls"]]
    assert sizes == split_parts(len(upload["bytes"]), PART) and len(sizes) == 3
    assert sum(sizes) == len(upload["bytes"])
    assert f["media_type"] == "video/quicktime"
    assert f["status"] == "created"
    assert all("X-Amz-Expires=" in u["url"] and "X-Amz-Date=" in u["url"] for u in f["upload_urls"])


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-Type": "video/quicktime"}, 403, "SignatureDoesNotMatch"),  # no x-amz-acl
        (
            {"x-amz-acl": "public-read", "Content-Type": "video/quicktime"},
            403,
            "SignatureDoesNotMatch",
        ),
        (
            {"x-amz-acl": "private", "Content-Type": "application/octet-stream"},
            403,
            "SignatureDoesNotMatch",
        ),
        ({"x-amz-acl": "private"}, 403, "SignatureDoesNotMatch"),  # no Content-Type
    ],
)
def test_unsigned_headers_are_refused(
    sandbox: Any, upload: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    url = upload["file"]["upload_urls"][0]["url"]
    r = httpx.put(url, content=_first_part(upload), headers=headers)
    assert r.status_code == status
    assert f"<Code>{code}</Code>" in r.text and r.headers["content-type"].startswith("application/xml")
    assert sandbox.files()[0]["parts_received"] == 0


@pytest.mark.parametrize(("delta", "code"), [(-1, "EntityTooSmall"), (1, "EntityTooLarge")])
def test_wrong_body_length_is_refused(upload: dict[str, Any], delta: int, code: str) -> None:
    f = upload["file"]
    size = f["upload_urls"][0]["size"] + delta
    r = httpx.put(f["upload_urls"][0]["url"], content=b"x" * size, headers=_headers(f["media_type"]))
    assert r.status_code == 400 and f"<Code>{code}</Code>" in r.text


def test_missing_content_length_is_refused(upload: dict[str, Any]) -> None:
    f = upload["file"]

    def chunks() -> Any:
        yield _first_part(upload)

    r = httpx.put(f["upload_urls"][0]["url"], content=chunks(), headers=_headers(f["media_type"]))
    assert r.status_code == 411 and "MissingContentLength" in r.text


def test_tampered_signature_is_refused(upload: dict[str, Any]) -> None:
    f = upload["file"]
    url = f["upload_urls"][0]["url"].replace("X-Amz-Expires=86400", "X-Amz-Expires=999999")
    r = httpx.put(url, content=_first_part(upload), headers=_headers(f["media_type"]))
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text


def test_expired_url_is_refused(sandbox: Any, upload: dict[str, Any]) -> None:
    f = upload["file"]
    sandbox.control("/_sandbox/clock", {"advance_seconds": 86401})
    r = httpx.put(
        f["upload_urls"][0]["url"],
        content=_first_part(upload),
        headers=_headers(f["media_type"]),
    )
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text and "expired" in r.text


def test_all_parts_in_any_order_make_the_file_uploaded_then_transcoded(
    sandbox: Any, api: httpx.Client, seed_ids: dict[str, str], upload: dict[str, Any]
) -> None:
    f, data = upload["file"], upload["bytes"]
    status_url = f"/v4/accounts/{seed_ids['account']}/files/{f['id']}/status"
    for index in (2, 0):
        assert _put(f, data, index).status_code == 200
    assert api.get(status_url).json()["data"]["upload_complete"] is False
    assert _put(f, data, 1).status_code == 200
    done = _wait_status(api, seed_ids["account"], f["id"], "transcoded")
    assert done["file_size"] == len(data)
    status = api.get(status_url).json()["data"]
    assert status["upload_complete"] is True and status["upload_failed"] is False
    shown = api.get(
        f"/v4/accounts/{seed_ids['account']}/files/{f['id']}",
        params={"include": "media_links.original"},
    ).json()["data"]
    downloaded = httpx.get(shown["media_links"]["original"]["download_url"]).content
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(data).hexdigest()
    assert sandbox.files()[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_no_authorization_needed_on_part_urls_and_api_needs_it(upload: dict[str, Any], sandbox: Any) -> None:
    r = httpx.get(f"{sandbox.url}/v4/me")
    assert r.status_code == 401 and r.json()["errors"][0]["detail"]


def test_an_authorization_header_on_storage_is_refused(upload: dict[str, Any]) -> None:
    f = upload["file"]
    headers = _headers(f["media_type"], Authorization="Bearer leaked-token")
    r = httpx.put(f["upload_urls"][0]["url"], content=_first_part(upload), headers=headers)
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text


def _put_all(f: dict[str, Any], data: bytes) -> list[int]:
    codes, offset = [], 0
    for u in f["upload_urls"]:
        body = data[offset : offset + u["size"]]
        codes.append(httpx.put(u["url"], content=body, headers=_headers(f["media_type"])).status_code)
        offset += u["size"]
    return codes


def test_a_part_sent_again_after_completion_is_unknown_like_s3(
    api: httpx.Client, seed_ids: dict[str, str], upload: dict[str, Any]
) -> None:
    f, data = upload["file"], upload["bytes"]
    assert _put_all(f, data) == [200, 200, 200]
    _wait_status(api, seed_ids["account"], f["id"], "transcoded")
    again = httpx.put(
        f["upload_urls"][0]["url"], content=_part_bytes(f, data, 0), headers=_headers(f["media_type"])
    )
    assert again.status_code == 404 and "NoSuchUpload" in again.text


def test_an_upload_can_be_made_to_fail(
    sandbox: Any, api: httpx.Client, seed_ids: dict[str, str], upload: dict[str, Any]
) -> None:
    sandbox.control("/_sandbox/settings", {"fail_next_uploads": 1})
    assert _put_all(upload["file"], upload["bytes"]) == [200, 200, 200]
    status = api.get(f"/v4/accounts/{seed_ids['account']}/files/{upload['file']['id']}/status").json()["data"]
    assert status["upload_failed"] is True and status["upload_complete"] is False
