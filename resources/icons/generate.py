"""Writes the tray icon SVGs in this folder: run it after changing a shape or a colour.

    python resources/icons/generate.py

It also renders the application icon for the installers (``build.spec``): ``postflow.png``
(512 px, Linux), ``postflow.ico`` (Windows) and ``postflow.icns`` (macOS), through Qt's own
image writers, so no other imaging library is needed.

Every look has three variants: ``-light`` (dark glyph, for light panels), ``-dark`` (light
glyph, for dark panels) and ``-template`` (black on transparent: a macOS template image that
the menu bar recolours for light and dark mode). The upload progress ring is drawn over them
at run time, at the exact pixel size the tray asks for.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ARROW = "M11 2.5 L16.5 8 H13 V13 H9 V8 H5.5 Z"
TRAY = "M3.5 12.5 V18.5 H18.5 V12.5"
GLYPH = {"light": "#1f2328", "dark": "#f0f3f6", "template": "#000000"}
ACCENT = {"uploading": "#2f81f7", "paused": "#d29922", "attention": "#e5484d", "offline": "#8b949e"}


def badge(look: str, variant: str) -> str:
    mono = variant == "template"
    colour = "#000000" if mono else ACCENT.get(look, "")
    if look == "attention":
        # a disc with an exclamation mark cut out (even-odd), so the mask shows it too
        return (
            f'<path fill="{colour}" fill-rule="evenodd" d="M17 11.5 a4.5 4.5 0 1 0 0.001 0 Z '
            'M16.2 13.2 h1.6 v3.6 h-1.6 Z M16.2 17.6 h1.6 v1.4 h-1.6 Z"/>'
        )
    if look == "paused":
        return f'<rect x="13.5" y="12" width="2.4" height="8" fill="{colour}"/>' \
               f'<rect x="18" y="12" width="2.4" height="8" fill="{colour}"/>'
    if look == "offline":
        return f'<path d="M3 3 L19 19" stroke="{colour}" stroke-width="2.2" stroke-linecap="round"/>'
    return ""


def svg(look: str, variant: str) -> str:
    glyph = GLYPH[variant]
    arrow = ACCENT["uploading"] if look == "uploading" and variant != "template" else glyph
    faded = ' opacity="0.55"' if look == "offline" else ""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="22" height="22" viewBox="0 0 22 22">'
        f'<g{faded}><path d="{ARROW}" fill="{arrow}"/>'
        f'<path d="{TRAY}" fill="none" stroke="{glyph}" stroke-width="2" stroke-linejoin="round"/></g>'
        f"{badge(look, variant)}</svg>\n"
    )


def main() -> None:
    for look in ("idle", "uploading", "paused", "attention", "offline"):
        for variant in GLYPH:
            (HERE / f"tray-{look}-{variant}.svg").write_text(svg(look, variant))
    # the application icon (window, notifications): the idle glyph on a rounded square
    (HERE / "postflow.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 22 22">'
        '<rect x="0.5" y="0.5" width="21" height="21" rx="5" fill="#2f81f7"/>'
        f'<path d="{ARROW}" fill="#ffffff"/>'
        f'<path d="{TRAY}" fill="none" stroke="#ffffff" stroke-width="2" stroke-linejoin="round"/></svg>\n'
    )


def render_app_icons() -> None:
    """The SVG application icon as PNG, ICO and ICNS (Qt's imageformats plugins write them)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(HERE / "postflow.svg"))

    def image(size: int) -> QImage:
        picture = QImage(size, size, QImage.Format.Format_ARGB32)
        picture.fill(Qt.GlobalColor.transparent)
        painter = QPainter(picture)
        renderer.render(painter)
        painter.end()
        return picture

    for name, size in (("postflow.png", 512), ("postflow.ico", 256), ("postflow.icns", 512)):
        if not image(size).save(str(HERE / name)):
            raise SystemExit(f"Qt could not write {name} (its imageformats plugin is missing)")
    render_dmg_background()
    del app


def render_dmg_background() -> None:
    """The macOS disk image's window: the app on the left, Applications on the right (dmgbuild
    places their icons at 160,190 and 480,190), an arrow and one line of words between."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen

    picture = QImage(640, 400, QImage.Format.Format_ARGB32)
    picture.fill(QColor("#f6f8fa"))
    painter = QPainter(picture)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("#2f81f7"), 6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.drawLine(QPointF(250, 190), QPointF(382, 190))
    head = QPainterPath(QPointF(396, 190))
    head.lineTo(376, 176)
    head.lineTo(376, 204)
    head.closeSubpath()
    painter.fillPath(head, QColor("#2f81f7"))
    painter.setPen(QColor("#1f2328"))
    font = QFont()
    font.setPixelSize(18)
    painter.setFont(font)
    painter.drawText(QRectF(0, 300, 640, 40), Qt.AlignmentFlag.AlignCenter,
                     "Drag PostFlow to Applications, then open it from there")  # fmt: skip
    painter.end()
    target = HERE.parents[1] / "installers" / "macos" / "dmg-background.png"
    if not picture.save(str(target)):
        raise SystemExit(f"Qt could not write {target}")


if __name__ == "__main__":
    main()
    render_app_icons()
