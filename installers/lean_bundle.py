"""What a PostFlow bundle leaves out: the Qt libraries, plugins, QML, translations and
WebEngine locales the app never loads. Shared by ``build.spec`` and the bench's minimal tray
app (``bench/frozen_tray``), so both are frozen the same way and compared fairly.

PyInstaller's PySide6 hooks collect every plugin family a module might want; a tray app with a
sign-in web view needs few of them. A library another kept library links to is never dropped
(QtWebEngineCore links Qml, Quick, WebChannel and Positioning: they stay), only what is
loaded by name at run time: plugins, QML, translations, locales.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

# Python modules PostFlow never imports (PyInstaller would follow optional imports into them).
EXCLUDED_MODULES = [
    "tkinter", "unittest", "pydoc_data", "lib2to3", "IPython", "matplotlib", "numpy", "PIL",
    "PySide6.Qt3DAnimation", "PySide6.Qt3DCore", "PySide6.Qt3DExtras", "PySide6.Qt3DInput",
    "PySide6.Qt3DLogic", "PySide6.Qt3DRender", "PySide6.QtBluetooth", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtDesigner", "PySide6.QtGraphs", "PySide6.QtHelp",
    "PySide6.QtHttpServer", "PySide6.QtLocation", "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets",
    "PySide6.QtNfc", "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtQuick3D", "PySide6.QtRemoteObjects",
    "PySide6.QtScxml", "PySide6.QtSensors", "PySide6.QtSerialBus", "PySide6.QtSerialPort", "PySide6.QtSql",
    "PySide6.QtStateMachine", "PySide6.QtTest", "PySide6.QtTextToSpeech", "PySide6.QtUiTools",
    "PySide6.QtWebSockets", "PySide6.QtSpatialAudio", "PySide6.QtQuickControls2", "PySide6.QtQuickWidgets",
    "PySide6.QtCanvasPainter", "PySide6.QtLabsStyleKit",
    # optional imports of libraries PostFlow uses, into tools it does not: yarl → pydantic → mypy
    "pydantic", "pydantic_core", "mypy", "pytest", "frameio", "setuptools", "pip",
]  # fmt: skip

# Plugin families kept, and within them the plugins kept (None: the whole family).
KEPT_PLUGINS: dict[str, set[str] | None] = {
    "platforms": {
        "qxcb",
        "qoffscreen",
        "qminimal",
        "qwayland",
        "qwayland-egl",
        "qwayland-generic",
        "qcocoa",
        "qwindows",
        "qdirect2d",
    },  # fmt: skip
    "platformthemes": {"qxdgdesktopportal"},  # (qgtk3 needs GTK, which a bundle cannot carry)
    # typing accents and CJK in the settings fields (not the on-screen keyboard: it is QML)
    "platforminputcontexts": {"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"},
    "xcbglintegrations": None,  # the web view draws with OpenGL on X11
    "wayland-shell-integration": None,
    "wayland-graphics-integration-client": None,
    "wayland-decoration-client": None,
    "imageformats": {"qsvg", "qico", "qicns", "qjpeg", "qgif"},  # icons, avatars, the Adobe page
    "iconengines": None,  # the SVG icon engine
    "styles": None,  # the Windows and macOS native styles
}

_PLUGIN = re.compile(r"(?:^|/)plugins/([^/]+)/(?:lib)?([^/.]+)[^/]*$")
_WEBENGINE_LOCALE = re.compile(r"(?:^|/)qtwebengine_locales/([^/]+)\.pak$")


def keep(destination: str) -> bool:
    """Whether a collected file (its path inside the bundle) stays."""
    path = destination.replace("\\", "/")
    if "/translations/" in f"/{path}" and path.endswith(".qm"):
        return False  # the app speaks English only
    locale = _WEBENGINE_LOCALE.search(path)
    if locale:
        return locale.group(1) == "en-US"
    if re.search(r"(?:^|/)Qt/qml/|(?:^|/)qml/", path):
        return False  # no QML anywhere in PostFlow
    plugin = _PLUGIN.search(path)
    if plugin:
        family, name = plugin.groups()
        if family not in KEPT_PLUGINS:
            return False
        wanted = KEPT_PLUGINS[family]
        return wanted is None or name in wanted
    if path.endswith("qtwebengine_devtools_resources.pak"):
        return False  # the web inspector: never opened in the sign-in window
    return not re.search(r"(?:^|/)dukpy/jsmodules/", path)  # babel, less…: the PAC runner needs the core


def lean(entries: Iterable[Any]) -> list[Any]:
    """A PyInstaller TOC (``a.binaries`` / ``a.datas``) without what ``keep`` refuses."""
    return [entry for entry in entries if keep(entry[0])]


_QT_LIBRARY = re.compile(r"^(?:lib)?Qt6[A-Z0-9]\w*(?:\.so\.6[.\d]*|\.dll)$")


def is_qt_library(destination: str) -> bool:
    """``libQt6Core.so.6``, ``Qt6Core.dll``, ``QtCore.framework/Versions/A/QtCore``; not the
    Python modules (``QtCore.abi3.so``) nor the helper programs (``QtWebEngineProcess``)."""
    path = destination.replace("\\", "/")
    name = path.rsplit("/", 1)[-1]
    if name.endswith("Process") or name.endswith(".exe"):
        return False
    if ".framework/" in path:
        return name.startswith("Qt") and "." not in name
    return bool(_QT_LIBRARY.match(name))


Imports = Callable[[str], Iterable[tuple[str, str | None]]]


def linked_qt_only(binaries: list[Any], imports: Imports) -> list[Any]:
    """Drop the Qt libraries nothing kept links to. The QML plugins PyInstaller collects pull
    in Qt 3D, Charts, Multimedia… as their dependencies; with the QML gone, nothing needs
    them. Starting from every binary that is not a Qt library (the Python extensions, the
    plugins, QtWebEngineProcess), follow what each links to (``imports``: PyInstaller's
    ``bindepend.get_imports``) and keep the Qt libraries reached."""
    by_name: dict[str, Any] = {}
    roots: list[Any] = []
    for entry in binaries:
        name = entry[0].replace("\\", "/").rsplit("/", 1)[-1]
        if is_qt_library(entry[0]):
            by_name[name] = entry
        else:
            roots.append(entry)
    reached: set[str] = set()
    pending = [entry[1] for entry in roots]
    while pending:
        source = pending.pop()
        for name, _path in imports(source):
            base = name.replace("\\", "/").rsplit("/", 1)[-1]
            if base in by_name and base not in reached:
                reached.add(base)
                pending.append(by_name[base][1])
    return roots + [entry for name, entry in by_name.items() if name in reached]


_FRAMEWORK = re.compile(r"(?:^|/)(Qt\w+)\.framework/")


def without_orphan_frameworks(datas: list[Any], binaries: list[Any]) -> list[Any]:
    """macOS: a Qt framework whose library ``linked_qt_only`` dropped leaves its Info.plist and
    symlinks in the datas: an empty ``.framework`` that codesign refuses. They go too."""
    kept = {m.group(1) for entry in binaries if (m := _FRAMEWORK.search(entry[0].replace("\\", "/")))}
    return [entry for entry in datas
            if not (m := _FRAMEWORK.search(entry[0].replace("\\", "/"))) or m.group(1) in kept]  # fmt: skip
