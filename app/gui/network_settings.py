"""Settings → Network: how PostFlow reaches the internet. The system's own settings (its proxy
script or WPAD included), a proxy script (PAC) address, or one proxy for everything; the
proxy's user name and password (saved to the keychain at once, never to config.toml); and, in
words, which way Frame.io is reached now and which setting chose it. The address and the
script are live settings, saved with Apply like the other tabs; the engine decides the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import PostFlowError
from app.core.settings import Settings
from app.engine.service import EngineService
from app.gui.engine_bridge import EngineBridge

ERROR_STYLE = "color: #c0392b;"
Row = Callable[[QFormLayout, str, str, QWidget], None]
SYSTEM, SCRIPT, MANUAL = "system", "script", "manual"


class NetworkSettings(QWidget):
    def __init__(self, engine: EngineService, bridge: EngineBridge, row: Row, parent: QWidget) -> None:
        super().__init__(parent)
        self._engine = engine
        self._bridge = bridge
        form = QFormLayout(self)
        self.modes: dict[str, QRadioButton] = {
            SYSTEM: QRadioButton("The system's settings (its proxy script or automatic discovery too)", self),
            SCRIPT: QRadioButton("A proxy script (PAC) at this address:", self),
            MANUAL: QRadioButton("This proxy for every request:", self),
        }
        group = QButtonGroup(self)
        for button in self.modes.values():
            group.addButton(button)
            button.toggled.connect(lambda _on: self._enable_fields())
        self.pac_url = QLineEdit(self)
        self.pac_url.setPlaceholderText("http://wpad.studio.lan/proxy.pac")
        self.proxy = QLineEdit(self)
        self.proxy.setPlaceholderText("http://proxy.studio.lan:3128")
        form.addRow("Reach the internet by", self.modes[SYSTEM])
        form.addRow("", self.modes[SCRIPT])
        row(form, "Proxy script", "pac_url", self.pac_url)
        form.addRow("", self.modes[MANUAL])
        row(form, "Proxy", "proxy_url", self.proxy)

        self.user = QLineEdit(self)
        self.user.setPlaceholderText("only if the proxy asks for one")
        self.user.setAccessibleName("Proxy user name")
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        self.password.setAccessibleName("Proxy password")
        self.save_login = QPushButton("Save login", self)
        self.forget_login = QPushButton("Forget", self)
        login = QWidget(self)
        login_column = QVBoxLayout(login)
        login_column.setContentsMargins(0, 0, 0, 0)
        fields = QHBoxLayout()
        fields.addWidget(self.user)
        fields.addWidget(self.password)
        login_column.addLayout(fields)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_login)
        buttons.addWidget(self.forget_login)
        buttons.addStretch(1)
        login_column.addLayout(buttons)
        self.login_status = QLabel("", login)
        self.login_status.setWordWrap(True)
        login_column.addWidget(self.login_status)
        form.addRow("Proxy login", login)

        self.way = QLabel("", self)
        self.way.setWordWrap(True)
        self.check_button = QPushButton("Check", self)
        way_row = QWidget(self)
        way_column = QVBoxLayout(way_row)
        way_column.setContentsMargins(0, 0, 0, 0)
        way_column.addWidget(self.way)
        way_buttons = QHBoxLayout()
        way_buttons.addWidget(self.check_button)
        way_buttons.addStretch(1)
        way_column.addLayout(way_buttons)
        form.addRow("Frame.io is reached", way_row)
        note = QLabel(
            "Pull uploads' Cloudflare tunnel does not go through proxies: behind one, use push.", self
        )
        note.setWordWrap(True)
        form.addRow("", note)

        self.save_login.clicked.connect(
            lambda _c=False: self.set_login(self.user.text(), self.password.text())
        )
        self.forget_login.clicked.connect(lambda _c=False: self.set_login("", ""))
        self.check_button.clicked.connect(lambda _c=False: self.show_way())

    def load(self, settings: Settings) -> None:
        self.proxy.setText(settings.proxy_url)
        self.pac_url.setText(settings.pac_url)
        mode = MANUAL if settings.proxy_url else SCRIPT if settings.pac_url else SYSTEM
        self.modes[mode].setChecked(True)
        self._enable_fields()
        self.password.clear()
        self._show_login()
        self.show_way()

    def values(self) -> dict[str, Any]:
        """The one setting the chosen way uses; the other is emptied (it would not be used). The
        chosen one left blank is None: the settings' own check explains what it needs."""
        mode = self.mode()
        return {
            "proxy_url": (self.proxy.text().strip() or None) if mode == MANUAL else "",
            "pac_url": (self.pac_url.text().strip() or None) if mode == SCRIPT else "",
        }

    def mode(self) -> str:
        return next(mode for mode, button in self.modes.items() if button.isChecked())

    def _enable_fields(self) -> None:
        checked = [mode for mode, button in self.modes.items() if button.isChecked()]
        self.pac_url.setEnabled(checked == [SCRIPT])
        self.proxy.setEnabled(checked == [MANUAL])

    def _show_login(self, words: str | None = None, problem: bool = False) -> None:
        async def show() -> None:
            user = await self._engine.proxy.login_user()
            self.user.setText(user)
            self.forget_login.setEnabled(bool(user))
            text = words
            if text is None:
                text = (f"Kept in the keychain for {user}." if user
                        else "None kept: PostFlow signs in to no proxy.")  # fmt: skip
            self.login_status.setText(text)
            self.login_status.setStyleSheet(ERROR_STYLE if problem else "")

        self._bridge.run(show)

    def set_login(self, user: str, password: str) -> None:
        user = user.strip()
        if user and not password:
            self.login_status.setText("Type the proxy password too.")
            self.login_status.setStyleSheet(ERROR_STYLE)
            return

        async def save() -> None:
            try:
                await self._engine.proxy.set_login(user, password)
            except PostFlowError as exc:
                self.login_status.setText(exc.message)
                self.login_status.setStyleSheet(ERROR_STYLE)
                return
            self.password.clear()
            self._show_login("Saved in the keychain." if user else "Forgotten.")
            self.show_way()

        self._bridge.run(save)

    def show_way(self) -> None:
        """Which way Frame.io is reached now (the router may fetch a script: the engine's thread)."""

        async def ask() -> None:
            self.way.setText("Checking…")
            self.way.setText(_sentence(await self._engine.proxy.explain()))

        self._bridge.run(ask)


def _sentence(words: str) -> str:
    """``api.frame.io: through http://p:3128 (the proxy in settings)`` → a sentence."""
    _host, _, rest = words.partition(": ")
    return (rest[:1].upper() + rest[1:] + ".") if rest else words
