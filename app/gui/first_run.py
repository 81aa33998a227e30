"""First run: sign in → pick a folder → pick a destination → done, in one small window; or
"Try the sandbox", which watches a demo folder against the built-in sandbox and drops a sample
render in it, so a new user sees a file go up with no account at all."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import PostFlowError
from app.core.events import AuthState
from app.core.jobs import WatchRoot
from app.engine.service import EngineService
from app.gui.destination_picker import Destination, choose_destination, choose_folder
from app.gui.engine_bridge import EngineBridge

DEMO_PROJECT = "Demo Project"
SAMPLE_NAME = "Welcome to PostFlow.mp4"
SAMPLE_SIZE = 8 * 1024 * 1024
ERROR_STYLE = "color: #d1242f;"


def demo_folder(data_dir: Path) -> Path:
    return data_dir / "Demo folder"


def write_sample(folder: Path) -> Path:
    """A sample "render" (random bytes: the sandbox stores no copy of them)."""
    folder.mkdir(parents=True, exist_ok=True)
    sample = folder / SAMPLE_NAME
    if not sample.exists():
        tmp = folder / f".{SAMPLE_NAME}.part"
        with tmp.open("wb") as out:
            for _ in range(SAMPLE_SIZE // (1024 * 1024)):
                out.write(os.urandom(1024 * 1024))
        os.replace(tmp, sample)
    return sample


class FirstRunDialog(QDialog):
    sandbox_requested = Signal()  # the session is not the sandbox: the app restarts in it
    finished_setup = Signal(str)  # the folder now watched

    def __init__(
        self, engine: EngineService, bridge: EngineBridge, *, demo: bool, sign_in: Callable[[], None],
        parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        super().__init__(parent)
        self.setWindowTitle("Welcome to PostFlow")
        self.resize(560, 360)
        self._engine = engine
        self._bridge = bridge
        self._demo = demo
        self._sign_in = sign_in
        self.destination: Destination | None = None
        self.choose_folder: Callable[[], str | None] = lambda: choose_folder(self)
        self.choose_destination: Callable[[], Destination | None] = lambda: choose_destination(
            engine.browser, bridge, self
        )
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self._welcome_page())
        self.pages.addWidget(self._folder_page())
        self.pages.addWidget(self._destination_page())
        self.pages.addWidget(self._done_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        bridge.snapshot_changed.connect(lambda snap: self.show_auth(snap.auth, snap.user_email))

    # ---- pages ----
    def _page(self, title: str, text: str) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        heading = QLabel(f"<h2>{title}</h2>", page)
        body = QLabel(text, page)
        body.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(body)
        return page, layout

    def _nav(
        self, layout: QVBoxLayout, back: bool, next_text: str, on_next: Callable[[], None]
    ) -> QPushButton:
        layout.addStretch(1)
        row = QHBoxLayout()
        if back:
            back_button = QPushButton("&Back", self)
            back_button.clicked.connect(
                lambda _c=False: self.pages.setCurrentIndex(self.pages.currentIndex() - 1)
            )
            row.addWidget(back_button)
        row.addStretch(1)
        button = QPushButton(next_text, self)
        button.setDefault(True)
        button.clicked.connect(lambda _c=False: on_next())
        row.addWidget(button)
        layout.addLayout(row)
        return button

    def _welcome_page(self) -> QWidget:
        page, layout = self._page(
            "Welcome to PostFlow",
            "PostFlow uploads every finished render from your folders to Frame.io. "
            "Sign in with your Adobe account, or try it first with the built-in sandbox: "
            "no account needed.",
        )
        self.auth_label = QLabel("", page)
        self.auth_label.setWordWrap(True)
        layout.addWidget(self.auth_label)
        row = QHBoxLayout()
        self.sign_in_button = QPushButton("Sign in with &Adobe…", page)
        self.sign_in_button.clicked.connect(lambda _c=False: self._sign_in())
        self.sandbox_button = QPushButton("Try the &sandbox", page)
        self.sandbox_button.setToolTip("Watch a demo folder and upload a sample file to the built-in sandbox")
        self.sandbox_button.clicked.connect(lambda _c=False: self.try_sandbox())
        row.addWidget(self.sign_in_button)
        row.addWidget(self.sandbox_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.welcome_next = self._nav(layout, False, "&Next", lambda: self.pages.setCurrentIndex(1))
        self.show_auth(AuthState.SIGNED_OUT, None)
        return page

    def show_auth(self, auth: AuthState, email: str | None) -> None:
        signed_in = auth is AuthState.SIGNED_IN
        if signed_in:
            where = " (the built-in sandbox)" if self._demo else ""
            self.auth_label.setText(f"Signed in as {email or 'your Adobe account'}{where}.")
        else:
            self.auth_label.setText("Not signed in yet.")
        self.sign_in_button.setVisible(not signed_in)
        self.welcome_next.setEnabled(signed_in)

    def _folder_page(self) -> QWidget:
        page, layout = self._page(
            "Pick a folder",
            "Choose the folder your renders land in (for example a folder of your LucidLink "
            "filespace). Every finished file in it and its sub-folders is uploaded.",
        )
        row = QHBoxLayout()
        self.folder_edit = QLineEdit(page)
        self.folder_edit.setAccessibleName("Folder to watch")
        self.folder_edit.setPlaceholderText("/Volumes/filespace/Renders")
        browse = QPushButton("&Browse…", page)
        browse.clicked.connect(lambda _c=False: self._browse())
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        self.upload_existing = QCheckBox("Also upload the files already in this folder", page)
        self.upload_existing.setChecked(True)
        layout.addWidget(self.upload_existing)
        self.folder_error = QLabel("", page)
        self.folder_error.setStyleSheet(ERROR_STYLE)
        self.folder_error.setWordWrap(True)
        layout.addWidget(self.folder_error)
        self._nav(layout, True, "&Next", self._folder_next)
        return page

    def _browse(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.folder_edit.setText(folder)

    def _folder_next(self) -> None:
        if not self.folder_edit.text().strip():
            self.folder_error.setText("Choose a folder first.")
            return
        self._bridge.run(self._check_folder)

    async def _check_folder(self) -> None:
        """In a worker thread: a filespace that stalls must not freeze the window."""
        folder = Path(self.folder_edit.text().strip()).expanduser()
        if not await asyncio.to_thread(folder.is_dir):
            self.folder_error.setText(f"{folder} is not a folder that exists. Is the filespace mounted?")
        else:
            self.folder_error.setText("")
            self.pages.setCurrentIndex(2)

    def _destination_page(self) -> QWidget:
        page, layout = self._page(
            "Pick a destination", "Choose the Frame.io project (and folder) the files go to."
        )
        row = QHBoxLayout()
        self.destination_label = QLabel("No destination chosen yet.", page)
        choose = QPushButton("&Choose…", page)
        choose.clicked.connect(lambda _c=False: self._pick())
        row.addWidget(self.destination_label, 1)
        row.addWidget(choose)
        layout.addLayout(row)
        self.destination_error = QLabel("", page)
        self.destination_error.setStyleSheet(ERROR_STYLE)
        self.destination_error.setWordWrap(True)
        layout.addWidget(self.destination_error)
        self.finish_button = self._nav(layout, True, "&Start uploading", self.finish)
        self.finish_button.setEnabled(False)
        return page

    def _pick(self) -> None:
        chosen = self.choose_destination()
        if chosen is not None:
            self.destination = chosen
            self.destination_label.setText(f"Files go to {chosen.label}.")
            self.finish_button.setEnabled(True)

    def _done_page(self) -> QWidget:
        page, layout = self._page("You are set", "")
        self.done_label = QLabel("", page)
        self.done_label.setWordWrap(True)
        layout.addWidget(self.done_label)
        self._nav(layout, False, "&Close", self.accept)
        return page

    # ---- finishing ----
    def finish(self) -> None:
        destination = self.destination
        if destination is None:
            return
        folder = self.folder_edit.text().strip()
        root = WatchRoot("", str(Path(folder).expanduser()), destination.project, destination.folder,
                         destination.workspace_id, destination.account_id)  # fmt: skip
        existing = self.upload_existing.isChecked()
        self._add(root, existing, f"PostFlow now watches {folder} and uploads to {destination.label}. "
                  "It lives in the menu bar (tray): close this window any time.")  # fmt: skip

    def try_sandbox(self) -> None:
        if not self._demo:
            self.sandbox_requested.emit()
            self.accept()
            return
        folder = demo_folder(self._engine.settings.paths.data_dir)
        self.folder_edit.setText(str(folder))

        async def run() -> None:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            await self._engine_add(WatchRoot("", str(folder), DEMO_PROJECT), True,
                                   f"The sandbox is running. Drop any video into {folder}: it is uploaded "
                                   f"to “{DEMO_PROJECT}”. A sample file is on its way now.")  # fmt: skip
            await asyncio.to_thread(write_sample, folder)

        self._bridge.run(run)

    def _add(self, root: WatchRoot, existing: bool, success: str) -> None:
        self._bridge.run(lambda: self._engine_add(root, existing, success))

    async def _engine_add(self, root: WatchRoot, existing: bool, success: str) -> None:
        try:
            if all(r.path != root.path for r in self._engine.roots):
                await self._engine.add_root(root, upload_existing=existing)
        except PostFlowError as exc:
            self.destination_error.setText(exc.message)
            self.folder_error.setText(exc.message)
            return
        self.done_label.setText(success)
        self.pages.setCurrentIndex(3)
        self.finished_setup.emit(root.path)
