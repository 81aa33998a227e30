"""Fetch the pinned cloudflared release for one OS and CPU, check its SHA-256, and place it
where ``build.spec`` bundles it (``resources/bin/cloudflared``, ``cloudflared.exe`` on Windows).

    python installers/fetch_cloudflared.py                  # this machine's OS and CPU
    python installers/fetch_cloudflared.py --os darwin --arch arm64

Only the standard library: it runs before anything is installed. A download whose checksum
differs from the pinned one is refused and removed; nothing half-written is left where the
build would pick it up. The pinned sums were copied from the release page of RELEASE; a
new release means new sums, checked by hand against that page (docs/building.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

RELEASE = "2026.8.2"
BASE_URL = "https://github.com/cloudflare/cloudflared/releases/download"
ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "resources" / "bin"

# (os, cpu) → (release asset, its SHA-256), from the release page of RELEASE.
ASSETS: dict[tuple[str, str], tuple[str, str]] = {
    ("linux", "amd64"): ("cloudflared-linux-amd64",
                         "fcfb02b575a52ca1af2e3267af4e1517bcdeb30ac48c834c69abaed3c0576ad2"),
    ("linux", "arm64"): ("cloudflared-linux-arm64",
                         "7747d94570fb390cf47dcb4f9555c193c6355cda9793f0d878d9049e5d6a7790"),
    ("darwin", "amd64"): ("cloudflared-darwin-amd64.tgz",
                          "b0f770e1e0b281399a57219b840fd8eef1cc25387a404124248157ea2073727a"),
    ("darwin", "arm64"): ("cloudflared-darwin-arm64.tgz",
                          "b61054d3d6326ea558cb49826eebf5676e0d0a36d51b546975096ca3e0e3c89d"),
    ("windows", "amd64"): ("cloudflared-windows-amd64.exe",
                           "c29eee2b121f5436a642eed69fd9767da7e7b8c510fa50aaa130337f931357b5"),
}  # fmt: skip
CPU_NAMES = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
OS_NAMES = {"linux": "linux", "darwin": "darwin", "macos": "darwin", "windows": "windows", "win32": "windows"}
MAX_SIZE = 200_000_000  # cloudflared is ~40 MB: anything far larger is not it


class FetchError(Exception):
    """Said to the person building, in words; the exit status is not zero."""


def asset_for(os_name: str, cpu: str) -> tuple[str, str]:
    key = (OS_NAMES.get(os_name.lower(), os_name.lower()), CPU_NAMES.get(cpu.lower(), cpu.lower()))
    if key not in ASSETS:
        known = ", ".join(f"{o}/{c}" for o, c in ASSETS)
        raise FetchError(f"no cloudflared {RELEASE} is pinned for {os_name}/{cpu} (pinned: {known})")
    return ASSETS[key]


def fetch(os_name: str, cpu: str, dest: Path = DEST, base_url: str = BASE_URL,
          assets: dict[tuple[str, str], tuple[str, str]] | None = None) -> Path:  # fmt: skip
    """Download, check, unpack and place the binary; its path. Raises ``FetchError``."""
    table = assets if assets is not None else ASSETS
    key = (OS_NAMES.get(os_name.lower(), os_name.lower()), CPU_NAMES.get(cpu.lower(), cpu.lower()))
    if key not in table:
        asset_for(os_name, cpu)  # raises with the list of what is pinned
    asset, expected = table[key]
    url = f"{base_url.rstrip('/')}/{RELEASE}/{asset}"
    data = _download(url)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise FetchError(f"{asset} from {url} has SHA-256 {actual}, not the pinned {expected}: refused "
                         "(a changed or tampered file, or a wrong pin); nothing was placed")  # fmt: skip
    binary = _unpack(asset, data)
    name = "cloudflared.exe" if key[0] == "windows" else "cloudflared"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".cloudflared-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(binary)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - a pinned https address
            data = answer.read(MAX_SIZE + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url} cannot be downloaded: {getattr(exc, 'reason', exc)}") from None
    if len(data) > MAX_SIZE:
        raise FetchError(f"{url} is larger than any cloudflared: refused")
    return data


def _unpack(asset: str, data: bytes) -> bytes:
    """macOS releases are a .tgz holding one ``cloudflared``; the others are the binary itself."""
    if not asset.endswith(".tgz"):
        return data
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            files = [m for m in archive.getmembers() if m.isfile() and Path(m.name).name == "cloudflared"]
            member = files[0] if files else None
            extracted = archive.extractfile(member) if member is not None else None
            if extracted is None:
                raise FetchError(f"{asset} holds no cloudflared file")
            return extracted.read()
    except tarfile.TarError as exc:
        raise FetchError(f"{asset} is not a readable .tgz: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Fetch cloudflared {RELEASE} for bundling, checked by SHA-256"
    )
    parser.add_argument("--os", default=sys.platform, help="linux, darwin or windows (default: this one)")
    parser.add_argument("--arch", default=platform.machine(), help="amd64 (x86_64) or arm64 (aarch64)")
    parser.add_argument("--dest", type=Path, default=DEST, help=f"where to place it (default: {DEST})")
    parser.add_argument("--base-url", default=BASE_URL, help="the releases' download address")
    args = parser.parse_args(argv)
    try:
        target = fetch(args.os, args.arch, args.dest, args.base_url)
    except FetchError as exc:
        print(f"fetch_cloudflared: {exc}", file=sys.stderr)
        return 1
    print(f"cloudflared {RELEASE} for {args.os}/{args.arch} checked and placed at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
