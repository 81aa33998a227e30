"""The "Sign in with Adobe" popup: an embedded browser that never lets the redirect leave.

The page shows Adobe's own sign-in. When it navigates (or is redirected) to the configured
redirect URI, the navigation is refused before any request is made and the address is handed
to the engine, so no listener, certificate or custom URL scheme handler is needed.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QUrl, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineProfile
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

_PROFILE: QWebEngineProfile | None = None


def _sign_in_profile() -> QWebEngineProfile:
    """One off-the-record profile (nothing kept on disk) living as long as the application.

    A profile must outlive every page using it; one owned by each window can be destroyed
    before its page, which Chromium punishes with a crash later on."""
    global _PROFILE
    if _PROFILE is None:
        _PROFILE = QWebEngineProfile(QCoreApplication.instance())
    return _PROFILE


class _RedirectCatchingPage(QWebEnginePage):
    def __init__(self, profile: QWebEngineProfile, is_redirect: Callable[[str], bool], window: SignInWindow):
        super().__init__(profile, window)
        self._is_redirect = is_redirect
        self._window = window

    def acceptNavigationRequest(  # noqa: N802 - Qt's name
        self, url: QUrl | str, nav_type: QWebEnginePage.NavigationType, is_main_frame: bool
    ) -> bool:
        address = url.toString() if isinstance(url, QUrl) else str(url)
        if self._is_redirect(address):
            self._window.caught(address)
            return False
        return super().acceptNavigationRequest(url, nav_type, is_main_frame)


class SignInWindow(QWidget):
    redirect_caught = Signal(str)
    cancelled = Signal()

    def __init__(self, authorize_url: str, is_redirect: Callable[[str], bool], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Sign in with Adobe — PostFlow")
        self.resize(520, 720)
        self._done = False
        self._view = QWebEngineView(self)
        self._page = _RedirectCatchingPage(_sign_in_profile(), is_redirect, self)
        self._view.setPage(self._page)
        self._status = QLabel("Loading Adobe sign-in…", self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        layout.addWidget(self._status)
        self._view.loadFinished.connect(self._loaded)
        self._view.load(QUrl(authorize_url))

    def _loaded(self, ok: bool) -> None:
        if not self._done:
            self._status.setText("" if ok else "Adobe sign-in could not be loaded. Check the network.")

    def caught(self, address: str) -> None:
        if self._done:
            return
        self._done = True
        self.redirect_caught.emit(address)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self._done:
            self._done = True
            self.cancelled.emit()
        self._view.setPage(None)  # type: ignore[arg-type]
        self._page.deleteLater()
        super().closeEvent(event)
