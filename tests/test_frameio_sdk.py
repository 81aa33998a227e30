"""A client nobody here wrote, the official ``frameio`` SDK, works against the sandbox unchanged."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from frameio import Frameio, NotFoundError, UnauthorizedError
from frameio.files import FileCreateLocalUploadParamsData
from frameio.folders import FolderCreateParamsData
from frameio.upload import FrameioUploader

NO_RETRY: Any = {"max_retries": 0}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def test_sdk_lists_creates_uploads_and_reads_status(sandbox: Any, tmp_path: Path, http: httpx.Client) -> None:
    client = Frameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
    me = client.users.show()
    assert me.data.email

    accounts = list(client.accounts.index())
    account_id = accounts[0].id
    workspaces = list(client.workspaces.index(account_id))
    projects = list(client.projects.index(account_id, workspaces[0].id))
    assert {p.name for p in projects} == {"Demo Project", "Client Review"}
    project = client.projects.show(account_id, projects[0].id).data

    folder = client.folders.create(
        account_id, project.root_folder_id, data=FolderCreateParamsData(name="SDK folder")
    ).data
    assert folder.name == "SDK folder" and folder.type == "folder"
    children = list(client.folders.index(account_id, project.root_folder_id))
    assert "SDK folder" in {c.name for c in children}

    payload = os.urandom(123_457)
    upload = client.files.create_local_upload(
        account_id,
        folder.id,
        data=FileCreateLocalUploadParamsData(name="clip.mov", file_size=len(payload)),
    ).data
    assert upload.upload_urls and upload.upload_urls[0].size == len(payload)
    status = client.files.show_file_upload_status(account_id, upload.id).data
    assert status.upload_complete is False and status.upload_failed is False

    _upload_with_sdk(client, account_id, upload, payload, tmp_path)
    assert client.files.show(account_id, upload.id).data.status in ("uploaded", "transcoded")


def _upload_with_sdk(client: Frameio, account_id: str, upload: Any, payload: bytes, tmp_path: Path) -> None:
    """The SDK's own uploader (parallel parts, its own chunking), then wait for completion."""
    source = tmp_path / upload.name
    source.write_bytes(payload)
    with source.open("rb") as fh:
        FrameioUploader(upload, fh, max_retries=1).upload()
    deadline = time.monotonic() + 10
    while not client.files.show_file_upload_status(account_id, upload.id).data.upload_complete:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("keep_bytes", [True, False])
def test_sdk_uploads_a_multi_part_file(
    sandbox: Any, tmp_path: Path, http: httpx.Client, seed_ids: dict[str, str], keep_bytes: bool
) -> None:
    """The SDK cuts ceil(size / len(upload_urls)) bytes per URL; the sandbox must hand out that split."""
    part_size = 40_000
    sandbox.control("/_sandbox/settings", {"part_size": part_size, "keep_bytes": keep_bytes})
    payload = os.urandom(4 * part_size - 36_543)  # four parts, the size no multiple of anything round
    client = Frameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
    upload = client.files.create_local_upload(
        seed_ids["account"],
        seed_ids["root"],
        data=FileCreateLocalUploadParamsData(name="multi.mov", file_size=len(payload)),
    ).data
    sizes = [u.size for u in upload.upload_urls or []]
    assert len(sizes) == 4 and sum(sizes) == len(payload) and len(payload) % part_size
    assert sizes[:-1] == [math.ceil(len(payload) / 4)] * 3

    _upload_with_sdk(client, seed_ids["account"], upload, payload, tmp_path)
    info = next(f for f in sandbox.files() if f["id"] == upload.id)
    assert info["parts_received"] == 4 and info["status"] in ("uploaded", "transcoded")
    assert info["sha256"] == hashlib.sha256(payload).hexdigest()


def test_sdk_sees_errors_as_documented(sandbox: Any, http: httpx.Client) -> None:
    with pytest.raises(UnauthorizedError) as info:
        Frameio(base_url=sandbox.url, token="wrong", httpx_client=http).users.show(request_options=NO_RETRY)
    assert info.value.status_code == 401 and info.value.body.errors[0].detail
    client = Frameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
    with pytest.raises(NotFoundError):
        client.projects.show("no-such-account", "no-such-project", request_options=NO_RETRY)


def test_sdk_stacks_versions_and_comments(
    sandbox: Any, tmp_path: Path, http: httpx.Client, seed_ids: dict[str, str]
) -> None:
    """Version stacks and comments as the SDK drives them: a stack of two, a third moved in as
    its head, the versions listed oldest first, comments created, listed, edited and deleted."""
    from frameio import UnprocessableEntityError
    from frameio.comments import CreateCommentParamsData, UpdateCommentParamsData
    from frameio.files import FileMoveParamsData
    from frameio.version_stacks import VersionStackCreateParamsData

    client = Frameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
    account, root = seed_ids["account"], seed_ids["root"]
    versions = []
    for n in (1, 2, 3):
        payload = os.urandom(5000 + n)
        upload = client.files.create_local_upload(
            account,
            root,
            data=FileCreateLocalUploadParamsData(name=f"SC010_v00{n}.mov", file_size=len(payload)),
        ).data
        _upload_with_sdk(client, account, upload, payload, tmp_path)
        versions.append(upload.id)
    stack = client.version_stacks.create(
        account, root, data=VersionStackCreateParamsData(file_ids=versions[:2])
    ).data
    moved = client.files.move(account, versions[2], data=FileMoveParamsData(parent_id=stack.id)).data
    assert moved.parent_id == stack.id
    shown = client.version_stacks.show(account, stack.id).data
    assert shown.head_version is not None and shown.head_version.id == versions[2]
    assert shown.name == "SC010_v003.mov"
    assert [c.id for c in client.version_stacks.index(account, stack.id)] == versions
    assert [s.id for s in client.version_stacks.list(account, root)] == [stack.id]
    with pytest.raises(UnprocessableEntityError):  # already stacked: not a second stack
        client.version_stacks.create(account, root, data=VersionStackCreateParamsData(file_ids=versions[:2]),
                                     request_options=NO_RETRY)  # fmt: skip

    note = client.comments.create(
        account, versions[2], data=CreateCommentParamsData(text="Grade is too warm", timestamp="00:00:01:00")
    ).data
    assert note.timestamp == 24
    client.comments.update(account, note.id, data=UpdateCommentParamsData(completed=True))
    listed = list(client.comments.index(account, versions[2]))
    assert [c.text for c in listed] == ["Grade is too warm"] and listed[0].completed_at is not None
    client.comments.delete(account, note.id)
    assert list(client.comments.index(account, versions[2])) == []


async def test_sdk_remote_upload_is_fetched_from_the_range_server_by_range(
    sandbox: Any, tmp_path: Path, seed_ids: dict[str, str]
) -> None:
    """The SDK's remote upload answer (202 with links.status) parses, and the sandbox's fetcher
    takes the file in Range chunks from PostFlow's own range server."""
    import asyncio

    from frameio import AsyncFrameio
    from frameio.files import FileCreateRemoteUploadParamsData

    from app.pull.range_server import RangeServer

    sandbox.control("/_sandbox/settings", {"remote_fetch_chunk": 50_000, "remote_fetch_parallel": 3})
    payload = os.urandom(180_001)
    source = tmp_path / "pulled.mov"
    source.write_bytes(payload)
    server = RangeServer()
    port = await server.start()
    publication = server.publish(str(source), 60)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            client = AsyncFrameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
            created = await client.files.create_remote_upload(
                seed_ids["account"], seed_ids["root"],
                data=FileCreateRemoteUploadParamsData(
                    name="pulled.mov", source_url=f"http://127.0.0.1:{port}{server.url_path(publication)}"
                ),
            )  # fmt: skip
            assert created.data.status == "created"
            assert created.links and "status" in created.links
            deadline = time.monotonic() + 10
            while True:
                status = await client.files.show_file_upload_status(seed_ids["account"], created.data.id)
                if status.data.upload_complete:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        served = server.served[publication.token]
    finally:
        await server.stop()
    info = next(f for f in sandbox.files() if f["name"] == "pulled.mov")
    assert info["sha256"] == hashlib.sha256(payload).hexdigest() and info["file_size"] == len(payload)
    assert served.covered == len(payload) and served.requests == 5  # a HEAD, then 4 ranges of 50,000
    assert sandbox.control("/_sandbox/stats")["fetch.range_get"] == 4
