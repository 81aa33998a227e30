"""GUI tests: a real QApplication (offscreen), QtWebEngine ready, and async tests on qasync."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from app.gui.webengine_setup import prepare_webengine

prepare_webengine()  # before pytest-qt creates the QApplication

import qasync  # noqa: E402  (PySide6 first, then qasync)
from PySide6.QtWidgets import QApplication  # noqa: E402


def _qasync_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)  # a tray app: closing a window must not stop the loop
    return qasync.QEventLoop(app)  # type: ignore[no-any-return]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    """Async tests here run on the same loop the app uses: asyncio on the Qt thread."""
    return {"qasync": _qasync_loop}


@pytest.fixture(autouse=True)
def _delete_windows_on_the_gui_thread(qapp: Any) -> Any:
    """Every window a test left behind is deleted here, on the GUI thread. Left to the garbage
    collector, a QtWebEngine window can be destroyed from whichever thread happens to collect
    (a sandbox or worker thread), and Qt crashes later in an unrelated test."""
    yield
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    for widget in qapp.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def watch_dir(tmp_path: Any) -> Any:
    folder = tmp_path / "renders"
    folder.mkdir()
    return folder


@pytest.fixture
def tray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTFLOW_TRAY_WAIT", "3600")  # no tray offscreen: no window fallback unless asked
