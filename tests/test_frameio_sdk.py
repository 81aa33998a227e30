"""A client nobody here wrote, the official ``frameio`` SDK, works against the sandbox unchanged."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
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


def test_sdk_lists_creates_uploads_and_reads_status(sandbox: Any, tmp_path: Any, http: httpx.Client) -> None:
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

    source = tmp_path / "clip.mov"
    source.write_bytes(payload)
    with source.open("rb") as fh:
        FrameioUploader(upload, fh).upload()
    deadline = time.monotonic() + 10
    while not client.files.show_file_upload_status(account_id, upload.id).data.upload_complete:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.files.show(account_id, upload.id).data.status in ("uploaded", "transcoded")


def test_sdk_sees_errors_as_documented(sandbox: Any, http: httpx.Client) -> None:
    with pytest.raises(UnauthorizedError) as info:
        Frameio(base_url=sandbox.url, token="wrong", httpx_client=http).users.show(request_options=NO_RETRY)
    assert info.value.status_code == 401 and info.value.body.errors[0].detail
    client = Frameio(base_url=sandbox.url, token=sandbox.token(), httpx_client=http)
    with pytest.raises(NotFoundError):
        client.projects.show("no-such-account", "no-such-project", request_options=NO_RETRY)
