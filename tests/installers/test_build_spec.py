"""build.spec read as PyInstaller reads it, for each platform, with PyInstaller's build steps
replaced by recorders: it parses, names the version of the package, and every file it hands
to the build exists. And the lean filter keeps what the app loads, drops what it never does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from app import __version__

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installers"))
from lean_bundle import is_qt_library, keep, linked_qt_only, without_orphan_frameworks  # noqa: E402


class Recorder:
    """Stands for Analysis, PYZ, EXE, COLLECT and BUNDLE: keeps what it was given."""

    made: list[tuple[str, tuple[Any, ...], dict[str, Any]]]

    def __init__(self, kind: str, made: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
        self.kind, self.made = kind, made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.made.append((self.kind, args, kwargs))
        step = type(self.kind, (), {})()
        if self.kind == "Analysis":
            step.binaries = list(kwargs["binaries"])
            step.datas = list(kwargs["datas"])
            step.pure, step.scripts = [], list(args[0])
        return step


def read_spec(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    monkeypatch.setattr(sys, "platform", platform)
    made: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    names = {kind: Recorder(kind, made) for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    namespace: dict[str, Any] = {"SPECPATH": str(ROOT), "__file__": str(ROOT / "build.spec"), **names}
    code = compile((ROOT / "build.spec").read_text(), str(ROOT / "build.spec"), "exec")
    exec(code, namespace)  # noqa: S102 - our own spec, as PyInstaller runs it
    return {kind: (args, kwargs) for kind, args, kwargs in made}


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_the_spec_parses_and_references_only_files_that_exist(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = read_spec(platform, monkeypatch)
    args, kwargs = steps["Analysis"]
    files = [Path(p) for p in args[0]] + [Path(src) for src, _dest in kwargs["datas"] + kwargs["binaries"]]
    exe_args, exe_kwargs = steps["EXE"]
    if exe_kwargs.get("icon"):
        files.append(Path(exe_kwargs["icon"]))
    missing = [str(f) for f in files if not f.is_file()]
    assert missing == [], missing
    assert Path(args[0][0]) == ROOT / "app" / "__main__.py"  # handles --cloudflared-standin too
    assert any(dest == "licenses" and "cloudflared" in src for src, dest in kwargs["datas"])
    assert any(dest == "dukpy/jsruntime" for _src, dest in kwargs["datas"])  # the PAC runner's runtime
    assert exe_kwargs["console"] is False and exe_kwargs["exclude_binaries"] is True  # one-folder
    if platform == "darwin":
        _bundle_args, bundle = steps["BUNDLE"]
        plist = bundle["info_plist"]
        assert plist["LSUIElement"] is True and plist["NSHighResolutionCapable"] is True
        assert bundle["version"] == __version__ == plist["CFBundleShortVersionString"]
        assert bundle["bundle_identifier"] == "io.postflow.PostFlow" and bundle["icon"].endswith(".icns")
    else:
        assert "BUNDLE" not in steps
    if platform == "win32":
        info = Path(exe_kwargs["version"]).read_text()
        assert exe_kwargs["icon"].endswith(".ico") and f"'ProductVersion', '{__version__}'" in info
        assert info.startswith("VSVersionInfo(") and compile(info, "version", "eval")
        assert exe_kwargs["name"] == "PostFlow"
    if platform == "linux":
        assert exe_kwargs["name"] == "postflow" and exe_kwargs["icon"] is None


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", False),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
        ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", False),
        ("PySide6\\plugins\\platforms\\qwindows.dll", True),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
        ("PySide6/Qt/translations/qt_de.qm", False),
        ("PySide6/Qt/translations/qtwebengine_locales/de.pak", False),
        ("PySide6/Qt/translations/qtwebengine_locales/en-US.pak", True),
        ("PySide6/Qt/resources/qtwebengine_resources.pak", True),
        ("PySide6/Qt/resources/qtwebengine_devtools_resources.pak", False),
        ("PySide6/Qt/qml/QtQuick/Controls/libqtquickcontrols2plugin.so", False),
        ("dukpy/jsruntime/process.js", True),
        ("dukpy/jsmodules/babel-6.26.0.min.js", False),
        ("resources/icons/tray-idle-dark.svg", True),
    ],
)
def test_the_lean_filter(path: str, kept: bool) -> None:
    assert keep(path) is kept


def test_only_the_qt_libraries_something_links_to_stay() -> None:
    binaries = [
        ("PySide6/QtWidgets.abi3.so", "/src/QtWidgets.abi3.so", "EXTENSION"),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", "/src/libQt6Widgets.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6Core.so.6", "/src/libQt6Core.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt63DCore.so.6", "/src/libQt63DCore.so.6", "BINARY"),
        ("PySide6/Qt/libexec/QtWebEngineProcess", "/src/QtWebEngineProcess", "BINARY"),
    ]
    links = {"/src/QtWidgets.abi3.so": ["libQt6Widgets.so.6"], "/src/libQt6Widgets.so.6": ["libQt6Core.so.6"]}
    kept = linked_qt_only(binaries, lambda src: [(name, None) for name in links.get(src, [])])
    assert sorted(dest for dest, _src, _kind in kept) == [
        "PySide6/Qt/lib/libQt6Core.so.6", "PySide6/Qt/lib/libQt6Widgets.so.6",
        "PySide6/Qt/libexec/QtWebEngineProcess", "PySide6/QtWidgets.abi3.so",
    ]  # fmt: skip
    assert is_qt_library("PySide6/Qt/lib/QtCore.framework/Versions/A/QtCore")
    assert is_qt_library("PySide6\\Qt6Core.dll") and not is_qt_library("PySide6/QtCore.abi3.so")
    assert not is_qt_library(
        "PySide6/Qt/lib/QtWebEngineCore.framework/Helpers/QtWebEngineProcess.app/Contents/MacOS/QtWebEngineProcess"
    )


def test_a_dropped_framework_leaves_no_empty_folder_behind() -> None:
    binaries = [("PySide6/Qt/lib/QtCore.framework/Versions/A/QtCore", "/s/QtCore", "BINARY")]
    datas = [
        ("PySide6/Qt/lib/QtCore.framework/Resources/Info.plist", "/s/a", "DATA"),
        ("PySide6/Qt/lib/Qt3DCore.framework/Resources/Info.plist", "/s/b", "DATA"),
        ("PySide6/Qt/lib/Qt3DCore.framework/Qt3DCore", "Versions/Current/Qt3DCore", "SYMLINK"),
        ("resources/icons/postflow.png", "/s/c", "DATA"),
    ]
    kept = [dest for dest, _src, _kind in without_orphan_frameworks(datas, binaries)]
    assert kept == ["PySide6/Qt/lib/QtCore.framework/Resources/Info.plist", "resources/icons/postflow.png"]
