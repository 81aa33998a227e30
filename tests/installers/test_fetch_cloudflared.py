"""installers/fetch_cloudflared.py against a local file server standing in for GitHub's release
downloads: a good checksum places the binary, a bad one is refused and leaves nothing, an
unknown platform is told which ones are pinned."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "installers" / "fetch_cloudflared.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_cloudflared", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fc = load()


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``BASE/RELEASE/asset`` served from a folder, as GitHub serves release downloads."""
    root = tmp_path / "releases"
    (root / fc.RELEASE).mkdir(parents=True)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root / fc.RELEASE
    server.shutdown()
    server.server_close()


def tgz(name: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_a_good_checksum_places_the_binary(releases: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = releases
    body = b"\x7fELF pretend cloudflared"
    (folder / "cloudflared-linux-amd64").write_bytes(body)
    pins = {("linux", "amd64"): ("cloudflared-linux-amd64", hashlib.sha256(body).hexdigest())}
    placed = fc.fetch("linux", "x86_64", tmp_path / "bin", base, pins)
    assert placed == tmp_path / "bin" / "cloudflared"
    assert placed.read_bytes() == body and placed.stat().st_mode & 0o111


def test_a_macos_tgz_is_checked_then_unpacked(releases: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = releases
    archive = tgz("cloudflared", b"pretend mach-o")
    (folder / "cloudflared-darwin-arm64.tgz").write_bytes(archive)
    pins = {("darwin", "arm64"): ("cloudflared-darwin-arm64.tgz", hashlib.sha256(archive).hexdigest())}
    placed = fc.fetch("darwin", "arm64", tmp_path / "bin", base, pins)
    assert placed.read_bytes() == b"pretend mach-o"
    pins_win = {("windows", "amd64"): ("cloudflared-windows-amd64.exe", hashlib.sha256(b"MZ").hexdigest())}
    (folder / "cloudflared-windows-amd64.exe").write_bytes(b"MZ")
    assert fc.fetch("win32", "AMD64", tmp_path / "bin", base, pins_win).name == "cloudflared.exe"


def test_a_bad_checksum_is_refused_and_nothing_is_placed(releases: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = releases
    (folder / "cloudflared-linux-amd64").write_bytes(b"tampered")
    dest = tmp_path / "bin"
    dest.mkdir()
    (dest / "cloudflared").write_bytes(b"the good old one")
    pins = {("linux", "amd64"): ("cloudflared-linux-amd64", hashlib.sha256(b"genuine").hexdigest())}
    with pytest.raises(fc.FetchError, match="not the pinned .*refused"):
        fc.fetch("linux", "amd64", dest, base, pins)
    assert [p.name for p in dest.iterdir()] == ["cloudflared"]  # no half-written or temporary file
    assert (dest / "cloudflared").read_bytes() == b"the good old one"


def test_the_real_pins_refuse_anything_else(releases: tuple[str, Path], tmp_path: Path) -> None:
    base, folder = releases
    (folder / "cloudflared-linux-arm64").write_bytes(b"not the release")
    with pytest.raises(fc.FetchError, match="SHA-256"):
        fc.fetch("linux", "aarch64", tmp_path / "bin", base)
    assert not (tmp_path / "bin" / "cloudflared").exists()
    assert all(len(sha) == 64 and int(sha, 16) >= 0 for _asset, sha in fc.ASSETS.values())


def test_a_missing_download_and_an_unknown_platform_are_said(
    releases: tuple[str, Path], tmp_path: Path
) -> None:
    base, _folder = releases
    with pytest.raises(fc.FetchError, match="HTTP 404"):
        fc.fetch("windows", "amd64", tmp_path / "bin", base)
    command = [sys.executable, str(SCRIPT), "--os", "freebsd", "--arch", "riscv64"]
    command += ["--dest", str(tmp_path / "bin"), "--base-url", base]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1
    assert (
        "no cloudflared" in done.stderr and "freebsd/riscv64" in done.stderr and "linux/amd64" in done.stderr
    )
    assert not (tmp_path / "bin").exists()
