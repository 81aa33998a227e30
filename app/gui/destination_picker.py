"""Choose where a folder's files go: account → workspace → project → folder, browsed live.

Each level is asked of the engine's ``DestinationBrowser`` when the user opens it, a page at
a time ("Show more…" fetches the next), so a studio account with thousands of projects
opens at once. The window never blocks: a level still loading says "Loading…".
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import PostFlowError
from app.engine.destination_browser import Choice, ChoicePage, DestinationBrowser
from app.gui.engine_bridge import EngineBridge

NODE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class Destination:
    account_id: str
    workspace_id: str
    project: str  # the project's name (what config.toml and the menus show)
    folder: str  # "a/b" inside the project, "" for its top level

    @property
    def label(self) -> str:
        return self.project + (f" / {self.folder}" if self.folder else "")


@dataclass(frozen=True)
class _Node:
    choice: Choice | None  # None: a "Show more…" item
    account_id: str
    workspace_id: str = ""
    project: str = ""
    folder: str = ""
    cursor: str | None = None  # for "Show more…"


class DestinationPicker(QDialog):
    def __init__(
        self, browser: DestinationBrowser, bridge: EngineBridge, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a Frame.io destination — PostFlow")
        self.resize(520, 520)
        self._browser = browser
        self._bridge = bridge
        self.chosen: Destination | None = None
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setAccessibleName("Frame.io accounts, workspaces, projects and folders")
        self.tree.itemExpanded.connect(self._expanded)
        self.tree.currentItemChanged.connect(lambda *_: self._update())
        self.tree.itemActivated.connect(self._activated)
        self.hint = QLabel(
            "Open an account and a workspace, then choose a project or one of its folders.", self
        )
        self.hint.setWordWrap(True)
        self.error = QLabel("", self)
        self.error.setStyleSheet("color: #d1242f;")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upload &here")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._update()
        self._load(None, _Node(None, ""))

    # ---- loading ----
    def _load(self, parent: QTreeWidgetItem | None, node: _Node, cursor: str | None = None) -> None:
        loading = QTreeWidgetItem(["Loading…"])
        loading.setFlags(Qt.ItemFlag.NoItemFlags)
        self._add(parent, loading)
        self._bridge.run(
            lambda: self._page(node, cursor), done=lambda page: self._fill(parent, node, loading, page)
        )

    async def _page(self, node: _Node, cursor: str | None) -> ChoicePage | None:
        choice = node.choice
        try:
            if choice is None:
                return await self._browser.accounts(cursor)
            if choice.kind == "account":
                return await self._browser.workspaces(choice.id, cursor)
            if choice.kind == "workspace":
                return await self._browser.projects(node.account_id, choice.id, cursor)
            return await self._browser.folders(node.account_id, choice.folder_id or choice.id, cursor)
        except PostFlowError as exc:
            self.error.setText(f"{exc.title}: {exc.message} Close this level and open it again to retry.")
            return None

    def _fill(self, parent: QTreeWidgetItem | None, node: _Node, loading: QTreeWidgetItem,
              page: ChoicePage | None) -> None:  # fmt: skip
        self._remove(parent, loading)
        if page is None:
            if parent is not None:
                parent.setData(0, NODE + 1, False)  # not loaded: opening it again retries
            return
        self.error.setText("")
        for choice in page.items:
            child = self._child_node(node, choice)
            item = QTreeWidgetItem([self._label(choice)])
            item.setData(0, NODE, child)
            item.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            self._add(parent, item)
        if page.next_cursor:
            more = QTreeWidgetItem(["Show more…"])
            more.setData(0, NODE, _Node(None, node.account_id, cursor=page.next_cursor))
            more.setData(0, NODE + 2, node)
            self._add(parent, more)
        if parent is not None and parent.childCount() == 0:
            parent.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.DontShowIndicator)
        if parent is None and len(page.items) == 1 and self.tree.topLevelItemCount() == 1:
            only = self.tree.topLevelItem(0)
            if only is not None:
                only.setExpanded(True)  # one account: open it for the user

    @staticmethod
    def _label(choice: Choice) -> str:
        kind = {"account": "Account", "workspace": "Workspace", "project": "Project", "folder": "Folder"}
        return f"{choice.name}  ({kind.get(choice.kind, choice.kind)})"

    @staticmethod
    def _child_node(parent: _Node, choice: Choice) -> _Node:
        if choice.kind == "account":
            return _Node(choice, choice.id)
        if choice.kind == "workspace":
            return _Node(choice, parent.account_id, choice.id)
        if choice.kind == "project":
            return _Node(choice, parent.account_id, parent.workspace_id, choice.name)
        folder = f"{parent.folder}/{choice.name}" if parent.folder else choice.name
        return _Node(choice, parent.account_id, parent.workspace_id, parent.project, folder)

    def _add(self, parent: QTreeWidgetItem | None, item: QTreeWidgetItem) -> None:
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)

    def _remove(self, parent: QTreeWidgetItem | None, item: QTreeWidgetItem) -> None:
        if parent is None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        else:
            parent.removeChild(item)

    def _expanded(self, item: QTreeWidgetItem) -> None:
        node = item.data(0, NODE)
        if isinstance(node, _Node) and node.choice is not None and not item.data(0, NODE + 1):
            item.setData(0, NODE + 1, True)
            self._load(item, node)

    def _activated(self, item: QTreeWidgetItem) -> None:
        node = item.data(0, NODE)
        if isinstance(node, _Node) and node.choice is None and node.cursor:
            parent_node = item.data(0, NODE + 2)
            parent = item.parent()
            self._remove(parent, item)
            self._load(parent, parent_node, node.cursor)
        elif self._destination() is not None:
            self._accept()
        else:
            item.setExpanded(not item.isExpanded())

    # ---- choosing ----
    def _destination(self) -> Destination | None:
        item = self.tree.currentItem()
        node = item.data(0, NODE) if item is not None else None
        if (
            not isinstance(node, _Node)
            or node.choice is None
            or node.choice.kind not in ("project", "folder")
        ):
            return None
        return Destination(node.account_id, node.workspace_id, node.project, node.folder)

    def _update(self) -> None:
        chosen = self._destination()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(chosen is not None)
        ok.setToolTip(f"Upload into {chosen.label}" if chosen else "Choose a project or a folder first")

    def choose(self, destination: Destination) -> None:
        """Set the result directly (tests, and "keep the current destination")."""
        self.chosen = destination
        self.accept()

    def _accept(self) -> None:
        chosen = self._destination()
        if chosen is not None:
            self.chosen = chosen
            self.accept()


def choose_destination(
    browser: DestinationBrowser, bridge: EngineBridge, parent: QWidget
) -> Destination | None:
    """The picker as a modal step (settings, first run); None when the user cancels."""
    picker = DestinationPicker(browser, bridge, parent)
    picker.exec()
    picker.deleteLater()
    return picker.chosen


def choose_folder(parent: QWidget) -> str | None:
    return QFileDialog.getExistingDirectory(parent, "Folder to watch — PostFlow") or None
