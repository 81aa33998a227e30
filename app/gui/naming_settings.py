"""The settings page's "Naming" tab: a watch folder's naming rules, version stacking, routing
field and comment template, with "test your pattern": sample names read live as the rules are
typed. Every reading and every check is the engine's; this page only shows them."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from app.core.errors import ConfigError, PostFlowError
from app.core.jobs import WatchRoot
from app.engine.service import EngineService
from app.gui.engine_bridge import EngineBridge

ERROR_STYLE = "color: #b00020;"
SAMPLES = "SHOW_SC010_v001.mov\nSHOW_SC010_V002.mov\nSHOW_SQ01_SH020_comp_v003.exr\nreference.mov"


class NamingSettings(QWidget):
    def __init__(self, engine: EngineService, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._bridge = bridge
        form = QFormLayout(self)
        self.root = QComboBox(self)
        self.root.setAccessibleName("Watch folder")
        self.root.currentIndexChanged.connect(lambda _i: self.load_root())
        self.rules = QPlainTextEdit(self)
        self.rules.setAccessibleName("Naming rules, one per line")
        self.rules.setPlaceholderText("versioned\nshot_task\n(?P<shot>SC\\d+)_v(?P<version>\\d+)")
        self.rules.setMaximumHeight(90)
        self.stack = QCheckBox("Put new versions of a render in its Frame.io version stack", self)
        self.route_by = QLineEdit(self)
        self.route_by.setPlaceholderText("e.g. shot: each shot in its own sub-folder (empty: none)")
        self.comment = QLineEdit(self)
        self.comment.setPlaceholderText("e.g. {shot} {version} rendered {rendered_at} on {machine}")
        self.samples = QPlainTextEdit(SAMPLES, self)
        self.samples.setAccessibleName("Sample names to test the rules on")
        self.samples.setMaximumHeight(90)
        self.reading = QLabel("", self)
        self.reading.setWordWrap(True)
        self.error = QLabel("", self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.save_button = QPushButton("&Save naming for this folder", self)
        self.save_button.clicked.connect(lambda _c=False: self.save())
        for label, widget in (
            ("Watch folder", self.root), ("Naming rules", self.rules), ("Versions", self.stack),
            ("Route into sub-folders by", self.route_by), ("Comment on each upload", self.comment),
            ("Test your rules on", self.samples), ("They read", self.reading), ("", self.error),
            ("", self.save_button),
        ):  # fmt: skip
            form.addRow(label, widget)
        for edit in (self.rules, self.samples):
            edit.textChanged.connect(self.test)
        self.stack.toggled.connect(lambda _on: self.test())
        self.show_roots()

    def _roots(self) -> tuple[WatchRoot, ...]:
        return tuple(self._engine.roots)

    def show_roots(self) -> None:
        current = self.root.currentData()
        self.root.blockSignals(True)
        self.root.clear()
        for root in self._roots():
            self.root.addItem(root.path, root.id)
        at = self.root.findData(current)
        self.root.setCurrentIndex(at if at >= 0 else 0)
        self.root.blockSignals(False)
        self.load_root()

    def selected(self) -> WatchRoot | None:
        wanted = self.root.currentData()
        return next((r for r in self._roots() if r.id == wanted), None)

    def load_root(self) -> None:
        root = self.selected()
        for widget in (self.rules, self.stack, self.route_by, self.comment, self.save_button):
            widget.setEnabled(root is not None)
        if root is None:
            self.reading.setText("Add a watch folder first.")
            return
        self.rules.setPlainText("\n".join(root.naming))
        self.stack.setChecked(root.stack_versions)
        self.route_by.setText(root.route_by)
        self.comment.setText(root.comment)
        self.test()

    def test(self) -> None:
        """Read the sample names with the rules as typed, at every keystroke."""
        try:
            lines = self._engine.preview_naming(
                self.rules.toPlainText().splitlines(), self.samples.toPlainText().splitlines(),
                self.stack.isChecked(),
            )  # fmt: skip
        except ConfigError as exc:
            self.reading.setText("")
            self.error.setText(exc.message)
            return
        self.error.setText("")
        self.reading.setText("\n".join(lines))

    def save(self) -> None:
        root = self.selected()
        if root is None:
            return

        async def run() -> None:
            try:
                await self._engine.set_naming(
                    root.id,
                    naming=self.rules.toPlainText().splitlines(),
                    stack_versions=self.stack.isChecked(),
                    route_by=self.route_by.text(),
                    comment=self.comment.text(),
                )
            except PostFlowError as exc:
                self.error.setText(f"Not saved: {exc.message}")
                return
            self.error.setText("")
            self.reading.setText("Saved. " + self.reading.text())

        self._bridge.run(run)
