"""The control endpoint against a real headless engine process: the CLI's status, pause,
resume, retry and cancel; refusals without the secret and from another user; the JSON
against the documented schema; /metrics as Prometheus text; the fallback once it stops."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from engine_harness import EngineProcess, sign_in_into_file_keyring
from prometheus_client.parser import text_string_to_metric_families

from app.control import endpoint as ep

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "status.schema.json").read_text())


def cli(engine: EngineProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], env=engine.env, capture_output=True, text=True, timeout=60
    )


def status(engine: EngineProcess) -> dict[str, Any]:
    result = cli(engine, "status", "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


def until(predicate: Any, what: str, engine: EngineProcess, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert engine.proc is None or engine.proc.poll() is None, engine.log()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{engine.log()[-3000:]}")


@pytest.fixture
async def engine(sandbox: Any, tmp_path: Path) -> Iterator[EngineProcess]:
    keyring_file = tmp_path / "keyring.json"
    await sign_in_into_file_keyring(sandbox, keyring_file)
    watch = tmp_path / "watch"
    watch.mkdir()
    process = EngineProcess(sandbox, tmp_path, watch, keyring_file)
    process.start()
    until(process.ready, "the engine to start", process)
    yield process
    process.stop()


def data_dir(engine: EngineProcess) -> Path:
    return Path(engine.env["POSTFLOW_DATA_DIR"])


def test_cli_drives_the_running_engine(engine: EngineProcess, sandbox: Any, tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    (watch / "ok.mov").write_bytes(os.urandom(50_000))
    until(lambda: any(j["state"] == "done" for j in status(engine)["jobs"]), "a delivery", engine)
    doc = status(engine)
    assert doc["source"] == "app" and doc["engine"]["running"] and doc["engine"]["signed_in"]
    assert doc["metrics"]["files_delivered"] == 1 and doc["metrics"]["success_rate"] == 1.0
    text = cli(engine, "status").stdout
    assert "PostFlow is running" in text and "delivered" in text
    assert "ok.mov" in text  # files are listed though none failed

    # pause / resume: remembered, and a file added while paused waits
    assert cli(engine, "pause").returncode == 0
    assert status(engine)["engine"]["paused"] is True
    (watch / "waits.mov").write_bytes(os.urandom(40_000))
    until(
        lambda: any(j["rel_path"] == "waits.mov" for j in status(engine)["jobs"]), "the file queued", engine
    )
    assert [j["state"] for j in status(engine)["jobs"] if j["rel_path"] == "waits.mov"] == ["pending"]
    assert cli(engine, "resume").returncode == 0
    until(
        lambda: [j["state"] for j in status(engine)["jobs"] if j["rel_path"] == "waits.mov"] == ["done"],
        "the waiting file delivered after resume",
        engine,
    )

    # a refusal that does not heal → failed; retry ID and retry --all bring it back
    sandbox.control(
        "/_sandbox/faults", {"api": {"burst": 2, "burst_kind": "400", "only": "files.create_local_upload"}}
    )
    (watch / "refused.mov").write_bytes(os.urandom(30_000))
    (watch / "refused2.mov").write_bytes(os.urandom(30_000))

    def failed() -> list[int]:
        return [j["id"] for j in status(engine)["jobs"] if j["state"] == "failed"]

    ids = until(lambda: len(failed()) == 2 and failed(), "two failures", engine)
    refused = cli(engine, "retry", "999999")
    assert refused.returncode == 1 and "No job 999999" in refused.stderr
    assert cli(engine, "retry", str(ids[0])).returncode == 0
    assert cli(engine, "retry", "--all").returncode == 0
    until(
        lambda: not failed() and sum(j["state"] == "done" for j in status(engine)["jobs"]) == 4,
        "both retried files delivered",
        engine,
    )
    again = cli(engine, "retry", str(ids[0]))  # delivered now: nothing to retry, said plainly
    assert again.returncode == 1 and "only failed or cancelled jobs" in again.stderr

    # cancel a waiting job
    assert cli(engine, "pause").returncode == 0
    (watch / "cancel-me.mov").write_bytes(os.urandom(30_000))
    job = until(
        lambda: next((j for j in status(engine)["jobs"] if j["rel_path"] == "cancel-me.mov"), None),
        "the file queued",
        engine,
    )
    assert cli(engine, "cancel", str(job["id"])).returncode == 0
    assert [j["state"] for j in status(engine)["jobs"] if j["id"] == job["id"]] == ["cancelled"]
    cli(engine, "resume")


def test_requests_without_the_secret_or_from_another_user_are_refused(engine: EngineProcess) -> None:
    endpoint = ep.read(data_dir(engine))
    assert endpoint is not None and endpoint.transport == "unix"
    assert os.stat(endpoint.address).st_mode & 0o777 == 0o600
    transport = httpx.HTTPTransport(uds=endpoint.address)
    with httpx.Client(transport=transport, base_url="http://postflow") as http:
        assert http.get("/v1/status").status_code == 401
        assert http.get("/v1/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
        secret = ep.read_secret(data_dir(engine))
        ok = http.get("/v1/status", headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200 and ok.json()["schema"] == "postflow.status/1"
    if os.getuid() != 0:
        pytest.skip("checking another user's refusal needs root to become that user")
    nobody = pwd.getpwnam("nobody")

    def as_nobody(path: str) -> str:
        """A raw HTTP request from another user (the system Python: ours lives in /root)."""
        code = (
            "import socket\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({path!r})\n"
            "except OSError as e:\n"
            "    print('refused', e.errno); raise SystemExit\n"
            "s.sendall(b'GET /v1/status HTTP/1.1\\r\\nHost: x\\r\\n'\n"
            f"          b'Authorization: Bearer {secret}\\r\\n\\r\\n')\n"
            "print(s.recv(100).split()[1].decode())\n"
        )
        result = subprocess.run(
            ["/usr/bin/python3", "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            cwd="/",
        )
        return result.stdout.strip() or result.stderr

    assert as_nobody(endpoint.address).startswith("refused")  # the owner-only socket and folder
    opened = tmp_path_factory_dir(endpoint.address)
    assert as_nobody(opened) == "403"  # reached anyway (a link in an open folder): the peer's uid is checked
    assert "refused a request from user id" in engine.log()


def tmp_path_factory_dir(socket_path: str) -> str:
    """The same socket linked into a folder anyone may enter, opened to everyone."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="postflow-open-", dir="/tmp")
    os.chmod(folder, 0o777)
    link = os.path.join(folder, "control.sock")
    os.link(socket_path, link)
    os.chmod(link, 0o666)
    return link


def test_metrics_parse_as_prometheus_text(engine: EngineProcess, tmp_path: Path) -> None:
    (tmp_path / "watch" / "m.mov").write_bytes(os.urandom(20_000))
    until(lambda: any(j["state"] == "done" for j in status(engine)["jobs"]), "a delivery", engine)
    endpoint = ep.read(data_dir(engine))
    assert endpoint is not None
    secret = ep.read_secret(data_dir(engine))
    with httpx.Client(
        transport=httpx.HTTPTransport(uds=endpoint.address), base_url="http://postflow"
    ) as http:
        response = http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "postflow_upload_duration_seconds",
        "postflow_delivered_files",
        "postflow_upload_attempts",
        "postflow_queue_jobs",
        "postflow_active_uploads",
        "postflow_token_refreshes",
        "postflow_event_loop_lag_seconds",
        "postflow_health_ok",
    ):
        assert name in families, sorted(families)
    delivered = [s.value for s in families["postflow_delivered_files"].samples if s.name.endswith("_total")]
    assert delivered == [1.0]


def test_without_the_app_status_reads_the_database_and_commands_say_it_is_not_running(
    engine: EngineProcess, tmp_path: Path
) -> None:
    (tmp_path / "watch" / "a.mov").write_bytes(os.urandom(20_000))
    until(lambda: any(j["state"] == "done" for j in status(engine)["jobs"]), "a delivery", engine)
    assert engine.stop() == 0
    assert ep.read(data_dir(engine)) is None  # withdrawn on a clean stop
    doc = status(engine)
    assert doc["source"] == "database" and doc["engine"]["running"] is False
    assert doc["queue"]["counts"]["done"] == 1 and doc["jobs"][0]["rel_path"] == "a.mov"
    for args in (("pause",), ("resume",), ("retry", "--all"), ("cancel", "1")):
        result = cli(engine, *args)
        assert result.returncode == 3 and "PostFlow is not running" in result.stderr, args


def test_status_says_what_is_wrong_with_an_unreadable_database(tmp_path: Path, isolated_env: Path) -> None:
    db = isolated_env / "data" / "state.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, "-m", "app", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout
    assert "damaged" in result.stderr and "Traceback" not in result.stderr
    db.write_bytes(b"")  # empty: sqlite opens it, but it holds no queue
    result = subprocess.run(
        [sys.executable, "-m", "app", "status", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "not a PostFlow queue" in result.stderr


def test_the_diagnostics_bundle_holds_no_token_secret_or_webhook(
    engine: EngineProcess, sandbox: Any, tmp_path: Path
) -> None:
    import zipfile

    import keyring
    from support_keyrings import JsonFileKeyring

    from app.auth.service import backend_for, keychain_service
    from app.auth.token_store import TokenStore
    from app.core.settings import load_settings

    settings = load_settings(environ=engine.env)
    webhook = f"{sandbox.url}/discord/api/webhooks/100000000000000077/Zx9-webhook-token-secret_value"
    previous = keyring.get_keyring()
    os.environ["POSTFLOW_TEST_KEYRING"] = engine.env["POSTFLOW_TEST_KEYRING"]
    keyring.set_keyring(JsonFileKeyring())
    try:
        store = TokenStore(keychain_service(settings), backend_for(settings))
        store.set_secret("discord-webhook", webhook)
        tokens = store.load()
    finally:
        keyring.set_keyring(previous)
        del os.environ["POSTFLOW_TEST_KEYRING"]
    assert tokens is not None and tokens.refresh_token
    control_secret = (data_dir(engine) / ep.SECRET_FILE).read_text().strip()
    (tmp_path / "watch" / "logged.mov").write_bytes(os.urandom(20_000))
    until(lambda: any(j["state"] == "done" for j in status(engine)["jobs"]), "a delivery", engine)
    # Whatever once slipped into a log (a pasted command, a library's debug line) is masked too.
    with settings.paths.log_file.open("a") as log:
        log.write(f"pasted: curl -H 'Authorization: Bearer {tokens.access_token}' {webhook}\n")
        log.write(f"odd: {tokens.refresh_token} {control_secret} {webhook.rsplit('/', 1)[1]}\n")

    bundle = tmp_path / "support" / "diag.zip"
    result = cli(engine, "doctor", "--bundle", str(bundle))
    assert "Diagnostics written to" in result.stdout, result.stdout + result.stderr
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        text = "\n".join(zf.read(n).decode("utf-8", errors="replace") for n in names)
    assert {"doctor.txt", "health.json", "versions.json", "settings.json", "status.json"} <= set(names)
    assert any(n.startswith("logs/") for n in names) and "logged.mov" in text
    for secret in (tokens.access_token, tokens.refresh_token, control_secret, webhook,
                   webhook.rsplit("/", 1)[1], tokens.access_token[:24]):  # fmt: skip
        assert secret not in text
    assert "[redacted]" in text
    assert bundle.stat().st_mode & 0o077 == 0  # owner-only, like the logs
