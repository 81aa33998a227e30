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


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def package_imports(package: str) -> set[str]:
    return {m for p in (APP / package).rglob("*.py") for m in imported_modules(p)}


def test_frameio_does_not_depend_on_auth() -> None:
    """The Frame.io client takes any token source: auth and frameio no longer import each other."""
    assert not [m for m in package_imports("frameio") if m.startswith("app.auth")]
    assert {m for m in package_imports("auth") if m.startswith("app.frameio")} <= {"app.frameio.models"}


def test_only_the_composition_root_builds_services() -> None:
    """Packages below app/ never import the composition root; it alone wires them."""
    for package in ("auth", "frameio", "engine", "core", "sandbox"):
        assert "app.composition" not in package_imports(package), package
    assert "FrameioClient(" not in (APP / "auth" / "service.py").read_text(encoding="utf-8")
