"""Studio's look: the dark Fusion palette, the style sheet and recolourable SVG line icons.

Icons live in ``resources/icons/<name>.svg`` and are drawn with the stroke colour ``#d6dae3``;
:func:`icon` swaps that colour for another on request. ``resources/style.qss`` refers to the
colours below as ``@name`` tokens (``@accent``, ``@border`` …) and to the icon folder as ``@icons``;
:func:`style_sheet` fills them in.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QLabel,
    QLineEdit,
    QProxyStyle,
    QStyleFactory,
    QWidget,
)

from studio.core.paths import resources_dir

# --- colours ---------------------------------------------------------------------------------

ACCENT = "#7c5cff"
ACCENT_HOVER = "#8e72ff"
ACCENT_PRESSED = "#6a4aeb"
WINDOW = "#1e1f24"          # panels, docks, dialogs
BASE = "#17181c"            # inputs, lists
CANVAS = "#131418"          # behind the picture on the canvas
RAISED = "#2a2c33"          # buttons
HOVER = "#33353d"
PRESSED = "#24252b"
BORDER = "#2e3037"          # hairlines between areas
BORDER_STRONG = "#3b3e47"   # outlines of controls
TEXT = "#e6e8ee"
TEXT_DIM = "#9ba1ae"
TEXT_DISABLED = "#6b6f7a"
ICON_COLOR = "#d6dae3"      # the stroke colour every icon file is drawn in
DANGER = "#c4555b"
SUCCESS = "#4cb782"
WARNING = "#e3a549"

COLORS: dict[str, str] = {
    "accent": ACCENT,
    "accent_hover": ACCENT_HOVER,
    "accent_pressed": ACCENT_PRESSED,
    "accent_soft": "#352c5c",      # selected rows, checked tool buttons
    "accent_soft_hover": "#3f3470",
    "accent_muted": "#2b2647",     # selection in an unfocused view
    "accent_disabled": "#3a345a",
    "window": WINDOW,
    "base": BASE,
    "canvas": CANVAS,
    "panel": "#23252b",
    "raised": RAISED,
    "hover": HOVER,
    "pressed": PRESSED,
    "status": "#18191d",
    "border": BORDER,
    "border_strong": BORDER_STRONG,
    "border_hover": "#4a4e59",
    "scroll": "#3a3d46",
    "scroll_hover": "#50545f",
    "text": TEXT,
    "text_dim": TEXT_DIM,
    "text_faint": "#7d8290",
    "text_disabled": TEXT_DISABLED,
    "white": "#ffffff",
    "danger": DANGER,
    "danger_hover": "#d3646a",
    "danger_pressed": "#a9464c",
    "danger_soft": "#3a2428",
    "danger_border": "#6b3a3f",
    "danger_text": "#f1a9ad",
    "success": SUCCESS,
    "warning": WARNING,
}

# --- palette and style sheet -----------------------------------------------------------------


def dark_palette() -> QPalette:
    """The dark palette :func:`apply_dark_theme` installs (Fusion draws from it)."""
    pal = QPalette()
    role = QPalette.ColorRole
    colors = {
        role.Window: WINDOW, role.WindowText: TEXT, role.Base: BASE, role.AlternateBase: "#1b1c21",
        role.ToolTipBase: "#2a2c33", role.ToolTipText: TEXT, role.PlaceholderText: "#6f7480",
        role.Text: TEXT, role.Button: RAISED, role.ButtonText: TEXT, role.BrightText: "#ffffff",
        role.Light: "#3a3c44", role.Midlight: "#30323a", role.Mid: "#26282e", role.Dark: "#141518",
        role.Shadow: "#0b0b0d", role.Highlight: ACCENT, role.HighlightedText: "#ffffff",
        role.Link: "#a592ff", role.LinkVisited: "#8a78d6", role.Accent: ACCENT,
    }
    for r, c in colors.items():
        pal.setColor(r, QColor(c))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText, role.HighlightedText, role.PlaceholderText):
        pal.setColor(disabled, r, QColor(TEXT_DISABLED))
    pal.setColor(disabled, role.Button, QColor(COLORS["panel"]))
    pal.setColor(disabled, role.Base, QColor(WINDOW))
    pal.setColor(disabled, role.Highlight, QColor("#3a3c44"))
    pal.setColor(QPalette.ColorGroup.Inactive, role.Highlight, QColor(COLORS["accent_soft"]))
    pal.setColor(QPalette.ColorGroup.Inactive, role.HighlightedText, QColor(TEXT))
    return pal


_TOKEN = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def style_sheet() -> str:
    """``resources/style.qss`` with its ``@colour`` and ``@icons`` tokens filled in."""
    text = (resources_dir() / "style.qss").read_text(encoding="utf-8")
    text = _COMMENT.sub("", text)
    values = dict(COLORS, icons=_icons_dir().as_posix())

    def sub(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise ValueError(f"style.qss uses an unknown token @{match.group(1)}") from None

    return _TOKEN.sub(sub, text)


_SPIN_TEXT_INDENT = 8  # matches the left padding of QLineEdit in style.qss


class _SpinBoxTextIndent(QObject):
    """Indents the text of a style-sheeted spin box whose edit field Qt put flush left.

    Qt 6.12's style-sheet style ignores the left border and padding of ``QAbstractSpinBox`` when
    it places the inner line edit (the text then touches the frame). Where Qt does place it
    correctly, the edit sits away from the edge and nothing is changed.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() in (QEvent.Type.Move, QEvent.Type.Resize) and isinstance(watched, QLineEdit):
            left = _SPIN_TEXT_INDENT if watched.x() <= 1 else 0
            if watched.textMargins().left() != left:
                watched.setTextMargins(left, 0, 0, 0)
        return False


class StudioStyle(QProxyStyle):
    """Fusion, plus the small fixes the style sheet cannot express."""

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))
        self._spin_fix = _SpinBoxTextIndent(self)

    def polish(self, target):  # noqa: ANN001, ANN201 (overloaded: QWidget, QApplication or QPalette)
        if isinstance(target, QAbstractSpinBox):
            edit = target.findChild(QLineEdit, "qt_spinbox_lineedit")
            if edit is not None:
                edit.installEventFilter(self._spin_fix)
        elif isinstance(target, QAbstractItemView):
            # Rows laid out before the view was polished keep the unstyled (padding-less) height and
            # overlap; lay them out again once the style sheet's item padding applies.
            QTimer.singleShot(0, target, target.doItemsLayout)
        return super().polish(target)


_style: StudioStyle | None = None


def apply_dark_theme(app: QApplication) -> None:
    """Give ``app`` Studio's look: Fusion style, the dark palette and the style sheet."""
    global _style
    _style = StudioStyle()  # the app owns it; the module keeps the Python side alive too
    app.setStyle(_style)
    app.setPalette(dark_palette())
    app.setStyleSheet(style_sheet())


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after changing a dynamic property the QSS selects on (``primary``…)."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()


def error_label(parent: QWidget | None = None) -> QLabel:
    """A hidden, word-wrapped line for a refusal, said where the person is looking (``QLabel#errorLabel``);
    plain text, so a file name with markup shows as written."""
    label = QLabel(parent)
    label.setObjectName("errorLabel")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.hide()
    return label


def section_label(text: str, parent: QWidget | None = None) -> QLabel:
    """A small, upper-case, letter-spaced panel heading (``QLabel#sectionLabel``)."""
    label = QLabel(text.upper(), parent)
    label.setObjectName("sectionLabel")
    font = label.font()
    font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
    label.setFont(font)
    return label


# --- icons -----------------------------------------------------------------------------------

_ICON_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_icon_cache: dict[tuple[str, str | None], QIcon] = {}


class UnknownIconError(KeyError):
    """There is no ``resources/icons/<name>.svg``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown icon"


def _icons_dir() -> Path:
    return resources_dir() / "icons"


def icon_names() -> list[str]:
    """The names :func:`icon` accepts, sorted."""
    return sorted(p.stem for p in _icons_dir().glob("*.svg"))


def icon(name: str, color: str | None = None) -> QIcon:
    """The line icon ``name``, drawn in ``color`` (default: the light grey it was drawn in).

    Disabled buttons get a dimmed rendering; each size is drawn on first use. Results are cached.
    Raises :class:`UnknownIconError` (a ``KeyError``) for a name with no SVG file.
    """
    key = (name, color)
    cached = _icon_cache.get(key)
    if cached is not None:
        return cached
    path = _icons_dir() / f"{name}.svg"
    if not _ICON_NAME.fullmatch(name) or not path.is_file():
        raise UnknownIconError(f"no icon named {name!r} (looked for {path}); known: {', '.join(icon_names())}")
    if color is not None and not QColor(color).isValid():
        raise ValueError(f"icon colour {color!r} is not a colour Qt understands")
    if QGuiApplication.instance() is None:
        raise RuntimeError("icon() needs a QApplication to exist first")
    svg = path.read_text(encoding="utf-8")
    normal = QSvgRenderer(QByteArray(svg.replace(ICON_COLOR, color or ICON_COLOR).encode()))
    if not normal.isValid():
        raise ValueError(f"icon {name!r} is not a valid SVG file: {path}")
    dimmed = QSvgRenderer(QByteArray(svg.replace(ICON_COLOR, TEXT_DISABLED).encode()))
    engine = _SvgIconEngine(normal, dimmed)
    _engines.append(engine)  # QIcon does not keep the Python side of its engine alive
    result = QIcon(engine)
    _icon_cache[key] = result
    return result


_engines: list[QIconEngine] = []


class _SvgIconEngine(QIconEngine):
    """Renders an icon at the size (and screen scale) it is asked for, when it is asked for, once.

    Pre-rendering every size of every icon cost ~90 ms of start-up; most sizes are never shown.
    """

    def __init__(self, normal: QSvgRenderer, dimmed: QSvgRenderer) -> None:
        super().__init__()
        self._renderers = {QIcon.Mode.Disabled: dimmed}
        self._normal = normal
        self._pixmaps: dict[tuple[int, int, bool], QPixmap] = {}

    def _render(self, width: int, height: int, mode: QIcon.Mode) -> QPixmap:
        disabled = mode == QIcon.Mode.Disabled
        key = (width, height, disabled)
        if key not in self._pixmaps:
            renderer = self._renderers[QIcon.Mode.Disabled] if disabled else self._normal
            side = min(width, height)
            pixmap = QPixmap(width, height)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter, QRectF((width - side) / 2, (height - side) / 2, side, side))
            painter.end()
            self._pixmaps[key] = pixmap
        return self._pixmaps[key]

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return QPixmap(self._render(max(1, size.width()), max(1, size.height()), mode))

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:  # noqa: N802
        pixmap = QPixmap(self._render(max(1, round(size.width() * scale)), max(1, round(size.height() * scale)),
                                      mode))
        pixmap.setDevicePixelRatio(scale)
        return pixmap

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        scale = painter.device().devicePixelRatioF() if painter.device() else 1.0
        painter.drawPixmap(rect, self.scaledPixmap(rect.size(), mode, state, scale))

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:  # noqa: N802
        side = min(size.width(), size.height())
        return QSize(side, side)

    def clone(self) -> QIconEngine:
        engine = _SvgIconEngine(self._normal, self._renderers[QIcon.Mode.Disabled])
        _engines.append(engine)
        return engine


def plain_tooltip(text: str) -> str:
    """A tooltip that shows text as text: Qt would otherwise render anything that looks like HTML."""
    import html

    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"
