"""The queue and health window: what is uploading, what needs attention, what was delivered.

Tabs for the queue, the health checks and the log. Everything it shows comes from engine
events and engine calls through the bridge; every button is also in the row's context menu
and reachable with the keyboard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.control.status_document import health_json
from app.core.errors import PostFlowError
from app.core.events import Snapshot
from app.core.jobs import JobState
from app.diagnostics import write_bundle
from app.doctor import describe
from app.engine.service import EngineService
from app.gui.desktop_open import open_url, reveal, reveal_target
from app.gui.engine_bridge import EngineBridge
from app.gui.health_rows import health_rows, metrics_line
from app.gui.log_view import LogView, QtLogHandler
from app.gui.queue_model import COLUMNS, PROGRESS_ROLE, Column, QueueFilter, QueueModel, Row
from app.gui.tray_status import problem_line, status_line

SEARCH_DELAY_MS = 250  # wait for the user to stop typing before asking the engine


class ProgressDelegate(QStyledItemDelegate):
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        percent = index.data(PROGRESS_ROLE)
        if percent is None or percent < 0:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum, bar.progress = 0, 100, int(percent)
        bar.text = f"{percent} %"
        bar.textVisible = True
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class QueueWindow(QMainWindow):
    def __init__(
        self, engine: EngineService, bridge: EngineBridge, log_handler: QtLogHandler,
        *, sign_in: Callable[[], None], open_settings: Callable[[], None],
        open_link: Callable[[str], None] = open_url,
    ) -> None:  # fmt: skip
        super().__init__()
        self._engine = engine
        self._bridge = bridge
        self._sign_in = sign_in
        self._open_link = open_link
        self.hide_on_close = True  # False when no system tray shows PostFlow
        self._snapshot: Snapshot | None = None
        self.setWindowTitle("PostFlow — Queue")
        self.resize(1100, 560)
        self.model = QueueModel(engine, self)
        self.model.bind(lambda action: bridge.run(action))
        bridge.job_added.connect(self.model.on_job_added)
        bridge.job_changed.connect(self.model.on_job_changed)
        bridge.job_progress.connect(self.model.on_progress)
        bridge.settling_changed.connect(self.model.on_settling)
        bridge.snapshot_changed.connect(self.show_snapshot)

        self.tabs = QTabWidget(self)
        self.setCentralWidget(self.tabs)
        self.tabs.addTab(self._queue_tab(open_settings), "&Queue")
        self.tabs.addTab(self._health_tab(), "&Health")
        self.log_view = LogView(log_handler, self)
        self.tabs.addTab(self.log_view, "&Log")
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._search)
        self._update_buttons()

    # ---- layout ----
    def _queue_tab(self, open_settings: Callable[[], None]) -> QWidget:
        tab = QWidget(self)
        layout = QVBoxLayout(tab)
        header = QHBoxLayout()
        self.status_label = QLabel("Starting…", tab)
        self.status_label.setAccessibleName("Upload status")
        self.problem_label = QLabel("", tab)
        self.problem_label.setStyleSheet("color: #d1242f;")
        self.problem_label.setWordWrap(True)
        self.pause_button = QPushButton("&Pause all", tab)
        self.pause_button.clicked.connect(self._toggle_pause)
        settings_button = QPushButton("&Settings…", tab)
        settings_button.clicked.connect(open_settings)
        header.addWidget(self.status_label, 1)
        header.addWidget(self.pause_button)
        header.addWidget(settings_button)
        layout.addLayout(header)
        layout.addWidget(self.problem_label)

        filters = QHBoxLayout()
        self.filter_buttons: dict[QueueFilter, QPushButton] = {}
        for number, choice in enumerate(QueueFilter, start=1):
            button = QPushButton(f"{choice.value}", tab)
            button.setCheckable(True)
            button.setShortcut(QKeySequence(f"Alt+{number}"))
            button.setToolTip(f"Show {choice.value.lower()} files (Alt+{number})")
            button.clicked.connect(lambda _c=False, f=choice: self.show_filter(f))
            filters.addWidget(button)
            self.filter_buttons[choice] = button
        self.filter_buttons[QueueFilter.ACTIVE].setChecked(True)
        filters.addStretch(1)
        self.search = QLineEdit(tab)
        self.search.setPlaceholderText("Search file names (Ctrl+F)")
        self.search.setAccessibleName("Search file names")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        find = QAction(self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(lambda: self.search.setFocus())
        self.addAction(find)
        filters.addWidget(self.search, 1)
        self.total_label = QLabel("", tab)
        filters.addWidget(self.total_label)
        self.model.total_changed.connect(lambda n: self.total_label.setText(f"{n} files"))
        layout.addLayout(filters)

        self.table = QTableView(tab)
        self.table.setModel(self.model)
        self.table.setAccessibleName("Upload queue")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setItemDelegateForColumn(COLUMNS.index(Column.PROGRESS), ProgressDelegate(self.table))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in ((Column.FILE, 240), (Column.DESTINATION, 200), (Column.PROGRESS, 110),
                              (Column.STATE, 160)):  # fmt: skip
            self.table.setColumnWidth(COLUMNS.index(column), width)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.retry_button = self._button(tab, buttons, "&Retry", self.retry_selected)
        self.next_button = self._button(tab, buttons, "Upload &next", self.upload_next_selected)
        self.next_button.setToolTip(
            "Put the selected waiting files ahead of every other (uploads under way go on)"
        )
        self.cancel_button = self._button(tab, buttons, "&Cancel upload", self.cancel_selected)
        self.reveal_button = self._button(tab, buttons, "Show in &folder", self.reveal_selected)
        self.open_button = self._button(tab, buttons, "Open in Frame.&io", self.open_selected)
        self.remove_button = self._button(tab, buttons, "Re&move from list", self.remove_selected)
        buttons.addStretch(1)
        self.retry_all_button = self._button(tab, buttons, "Retry &all failed", self.retry_all)
        layout.addLayout(buttons)
        return tab

    @staticmethod
    def _button(parent: QWidget, layout: QHBoxLayout, text: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text, parent)
        button.clicked.connect(lambda _c=False: slot())
        layout.addWidget(button)
        return button

    def _health_tab(self) -> QWidget:
        tab = QWidget(self)
        layout = QVBoxLayout(tab)
        self.health_list = QListWidget(tab)
        self.health_list.setAccessibleName("Health checks")
        self.health_list.setWordWrap(True)
        self.health_list.setIconSize(QSize(14, 14))
        layout.addWidget(self.health_list, 1)
        self.metrics_label = QLabel("", tab)
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setAccessibleName("Upload statistics")
        layout.addWidget(self.metrics_label)
        row = QHBoxLayout()
        self.sign_in_button = QPushButton("Sign &in with Adobe…", tab)
        self.sign_in_button.clicked.connect(lambda _c=False: self._sign_in())
        check = QPushButton("&Check now", tab)
        check.clicked.connect(lambda _c=False: self._bridge.run(self._engine.check_health))
        self.diagnostics_button = QPushButton("Copy &diagnostics", tab)
        self.diagnostics_button.clicked.connect(lambda _c=False: self.copy_diagnostics())
        self.tunnel_button = QPushButton("Test &tunnel", tab)
        self.tunnel_button.setToolTip(
            "Fetch a small test file through the pull-mode tunnel, as Frame.io would"
        )
        self.tunnel_button.clicked.connect(lambda _c=False: self.test_tunnel())
        for button in (self.sign_in_button, check, self.diagnostics_button, self.tunnel_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.diagnostics_status = QLabel("", tab)
        self.diagnostics_status.setWordWrap(True)
        self.diagnostics_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.diagnostics_status)
        return tab

    def copy_diagnostics(self) -> None:
        """The support zip (secrets removed) in the Downloads folder, its path on the clipboard."""

        async def write() -> None:
            self.diagnostics_button.setEnabled(False)
            try:
                settings = self._engine.settings
                lines, checks = describe(settings, True), [health_json(h) for h in self._engine.health()]

                def on_disk() -> Path:  # the disk is asked in a thread, never on the GUI thread
                    return write_bundle(settings, self.diagnostics_target(), lines, checks)

                path = await asyncio.to_thread(on_disk)
            finally:
                self.diagnostics_button.setEnabled(True)
            QApplication.clipboard().setText(str(path))
            self.diagnostics_status.setText(
                f"Diagnostics saved to {path} (its path is on the clipboard): send this file to support. "
                "It holds no tokens, secrets or webhook addresses."
            )

        self._bridge.run(write)

    def test_tunnel(self) -> None:
        async def probe() -> None:
            self.tunnel_button.setEnabled(False)
            self.diagnostics_status.setText("Testing the tunnel…")
            try:
                said = await self._engine.test_tunnel()
            except PostFlowError as exc:
                said = f"Tunnel test failed: {exc.message}"
            finally:
                self.tunnel_button.setEnabled(True)
            self.diagnostics_status.setText(said)

        self._bridge.run(probe)

    def diagnostics_target(self) -> Path:
        """Blocking (called in a thread)."""
        places = (Path.home() / "Downloads", Path.home() / "Desktop")
        folder = next((d for d in places if d.is_dir()), Path.home())
        return folder / time.strftime("PostFlow-diagnostics-%Y%m%d-%H%M%S.zip")

    # ---- snapshot ----
    def show_snapshot(self, snap: Snapshot) -> None:
        self.status_label.setText(status_line(snap))
        problem = problem_line(snap)
        self.problem_label.setText(problem or "")
        self.problem_label.setVisible(problem is not None)
        self.pause_button.setText("Resume &all" if snap.paused else "&Pause all")
        failed = snap.counts.get("failed", 0)
        self.retry_all_button.setText(f"Retry &all failed ({failed})" if failed else "Retry &all failed")
        self.retry_all_button.setEnabled(failed > 0)
        self.model.set_roots(snap.roots)
        self._show_health(snap)
        self.metrics_label.setText(metrics_line(self._engine.metrics.summary()))
        self._snapshot = snap

    def _show_health(self, snap: Snapshot) -> None:
        self.health_list.clear()
        for row in health_rows(snap):
            mark = "✓" if row.ok else "✗"
            item = QListWidgetItem(f"{mark}  {row.label}\n     {row.explanation}")
            item.setForeground(Qt.GlobalColor.darkGreen if row.ok else Qt.GlobalColor.red)
            item.setData(Qt.ItemDataRole.AccessibleTextRole,
                         f"{row.label}: {'OK' if row.ok else 'problem'}. {row.explanation}")  # fmt: skip
            self.health_list.addItem(item)
        self.sign_in_button.setVisible(snap.auth.value == "signed_out")
        self.tunnel_button.setVisible(any(r.upload_mode != "push" for r in snap.roots))

    # ---- actions ----
    def show_filter(self, choice: QueueFilter) -> None:
        for other, button in self.filter_buttons.items():
            button.setChecked(other is choice)
        self._bridge.run(lambda: self.model.reload(choice))

    def _search(self) -> None:
        text = self.search.text()
        self._bridge.run(lambda: self.model.reload(text=text))

    def selected_rows(self) -> list[Row]:
        rows = []
        for index in self.table.selectionModel().selectedRows():
            row = self.model.row(index.row())
            if row is not None:
                rows.append(row)
        return rows

    def _selected_jobs(self, states: tuple[JobState, ...] = ()) -> list[int]:
        return [
            r.view.id for r in self.selected_rows()
            if r.view is not None and (not states or r.view.state in states)
        ]  # fmt: skip

    def _update_buttons(self) -> None:
        rows = self.selected_rows()
        views = [r.view for r in rows if r.view is not None]
        self.retry_button.setEnabled(any(v.state in (JobState.FAILED, JobState.CANCELLED) for v in views))
        self.next_button.setEnabled(any(v.state in (JobState.PENDING, JobState.PAUSED) for v in views))
        self.cancel_button.setEnabled(
            any(v.state in (JobState.PENDING, JobState.UPLOADING, JobState.PAUSED, JobState.FAILED)
                for v in views)
        )  # fmt: skip
        self.reveal_button.setEnabled(len(rows) == 1)
        self.open_button.setEnabled(len(views) == 1 and bool(views[0].link))
        self.remove_button.setEnabled(any(v.state in (JobState.DONE, JobState.CANCELLED) for v in views))

    def retry_selected(self) -> None:
        ids = self._selected_jobs((JobState.FAILED, JobState.CANCELLED))
        self._bridge.run(lambda: self._each(self._engine.retry, ids))

    def upload_next_selected(self) -> None:
        """In reverse, so the first selected ends up first of all."""
        ids = list(reversed(self._selected_jobs((JobState.PENDING, JobState.PAUSED))))

        async def put_first() -> None:
            for job_id in ids:
                await self._engine.upload_next(job_id)

        self._bridge.run(put_first)

    def cancel_selected(self) -> None:
        ids = self._selected_jobs((JobState.PENDING, JobState.UPLOADING, JobState.PAUSED, JobState.FAILED))
        self._bridge.run(lambda: self._each(self._engine.cancel, ids))

    @staticmethod
    async def _each(action: Callable[[int], Awaitable[None]], ids: list[int]) -> None:
        for job_id in ids:
            await action(job_id)

    def remove_selected(self) -> None:
        ids = self._selected_jobs((JobState.DONE, JobState.CANCELLED))
        if ids:

            async def remove() -> None:
                await self._engine.remove_finished(ids)
                await self.model.reload()

            self._bridge.run(remove)

    def retry_all(self) -> None:
        self._bridge.run(self._engine.retry_failed)

    def reveal_selected(self) -> None:
        rows = self.selected_rows()
        if len(rows) == 1:
            row = rows[0]
            path = row.view.job.abs_path if row.view else self._settling_path(row)
            # The disk is asked in a thread (a stalled volume must not freeze the window);
            # the file manager is opened back on the GUI thread.
            self._bridge.run(lambda: asyncio.to_thread(reveal_target, path), done=reveal)

    def _settling_path(self, row: Row) -> str:
        snap = self._snapshot
        root = next((r for r in snap.roots if r.id == row.root_id), None) if snap else None
        return f"{root.path}/{row.rel_path}" if root else row.rel_path

    def open_selected(self) -> None:
        views = [r.view for r in self.selected_rows() if r.view is not None]
        if len(views) == 1:
            link = views[0].link or ""
            self._guard(lambda: self._open_link(link))

    def _guard(self, action: Callable[[], None]) -> None:
        from app.core.errors import PostFlowError

        try:
            action()
        except PostFlowError as exc:
            self._bridge.failed.emit(exc.title, exc.message)

    def _toggle_pause(self) -> None:
        snap = self._snapshot
        if snap is not None and snap.paused:
            self._bridge.run(self._engine.resume_all)
        else:
            self._bridge.run(self._engine.pause_all)

    def _context_menu(self, point: QPoint) -> None:
        self._update_buttons()
        menu = QMenu(self)
        for button in (self.next_button, self.retry_button, self.cancel_button, self.reveal_button,
                       self.open_button, self.remove_button):  # fmt: skip
            action = menu.addAction(button.text().replace("&", ""))
            action.setEnabled(button.isEnabled())
            action.triggered.connect(button.click)
        menu.popup(self.table.viewport().mapToGlobal(point))

    def bring_forward(self) -> None:
        self.show()
        self.setWindowState(
            (self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive
        )
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Closing the window never stops uploads: with a tray it hides (PostFlow lives on in the
        tray); with no tray it is minimised, so the app stays reachable from the dock or taskbar."""
        event.ignore()
        if self.hide_on_close:
            self.hide()
        else:
            self.showMinimized()
