"""The engine never imports Qt: only app/gui/ may."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
QT_MODULES = ("PySide6", "shiboken6", "qasync", "PyQt5", "PyQt6")


def qt_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in QT_MODULES]
    return found


def test_no_qt_outside_gui() -> None:
    offenders = {
        str(p.relative_to(APP)): qt_imports(p)
        for p in APP.rglob("*.py")
        if "gui" not in p.relative_to(APP).parts[:1] and qt_imports(p)
    }
    assert offenders == {}


def test_no_catch_all_modules() -> None:
    assert not [p for p in APP.rglob("*.py") if p.stem in ("utils", "common", "helpers", "misc")]
