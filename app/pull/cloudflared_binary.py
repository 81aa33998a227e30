"""Which cloudflared pull mode runs: the bundled one, a configured one, PATH's, or the stand-in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_cloudflared(configured: str = "") -> str | None:
    """The bundled binary first (it is the version we tested), then the settings path, then PATH."""
    name = "cloudflared.exe" if sys.platform == "win32" else "cloudflared"
    bundle = getattr(sys, "_MEIPASS", None)
    candidates = []
    if bundle:
        candidates.append(Path(bundle) / "bin" / name)
    candidates.append(Path(__file__).resolve().parents[2] / "resources" / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name)


def standin_command() -> list[str]:
    if getattr(sys, "frozen", False):  # the frozen app runs the stand-in itself
        return [sys.executable, "--cloudflared-standin"]
    return [sys.executable, "-m", "app.sandbox.cloudflared"]


def cloudflared_command(configured: str, sandbox: bool) -> list[str] | None:
    """The real cloudflared when one is found (or configured); in sandbox mode the stand-in."""
    if sandbox and not configured:
        return standin_command()
    found = find_cloudflared(configured)
    return [found] if found else None
