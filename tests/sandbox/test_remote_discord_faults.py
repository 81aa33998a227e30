"""remote_upload fetching its source, Discord webhooks, fault injection, persistence."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from support_sandbox import RunningSandbox

from app.sandbox.config import SandboxConfig

PAYLOAD = os.urandom(300_000)


class _Source(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/empty":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/good":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        else:
            self.send_response(404)
            self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - a source that tells its size, but takes no ranges
        self.send_response(200)
        self.send_header("Content-Length", "0" if self.path == "/empty" else str(len(PAYLOAD)))
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def source_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _wait(predicate: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def _remote(api: httpx.Client, ids: dict[str, str], name: str, url: str) -> dict[str, Any]:
    r = api.post(
        f"/v4/accounts/{ids['account']}/folders/{ids['root']}/files/remote_upload",
        json={"data": {"name": name, "source_url": url}},
    )
    assert r.status_code == 202, r.text
    return dict(r.json()["data"])


def test_remote_upload_fetches_the_source(
    sandbox: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str], source_server: str
) -> None:
    created = _remote(api, seed_ids, "pulled.mov", f"{source_server}/good")
    assert created["status"] == "created"
    status_url = f"/v4/accounts/{seed_ids['account']}/files/{created['id']}/status"
    _wait(lambda: api.get(status_url).json()["data"]["upload_complete"])
    info = next(f for f in sandbox.files() if f["id"] == created["id"])
    assert info["sha256"] == hashlib.sha256(PAYLOAD).hexdigest() and info["file_size"] == len(PAYLOAD)


def test_remote_upload_from_a_bad_source_fails(
    sandbox: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str], source_server: str
) -> None:
    status_url = "/v4/accounts/{a}/files/{f}/status"
    for url in (f"{source_server}/missing", "http://127.0.0.1:1/refused"):
        created = _remote(api, seed_ids, "broken.mov", url)
        path = status_url.format(a=seed_ids["account"], f=created["id"])
        # polled slower than the status limit (5/s): a refused source is retried for a moment
        status = _wait(
            lambda p=path: (time.sleep(0.25), s := api.get(p).json()["data"])[1]["upload_failed"] and s
        )
        assert status["upload_complete"] is False


def test_discord_webhook_accepts_embeds_and_rate_limits(sandbox: RunningSandbox) -> None:
    url = f"{sandbox.url}/discord/api/webhooks/123456/tok"
    body = {"content": "3 files uploaded", "embeds": [{"title": "A001_C002.mov", "color": 5763719}]}
    first = httpx.post(url, json=body, params={"wait": "true"})
    assert first.status_code == 200 and first.json()["content"] == "3 files uploaded"
    codes = [httpx.post(url, json=body).status_code for _ in range(5)]
    assert codes == [204, 204, 204, 204, 429]
    limited = httpx.post(url, json=body)
    assert limited.status_code == 429 and limited.json()["retry_after"] > 0
    assert limited.json()["global"] is False and "retry-after" in limited.headers
    messages = sandbox.control("/_sandbox/discord/messages")["messages"]
    assert len(messages) == 5 and messages[0]["payload"]["embeds"][0]["title"] == "A001_C002.mov"


def test_discord_errors(sandbox: RunningSandbox) -> None:
    base = f"{sandbox.url}/discord/api/webhooks"
    assert httpx.post(f"{base}/1/t", json={}).json()["code"] == 50035
    assert (
        httpx.post(f"{base}/1/t", content=b"{", headers={"Content-Type": "application/json"}).json()["code"]
        == 50109
    )
    assert httpx.post(f"{base}/abc/t", json={"content": "x"}).json()["code"] == 10015
    assert httpx.post(f"{base}/1/invalid", json={"content": "x"}).status_code == 401
    assert httpx.post(f"{base}/1/t", json={"content": "x" * 2001}).status_code == 400


def test_fault_burst_and_rate_on_api(sandbox: RunningSandbox, api: httpx.Client) -> None:
    sandbox.control("/_sandbox/faults", {"api": {"burst": 2, "burst_kind": "503"}})
    assert [api.get("/v4/me").status_code for _ in range(3)] == [503, 503, 200]
    sandbox.control("/_sandbox/faults", {"api": {"rate": 1.0, "kinds": ["500"]}})
    r = api.get("/v4/me")
    assert r.status_code == 500 and r.json()["errors"][0]["detail"]
    sandbox.control("/_sandbox/faults", {"clear": True})
    assert api.get("/v4/me").status_code == 200
    assert sandbox.control("/_sandbox/faults")["injected"]["api"] == 3


def test_fault_reset_and_garbage(sandbox: RunningSandbox, api: httpx.Client) -> None:
    sandbox.control("/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "reset"}})
    with pytest.raises(httpx.TransportError):
        api.get("/v4/me")
    sandbox.control("/_sandbox/faults", {"ims": {"burst": 1, "burst_kind": "garbage"}})
    r = httpx.post(f"{sandbox.url}/ims/token/v3", data={"grant_type": "refresh_token"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_fault_stall_holds_the_request(sandbox: RunningSandbox, api: httpx.Client) -> None:
    sandbox.control("/_sandbox/settings", {"stall_seconds": 30})
    sandbox.control("/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "stall"}})
    with pytest.raises(httpx.ReadTimeout):
        api.get("/v4/me", timeout=0.5)


def test_bad_fault_settings_are_refused(sandbox: RunningSandbox) -> None:
    assert sandbox.http is not None
    assert sandbox.http.post("/_sandbox/faults", json={"parts": {"kinds": ["boom"]}}).status_code == 400
    assert sandbox.http.post("/_sandbox/faults", json={"nowhere": {}}).status_code == 400


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "persist"
    first = RunningSandbox(SandboxConfig(state_dir=state)).start()
    try:
        token = first.token()
        headers = {"Authorization": f"Bearer {token}"}
        assert first.http is not None
        account = first.http.get("/v4/accounts", headers=headers).json()["data"][0]["id"]
        root = first.http.get(
            f"/v4/accounts/{account}/projects/{_demo(first, headers, account)}", headers=headers
        ).json()["data"]["root_folder_id"]
        folder = first.http.post(
            f"/v4/accounts/{account}/folders/{root}/folders",
            json={"data": {"name": "Kept"}},
            headers=headers,
        ).json()["data"]
    finally:
        first.stop()
    second = RunningSandbox(SandboxConfig(state_dir=state)).start()
    try:
        assert second.http is not None
        r = second.http.get(f"/v4/accounts/{account}/folders/{folder['id']}", headers=headers)
        assert r.status_code == 200 and r.json()["data"]["name"] == "Kept"
    finally:
        second.stop()


def _demo(sb: RunningSandbox, headers: dict[str, str], account: str) -> str:
    assert sb.http is not None
    ws = sb.http.get(f"/v4/accounts/{account}/workspaces", headers=headers).json()["data"][0]["id"]
    projects = sb.http.get(f"/v4/accounts/{account}/workspaces/{ws}/projects", headers=headers).json()
    return str(projects["data"][0]["id"])


def test_lost_answer_fault_does_the_work_then_drops(sandbox: RunningSandbox, api: httpx.Client) -> None:
    account = api.get("/v4/accounts").json()["data"][0]["id"]
    root = sandbox.sandbox.store.projects[next(iter(sandbox.sandbox.store.projects))].root_folder_id
    sandbox.control("/_sandbox/faults", {"api": {"burst": 1, "burst_kind": "lost", "only": "folders.create"}})
    assert api.get("/v4/me").status_code == 200  # other operations are untouched
    with pytest.raises(httpx.TransportError):
        api.post(f"/v4/accounts/{account}/folders/{root}/folders", json={"data": {"name": "Ghost"}})
    names = [f["name"] for f in sandbox.control("/_sandbox/folders")["folders"]]
    assert names.count("Ghost") == 1  # it happened, even though nobody heard back


def test_remote_upload_answers_with_its_status_link(
    api: httpx.Client, seed_ids: dict[str, str], source_server: str
) -> None:
    r = api.post(
        f"/v4/accounts/{seed_ids['account']}/folders/{seed_ids['root']}/files/remote_upload",
        json={"data": {"name": "linked.mov", "source_url": f"{source_server}/good"}},
    )
    doc = r.json()
    assert doc["links"]["status"] == f"/v4/accounts/{seed_ids['account']}/files/{doc['data']['id']}/status"
    assert api.get(doc["links"]["status"]).status_code == 200
    _wait(lambda: api.get(doc["links"]["status"]).json()["data"]["upload_complete"])


def test_an_empty_source_is_a_failed_upload_not_a_zero_byte_file(
    sandbox: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str], source_server: str
) -> None:
    for chunk in (0, 65536):  # the plain fetcher and the ranged one
        sandbox.control("/_sandbox/settings", {"remote_fetch_chunk": chunk})
        created = _remote(api, seed_ids, f"empty{chunk}.mov", f"{source_server}/empty")
        path = f"/v4/accounts/{seed_ids['account']}/files/{created['id']}/status"
        _wait(lambda p=path: api.get(p).json()["data"]["upload_failed"])


def test_a_plain_source_without_head_or_ranges_is_fetched_whole(
    sandbox: RunningSandbox, api: httpx.Client, seed_ids: dict[str, str], source_server: str
) -> None:
    sandbox.control("/_sandbox/settings", {"remote_fetch_chunk": 65536})
    created = _remote(api, seed_ids, "plain.mov", f"{source_server}/good")
    status_url = f"/v4/accounts/{seed_ids['account']}/files/{created['id']}/status"
    _wait(lambda: api.get(status_url).json()["data"]["upload_complete"])
    stats = sandbox.control("/_sandbox/stats")
    assert stats["fetch.head"] == 1 and stats["fetch.get"] == 1 and "fetch.range_get" not in stats


def test_fetch_faults_take_only_the_fetchers_kinds(sandbox: RunningSandbox) -> None:
    bad = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"fetch": {"rate": 0.5, "kinds": ["500"]}})
    assert bad.status_code == 400 and "fetch fault kinds" in bad.text
    good = sandbox.control("/_sandbox/faults", {"fetch": {"rate": 0.5}})
    assert good["scopes"]["fetch"]["kinds"] == ["reset"]
