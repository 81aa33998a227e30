"""The tray icon and its right-click menu: the truth at a glance, and the few things to do.

The icon changes only when its look (or its 5 % progress step) changes; the tooltip follows
every snapshot. The menu is rebuilt from the latest snapshot each time it opens, so the
counts and the signed-in name it shows are never stale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.core.events import AuthState, Snapshot
from app.gui.engine_bridge import EngineBridge
from app.gui.tray_icons import TrayIcons
from app.gui.tray_status import TrayLook, look_of, problem_line, progress_percent, status_line, tooltip


@dataclass
class TrayActions:
    """What the menu's entries do; the app controller provides them."""

    pause_all: Callable[[], object]
    resume_all: Callable[[], object]
    retry_failed: Callable[[], object]
    open_window: Callable[[], object]
    open_project: Callable[[str], object]  # root id
    open_settings: Callable[[], object]
    sign_in: Callable[[], object]
    sign_out: Callable[[], object]
    quit: Callable[[], object]
    user_name: Callable[[], str | None]
    open_download: Callable[[str], object] = lambda url: None  # a newer release's page


class Tray(QObject):
    def __init__(
        self,
        bridge: EngineBridge,
        actions: TrayActions,
        icons: TrayIcons,
        icon: QSystemTrayIcon | None = None,
    ) -> None:
        """``icon``: the one already shown while PostFlow started (taken over, not replaced)."""
        super().__init__()
        self._actions = actions
        self._icons = icons
        self._snapshot: Snapshot | None = None
        self.shown_key: tuple[TrayLook, int | None] | None = None
        self.icon_changes = 0  # how many times setIcon ran (tests: only on a change)
        self.icon = icon or QSystemTrayIcon(self)
        self.icon.setParent(self)
        self.menu = QMenu()
        self.menu.setTitle("PostFlow")
        self._build_menu()
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.menu.aboutToShow.connect(self.refresh_menu)
        bridge.snapshot_changed.connect(self.show_snapshot)
        self._show_look(TrayLook.IDLE, None)
        self.icon.setToolTip("PostFlow\nStarting…")

    # ---- the menu ----
    def _action(self, text: str, slot: Callable[[], object] | None = None) -> QAction:
        action = QAction(text, self.menu)
        if slot is not None:
            action.triggered.connect(lambda _checked=False: slot())
        self.menu.addAction(action)
        return action

    def _build_menu(self) -> None:
        a = self._actions
        self.status_action = self._action("Starting…")
        self.status_action.setEnabled(False)
        self.problem_action = self._action("")
        self.problem_action.setEnabled(False)
        self.update_action = self._action("", self._open_update)
        self.update_action.setVisible(False)
        self.menu.addSeparator()
        self.pause_action = self._action("&Pause all uploads", self._toggle_pause)
        self.retry_action = self._action("&Retry failed", a.retry_failed)
        self.menu.addSeparator()
        self.window_action = self._action("Open &queue window…", a.open_window)
        self.project_menu = QMenu("Open project in &Frame.io", self.menu)
        self.project_action = self.menu.addMenu(self.project_menu)
        self.settings_action = self._action("&Settings…", a.open_settings)
        self.menu.addSeparator()
        self.account_action = self._action("Sign &in with Adobe…", self._toggle_account)
        self.menu.addSeparator()
        self.quit_action = self._action("&Quit PostFlow", a.quit)

    def _open_update(self) -> None:
        if self._snapshot is not None and self._snapshot.update is not None:
            self._actions.open_download(self._snapshot.update.download_url)

    def _toggle_pause(self) -> None:
        if self._snapshot is not None and self._snapshot.paused:
            self._actions.resume_all()
        else:
            self._actions.pause_all()

    def _toggle_account(self) -> None:
        if self._snapshot is not None and self._snapshot.auth is AuthState.SIGNED_IN:
            self._actions.sign_out()
        else:
            self._actions.sign_in()

    def refresh_menu(self) -> None:
        snap = self._snapshot
        if snap is None:
            return
        self.status_action.setText(status_line(snap))
        problem = problem_line(snap)
        self.problem_action.setText(problem or "")
        self.problem_action.setVisible(problem is not None)
        update = snap.update
        self.update_action.setVisible(update is not None)
        if update is not None:
            self.update_action.setText(f"PostFlow {update.version} is available…")
        self.pause_action.setText("Resume &all uploads" if snap.paused else "&Pause all uploads")
        failed = snap.counts.get("failed", 0)
        self.retry_action.setText(f"&Retry failed ({failed})" if failed else "&Retry failed")
        self.retry_action.setEnabled(failed > 0)
        self._fill_projects(snap)
        if snap.auth is AuthState.SIGNED_IN:
            who = self._actions.user_name() or snap.user_email or "Adobe account"
            self.account_action.setText(f"Sign &out ({who})")
        else:
            self.account_action.setText("Sign &in with Adobe…")

    def _fill_projects(self, snap: Snapshot) -> None:
        self.project_menu.clear()
        for root in snap.roots:
            label = root.project + (f" / {root.folder}" if root.folder else "")
            action = self.project_menu.addAction(label)
            action.triggered.connect(lambda _checked=False, rid=root.id: self._actions.open_project(rid))
        self.project_action.setEnabled(bool(snap.roots))

    # ---- the icon ----
    def show_snapshot(self, snap: Snapshot) -> None:
        self._snapshot = snap
        look = look_of(snap)
        self._show_look(look, progress_percent(snap))
        self.icon.setToolTip(tooltip(snap))
        if self.menu.isVisible():
            self.refresh_menu()

    def _show_look(self, look: TrayLook, percent: int | None) -> None:
        key = self._icons.key(look, percent)
        if key == self.shown_key:
            return
        self.shown_key = key
        self.icon_changes += 1
        self.icon.setIcon(self._icons.icon(look, percent))

    @property
    def look(self) -> TrayLook | None:
        return None if self.shown_key is None else self.shown_key[0]

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self._actions.open_window()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()
