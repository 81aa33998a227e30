"""Settings → Discord: the webhook address (saved to the keychain at once, checked with
Discord), which events the channel hears, the daily summary's time, this machine's name, and
"Send test message". The events, time and name are live settings, saved with Apply like the
other tabs; the address is a secret and never goes through config.toml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import PostFlowError
from app.core.settings import Settings
from app.gui.engine_bridge import EngineBridge
from app.team.discord_notifier import DiscordNotifier

EVENT_LABELS = (
    ("ready", "Ready to review (Frame.io can play it)"),
    ("uploaded", "Uploaded (before Frame.io has processed it)"),
    ("failed", "Could not be uploaded"),
    ("signin", "Someone must sign in again"),
    ("summary", "Daily summary"),
)
ERROR_STYLE = "color: #c0392b;"
Row = Callable[[QFormLayout, str, str, QWidget], None]


class DiscordSettings(QWidget):
    def __init__(self, notifier: DiscordNotifier, bridge: EngineBridge, row: Row, parent: QWidget) -> None:
        super().__init__(parent)
        self._notifier = notifier
        self._bridge = bridge
        form = QFormLayout(self)
        self.address = QLineEdit(self)
        self.address.setEchoMode(QLineEdit.EchoMode.Password)  # a secret: anyone holding it can post
        self.address.setPlaceholderText("https://discord.com/api/webhooks/…")
        self.address.setAccessibleName("Discord webhook address")
        self.save_address = QPushButton("Save address", self)
        self.forget_address = QPushButton("Forget", self)
        self.test_button = QPushButton("Send test message", self)
        buttons = QHBoxLayout()
        for button in (self.save_address, self.forget_address, self.test_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.address)
        column.addLayout(buttons)
        self.webhook_status = QLabel("", box)
        self.webhook_status.setWordWrap(True)
        column.addWidget(self.webhook_status)
        form.addRow("Webhook", box)
        hint = QLabel("In Discord: Server Settings → Integrations → Webhooks → Copy Webhook URL. "
                      "It is kept in the keychain.", self)  # fmt: skip
        hint.setWordWrap(True)
        form.addRow("", hint)

        events = QWidget(self)
        events_column = QVBoxLayout(events)
        events_column.setContentsMargins(0, 0, 0, 0)
        self.events: dict[str, QCheckBox] = {}
        for kind, label in EVENT_LABELS:
            self.events[kind] = QCheckBox(label, events)
            events_column.addWidget(self.events[kind])
        row(form, "Tell the channel", "discord_events", events)
        self.summary_time = QLineEdit(self)
        self.summary_time.setPlaceholderText("18:00")
        row(form, "Daily summary at", "discord_summary_time", self.summary_time)
        self.machine = QLineEdit(self)
        self.machine.setPlaceholderText("this computer's name")
        row(form, "This machine is called", "machine_name", self.machine)

        self.save_address.clicked.connect(lambda _c=False: self.save_webhook(self.address.text()))
        self.forget_address.clicked.connect(lambda _c=False: self.save_webhook("", forget=True))
        self.test_button.clicked.connect(lambda _c=False: self.send_test())

    def load(self, settings: Settings) -> None:
        for kind, box in self.events.items():
            box.setChecked(kind in settings.discord_events)
        self.summary_time.setText(settings.discord_summary_time)
        self.machine.setText(settings.machine_name)
        self._show_webhook()

    def values(self) -> dict[str, Any]:
        return {
            "discord_events": [kind for kind, box in self.events.items() if box.isChecked()],
            "discord_summary_time": self.summary_time.text(),
            "machine_name": self.machine.text(),
        }

    def _show_webhook(self, words: str | None = None, problem: bool = False) -> None:
        configured = self._notifier.configured
        self.forget_address.setEnabled(configured)
        self.test_button.setEnabled(configured)
        if words is None:
            words = ("A webhook is saved: the channel hears what is ticked below." if configured
                     else "No webhook: the team hears nothing from this PostFlow.")  # fmt: skip
        self.webhook_status.setText(words)
        self.webhook_status.setStyleSheet(ERROR_STYLE if problem else "")

    def save_webhook(self, text: str, *, forget: bool = False) -> None:
        """Save what was pasted; nothing only with Forget (an empty field saved must not erase it)."""
        text = "" if forget else text
        if not text.strip() and not forget:
            self._show_webhook("Paste the webhook address first.", problem=True)
            return

        async def save() -> None:
            self.save_address.setEnabled(False)
            self._show_webhook("Checking the address with Discord…")
            try:
                await self._notifier.set_webhook(text)
            except PostFlowError as exc:  # the words go beside the field, not in a dialog
                self._show_webhook(exc.message, problem=True)
                return
            finally:
                self.save_address.setEnabled(True)
            self.address.clear()
            health = self._notifier.health()
            if text.strip() and health is not None and not health.ok:
                self._show_webhook(f"Saved, but: {health.message}", problem=True)
            else:
                self._show_webhook("Saved in the keychain." if text.strip() else "Forgotten.")

        self._bridge.run(save)

    def send_test(self) -> None:
        async def send() -> None:
            self.test_button.setEnabled(False)
            self._show_webhook("Posting a test message…")
            try:
                words = await self._notifier.send_test()
            except PostFlowError as exc:
                self._show_webhook(exc.message, problem=True)
                return
            self._show_webhook(words)

        self._bridge.run(send)
