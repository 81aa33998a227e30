"""Where the bundled artwork lives: ``resources/`` beside ``app/`` in a checkout, or inside
the frozen bundle (PyInstaller unpacks data files under ``sys._MEIPASS``)."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def icons_dir() -> Path:
    return resources_dir() / "icons"
