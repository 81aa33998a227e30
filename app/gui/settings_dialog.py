"""Settings: watched folders and their destinations, upload and watch settings, notifications,
start at login. Every value is checked by the engine's own rules before anything is saved; a
bad one is explained beside its field and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ConfigError, PostFlowError
from app.core.jobs import WatchRoot
from app.desktop.login_item import LoginItem
from app.engine.live_settings import parse_live
from app.engine.service import EngineService
from app.gui.destination_picker import Destination, choose_destination, choose_folder
from app.gui.discord_settings import DiscordSettings
from app.gui.engine_bridge import EngineBridge
from app.gui.naming_settings import NamingSettings
from app.gui.network_settings import NetworkSettings
from app.pull.tunnel import TERMS_NOTE
from app.team.discord_notifier import DiscordNotifier

UPLOAD_MODE_CHOICES = (
    ("push", "Push: PostFlow sends the file (default)"),
    ("pull", "Pull: Frame.io fetches it through a Cloudflare tunnel"),
    ("auto", "Auto: pull when the tunnel is up, push otherwise"),
)

MB = 1_000_000
ERROR_STYLE = "color: #d1242f;"


def ask_upload_existing(parent: QWidget, folder: str) -> bool | None:
    """True: upload what is already there; False: only new files; None: cancelled."""
    box = QMessageBox(parent)
    box.setWindowTitle("Files already in this folder — PostFlow")
    box.setText(f"Upload the files already in {folder}?")
    box.setInformativeText("Choose “Only new files” if they were delivered some other way.")
    upload = box.addButton("&Upload them", QMessageBox.ButtonRole.AcceptRole)
    new_only = box.addButton("Only &new files", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(upload)
    box.exec()
    clicked = box.clickedButton()
    return True if clicked is upload else False if clicked is new_only else None


class SettingsDialog(QDialog):
    def __init__(
        self, engine: EngineService, bridge: EngineBridge, *, login_item: LoginItem | None = None,
        discord: DiscordNotifier | None = None, parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("PostFlow Settings")
        self.resize(640, 520)
        self._engine = engine
        self._bridge = bridge
        self.login_item = login_item or LoginItem()
        # Hooks tests replace (a real dialog would wait for a person):
        self.choose_folder: Callable[[], str | None] = lambda: choose_folder(self)
        self.choose_destination: Callable[[], Destination | None] = lambda: choose_destination(
            engine.browser, bridge, self
        )
        self.ask_upload_existing: Callable[[str], bool | None] = lambda f: ask_upload_existing(self, f)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._folders_tab(), "&Folders")
        self.tabs.addTab(self._uploads_tab(), "&Uploads")
        self.naming = NamingSettings(engine, bridge, self.tabs)
        self.tabs.addTab(self.naming, "&Naming")
        self.network = NetworkSettings(engine, bridge, self._row, self.tabs)
        self.tabs.addTab(self.network, "Ne&twork")
        self.tabs.addTab(self._general_tab(), "&General")
        self.discord: DiscordSettings | None = None
        if discord is not None:
            self.discord = DiscordSettings(discord, bridge, self._row, self.tabs)
            self.tabs.addTab(self.discord, "&Discord")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Close, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(
            lambda _c=False: self.apply()
        )
        self.buttons.rejected.connect(self.hide)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        bridge.roots_changed.connect(lambda _e: self.show_roots())
        bridge.roots_changed.connect(lambda _e: self.naming.show_roots())
        self.load()

    # ---- folders ----
    def _folders_tab(self) -> QWidget:
        tab = QWidget(self)
        layout = QVBoxLayout(tab)
        layout.addWidget(QLabel("Files finished in these folders are uploaded to Frame.io:", tab))
        self.roots_list = QListWidget(tab)
        self.roots_list.setAccessibleName("Watched folders")
        self.roots_list.currentItemChanged.connect(lambda *_: self._update_root_buttons())
        layout.addWidget(self.roots_list, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("&Add folder…", tab)
        self.add_button.clicked.connect(lambda _c=False: self.add_folder())
        self.edit_button = QPushButton("Change &destination…", tab)
        self.edit_button.clicked.connect(lambda _c=False: self.change_destination())
        self.remove_button = QPushButton("&Stop watching", tab)
        self.remove_button.clicked.connect(lambda _c=False: self.remove_folder())
        for button in (self.add_button, self.edit_button, self.remove_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        mode_row = QHBoxLayout()
        mode_label = QLabel("&Upload by:", tab)
        self.mode_box = QComboBox(tab)
        for mode, text in UPLOAD_MODE_CHOICES:
            self.mode_box.addItem(text, mode)
        self.mode_box.setAccessibleName("How the selected folder's files are uploaded")
        mode_label.setBuddy(self.mode_box)
        self.mode_box.activated.connect(lambda _i: self.change_upload_mode())
        mode_row.addWidget(mode_label)
        mode_row.addWidget(self.mode_box, 1)
        priority_label = QLabel("&Priority:", tab)
        self.priority_box = QSpinBox(tab)
        self.priority_box.setRange(-1000, 1000)
        self.priority_box.setToolTip("Folders with a higher priority upload first (default 0)")
        self.priority_box.setAccessibleName("The selected folder's upload priority")
        priority_label.setBuddy(self.priority_box)
        self.priority_box.editingFinished.connect(self.change_priority)
        mode_row.addWidget(priority_label)
        mode_row.addWidget(self.priority_box)
        layout.addLayout(mode_row)
        self.mode_note = QLabel(TERMS_NOTE, tab)
        self.mode_note.setWordWrap(True)
        layout.addWidget(self.mode_note)
        self.folder_error = QLabel("", tab)
        self.folder_error.setStyleSheet(ERROR_STYLE)
        self.folder_error.setWordWrap(True)
        layout.addWidget(self.folder_error)
        return tab

    def show_roots(self) -> None:
        chosen = self._current_root()  # kept selected across the refresh
        self.roots_list.clear()
        for root in self._engine.roots:
            target = root.project + (f" / {root.folder}" if root.folder else "")
            way = "" if root.upload_mode == "push" else f"  ({root.upload_mode})"
            item = QListWidgetItem(f"{root.path}  →  {target}{way}")
            item.setData(Qt.ItemDataRole.UserRole, root.id)
            self.roots_list.addItem(item)
            if chosen is not None and root.id == chosen.id:
                self.roots_list.setCurrentItem(item)
        self._update_root_buttons()

    def _current_root(self) -> WatchRoot | None:
        item = self.roots_list.currentItem()
        root_id = item.data(Qt.ItemDataRole.UserRole) if item else None
        return next((r for r in self._engine.roots if r.id == root_id), None)

    def _update_root_buttons(self) -> None:
        root = self._current_root()
        chosen = root is not None
        self.edit_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)
        self.mode_box.setEnabled(chosen)
        self.priority_box.setEnabled(chosen)
        if root is not None:
            self.mode_box.setCurrentIndex(max(0, self.mode_box.findData(root.upload_mode)))
            self.priority_box.setValue(root.priority)

    def change_priority(self) -> None:
        root = self._current_root()
        priority = self.priority_box.value()
        if root is None or priority == root.priority:
            return
        self._run_folder_action(lambda: self._engine.set_priority(root.id, priority),
                                f"{root.path} now has priority {priority}.")  # fmt: skip

    def change_upload_mode(self) -> None:
        root = self._current_root()
        mode = str(self.mode_box.currentData())
        if root is None or mode == root.upload_mode:
            return
        self._run_folder_action(lambda: self._engine.set_upload_mode(root.id, mode),
                                f"{root.path} uploads by {mode} from now on.")  # fmt: skip

    def add_folder(self) -> None:
        folder = self.choose_folder()
        if not folder:
            return
        destination = self.choose_destination()
        if destination is None:
            return
        existing = self.ask_upload_existing(folder)
        if existing is None:
            return
        root = WatchRoot("", folder, destination.project, destination.folder, destination.workspace_id,
                         destination.account_id)  # fmt: skip
        self.folder_error.setText("")
        self._run_folder_action(lambda: self._engine.add_root(root, upload_existing=existing),
                                f"Watching {folder}.")  # fmt: skip

    def change_destination(self) -> None:
        root = self._current_root()
        if root is None:
            return
        destination = self.choose_destination()
        if destination is None:
            return
        changes = {"project": destination.project, "folder": destination.folder,
                   "workspace": destination.workspace_id, "account_id": destination.account_id}  # fmt: skip
        self._run_folder_action(lambda: self._engine.edit_root(root.id, **changes),
                                f"{root.path} now uploads to {destination.label}.")  # fmt: skip

    def remove_folder(self) -> None:
        root = self._current_root()
        if root is None:
            return
        self._run_folder_action(lambda: self._engine.remove_root(root.id),
                                f"{root.path} is no longer watched. Its history is kept.")  # fmt: skip

    def _run_folder_action(self, action: Callable[[], Any], success: str) -> None:
        async def run() -> None:
            try:
                await action()
            except PostFlowError as exc:
                self.folder_error.setText(exc.message)
                return
            self.folder_error.setText("")
            self.status.setText(success)
            self.show_roots()

        self._bridge.run(run)

    # ---- uploads and watching ----
    def _uploads_tab(self) -> QWidget:
        tab = QWidget(self)
        form = QFormLayout(tab)
        self.errors: dict[str, QLabel] = {}
        self.concurrency = QSpinBox(tab)
        self.concurrency.setRange(1, 32)
        self.parts = QSpinBox(tab)
        self.parts.setRange(1, 32)
        self.bandwidth = QDoubleSpinBox(tab)
        self.bandwidth.setRange(0, 100_000)
        self.bandwidth.setDecimals(1)
        self.bandwidth.setSuffix(" MB/s")
        self.bandwidth.setSpecialValueText("No limit")
        self.schedule = QPlainTextEdit(tab)
        self.schedule.setPlaceholderText(
            "one rule per line, e.g.\nMon-Fri 09:00-19:00 20MB/s\nSat,Sun 00:00-24:00 unlimited"
        )
        self.schedule.setFixedHeight(70)
        self.schedule.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed
        )  # no tall empty row
        self.schedule.setToolTip(
            "The first rule that covers the moment wins; outside every rule the cap above applies."
        )
        self.stable = QDoubleSpinBox(tab)
        self.stable.setRange(0, 86_400)
        self.stable.setSuffix(" s")
        self.scan = QDoubleSpinBox(tab)
        self.scan.setRange(0.1, 86_400)
        self.scan.setSuffix(" s")
        self.quiet = QDoubleSpinBox(tab)
        self.quiet.setRange(0, 3_600)
        self.quiet.setSuffix(" s")
        self.check_media = QCheckBox("Upload a MOV, MP4 or MXF only once its container is complete", tab)
        self.mirror_moves = QCheckBox("Move or rename it on Frame.io too", tab)
        self.extensions = QLineEdit(tab)
        self.extensions.setPlaceholderText("empty: every file")
        self.ignore = QLineEdit(tab)
        for label, name, widget in (
            ("Files uploaded at once", "max_concurrent_files", self.concurrency),
            ("Parts of a file in parallel", "parts_per_file", self.parts),
            ("Bandwidth cap", "bandwidth_limit", self.bandwidth),
            ("Bandwidth schedule", "bandwidth_schedule", self.schedule),
            ("A file is finished after unchanged for", "stable_seconds", self.stable),
            ("…or, when its container is complete, for", "quiet_seconds", self.quiet),
            ("Renders", "check_media", self.check_media),
            ("A delivered file moved here", "mirror_moves", self.mirror_moves),
            ("Full scan of folders every", "scan_interval", self.scan),
            ("Upload these extensions", "extensions", self.extensions),
            ("Never upload names matching", "ignore_patterns", self.ignore),
        ):
            self._row(form, label, name, widget)
        return tab

    def _row(self, form: QFormLayout, label: str, name: str, widget: QWidget) -> None:
        box = QWidget(form.parentWidget())
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(widget)
        error = QLabel("", box)
        error.setStyleSheet(ERROR_STYLE)
        error.setWordWrap(True)
        error.hide()
        column.addWidget(error)
        widget.setAccessibleName(label)
        form.addRow(label, box)
        self.errors[name] = error

    def _general_tab(self) -> QWidget:
        tab = QWidget(self)
        form = QFormLayout(tab)
        self.notifications = QCheckBox("Show a notification when files are delivered or need me", tab)
        self._row(form, "Notifications", "notifications", self.notifications)
        self.start_at_login = QCheckBox("Start PostFlow when I log in", tab)
        self.login_status = QLabel("", tab)
        self.login_status.setWordWrap(True)
        self._row(form, "Start at login", "start_at_login", self.start_at_login)
        form.addRow("", self.login_status)
        return tab

    def load(self) -> None:
        """Show the settings in force now (after a change made elsewhere, too)."""
        s = self._engine.settings
        self.concurrency.setValue(s.max_concurrent_files)
        self.parts.setValue(s.parts_per_file)
        self.bandwidth.setValue(s.bandwidth_limit / MB)
        self.schedule.setPlainText("\n".join(s.bandwidth_schedule))
        self.stable.setValue(s.stable_seconds)
        self.scan.setValue(s.scan_interval)
        self.quiet.setValue(s.quiet_seconds)
        self.check_media.setChecked(s.check_media)
        self.mirror_moves.setChecked(s.mirror_moves)
        self.extensions.setText(", ".join(s.extensions))
        self.ignore.setText(", ".join(s.ignore_patterns))
        self.notifications.setChecked(s.notifications)
        if self.discord is not None:
            self.discord.load(s)
        self.network.load(s)
        self.start_at_login.setChecked(self.login_item.enabled())
        self._show_login_status()
        self.show_roots()

    def _show_login_status(self) -> None:
        self.login_status.setText(self.login_item.describe())  # read back from the system, not a flag

    def _values(self) -> dict[str, Any]:
        return {
            **(self.discord.values() if self.discord is not None else {}),
            **self.network.values(),
            "max_concurrent_files": self.concurrency.value(),
            "parts_per_file": self.parts.value(),
            "bandwidth_limit": round(self.bandwidth.value() * MB),
            "bandwidth_schedule": [line for line in self.schedule.toPlainText().splitlines() if line.strip()],
            "stable_seconds": self.stable.value(),
            "scan_interval": self.scan.value(),
            "quiet_seconds": self.quiet.value(),
            "check_media": self.check_media.isChecked(),
            "mirror_moves": self.mirror_moves.isChecked(),
            "extensions": self.extensions.text(),
            "ignore_patterns": self.ignore.text(),
            "notifications": self.notifications.isChecked(),
        }

    def changes(self) -> dict[str, Any]:
        """What differs from the settings in force, checked field by field: a bad field gets its
        own message beside it, and then nothing at all is saved."""
        current = self._engine.settings
        changed: dict[str, Any] = {}
        bad = False
        for name, raw in self._values().items():
            label = self.errors[name]
            try:
                value = parse_live({name: raw})[name]
            except ConfigError as exc:
                label.setText(exc.message)
                label.show()
                bad = True
                continue
            label.hide()
            if value != getattr(current, name):
                changed[name] = value
        if bad:
            raise ConfigError("Some settings are not valid: see the messages beside them. Nothing was saved.")
        return changed

    def apply(self) -> None:
        try:
            changed = self.changes()
        except ConfigError as exc:
            self.status.setText(exc.message)
            self.status.setStyleSheet(ERROR_STYLE)
            return
        try:
            wanted = self.start_at_login.isChecked()
            # Ticked but registered for another copy (moved, reinstalled): register this one.
            if wanted != self.login_item.enabled() or (wanted and not self.login_item.points_here()):
                self.login_item.set_enabled(wanted)
        except PostFlowError as exc:
            self.errors["start_at_login"].setText(exc.message)
            self.errors["start_at_login"].show()
        self._show_login_status()

        async def save() -> None:
            if changed:
                try:
                    await self._engine.update_settings(changed)
                except PostFlowError as exc:
                    self.status.setStyleSheet(ERROR_STYLE)
                    self.status.setText(f"Not saved: {exc.message}")
                    return
            self.status.setStyleSheet("")
            self.status.setText("Saved." if changed else "Nothing to change.")
            self.load()

        self._bridge.run(save)
