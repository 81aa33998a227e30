"""Tray icons rendered from the SVGs in ``resources/icons`` at every pixel size a tray asks for.

Rendering each size from vector art (rather than scaling one bitmap) keeps the 16, 22 and
44 pixel icons crisp on HiDPI panels. The upload ring is painted over at the same size, in
steps of 5 %, and icons are cached, so the tray only receives a new icon when what it shows
changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap
from PySide6.QtSvg import QSvgRenderer

from app.gui.resource_paths import icons_dir
from app.gui.tray_look import TrayLook

SIZES = (16, 22, 32, 44, 64)
RING_STEP = 5  # percent


def default_variant() -> str:
    """macOS: template (mask) icons the menu bar recolours; elsewhere by the colour scheme."""
    if sys.platform == "darwin":
        return "template"
    app = QGuiApplication.instance()
    if isinstance(app, QGuiApplication) and app.styleHints().colorScheme() == Qt.ColorScheme.Dark:
        return "dark"
    return "light"


class TrayIcons:
    def __init__(self, variant: str | None = None, folder: Path | None = None) -> None:
        self.variant = variant or default_variant()
        self._folder = folder or icons_dir()
        self._cache: dict[tuple[TrayLook, int | None], QIcon] = {}
        self._renderers: dict[TrayLook, QSvgRenderer] = {}

    def key(self, look: TrayLook, percent: int | None) -> tuple[TrayLook, int | None]:
        """What distinguishes two icons: the ring only shows while uploading."""
        if look is not TrayLook.UPLOADING or percent is None:
            return (look, None)
        return (look, min(100, percent // RING_STEP * RING_STEP))

    def icon(self, look: TrayLook, percent: int | None = None) -> QIcon:
        key = self.key(look, percent)
        if key not in self._cache:
            self._cache[key] = self._render(*key)
        return self._cache[key]

    def _renderer(self, look: TrayLook) -> QSvgRenderer:
        if look not in self._renderers:
            path = self._folder / f"tray-{look.value}-{self.variant}.svg"
            renderer = QSvgRenderer(str(path))
            if not renderer.isValid():
                raise FileNotFoundError(f"tray icon {path} is missing or not a valid SVG")
            self._renderers[look] = renderer
        return self._renderers[look]

    def _render(self, look: TrayLook, percent: int | None) -> QIcon:
        icon = QIcon()
        for size in SIZES:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._renderer(look).render(painter, QRectF(0, 0, size, size))
            if percent is not None:
                self._ring(painter, size, percent)
            painter.end()
            icon.addPixmap(pixmap)
        icon.setIsMask(self.variant == "template")
        return icon

    def _ring(self, painter: QPainter, size: int, percent: int) -> None:
        """A progress ring in the lower right corner, over the tray's base."""
        width = max(1.5, size / 11)
        box = QRectF(size * 0.56, size * 0.56, size * 0.42, size * 0.42).adjusted(
            width / 2, width / 2, -width / 2, -width / 2
        )
        mono = self.variant == "template"
        track = QColor(0, 0, 0, 90) if mono else QColor(128, 128, 128, 110)
        fill = QColor(0, 0, 0) if mono else QColor("#2f81f7")
        painter.setPen(QPen(track, width))
        painter.drawEllipse(box)
        pen = QPen(fill, width)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(pen)
        painter.drawArc(box, 90 * 16, -int(360 * 16 * percent / 100))


def app_icon() -> QIcon:
    return QIcon(str(icons_dir() / "postflow.svg"))
