"""The dark theme: every icon renders and recolours, the palette is dark, the style sheet loads.

Also writes two pictures to look at: ``artifacts/icons.png`` (every icon, several sizes) and
``artifacts/theme-demo.png`` (a window with one of each styled widget).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QStatusBar,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.paths import resources_dir
from studio.ui import theme

ICON_FILES = sorted((resources_dir() / "icons").glob("*.svg"))
REQUIRED = [
    "generate", "stop", "cancel-all", "remove", "zoom-in", "zoom-out", "fit", "actual-size", "open", "save",
    "save-as", "dice", "reuse", "image", "folder", "refresh", "settings", "queue", "clock", "check", "alert",
    "cpu", "model", "copy", "to-canvas", "info", "swap", "app",
]


def _opaque_pixels(image: QImage, min_alpha: int = 200) -> list[QColor]:
    return [image.pixelColor(x, y) for y in range(image.height()) for x in range(image.width())
            if image.pixelColor(x, y).alpha() > min_alpha]


def test_every_required_icon_exists() -> None:
    names = theme.icon_names()
    assert [n for n in REQUIRED if n not in names] == []


@pytest.mark.parametrize("path", ICON_FILES, ids=[p.stem for p in ICON_FILES])
def test_icon_file_renders(qapp: QApplication, path: Path) -> None:
    assert theme.ICON_COLOR in path.read_text(encoding="utf-8")
    ico = theme.icon(path.stem)
    assert not ico.isNull()
    for size in (16, 24, 48):
        image = ico.pixmap(size, size).toImage()
        assert image.width() == size
        assert _opaque_pixels(image, 100), f"{path.stem} at {size}px is blank"
    disabled = ico.pixmap(QSize(24, 24), QIcon.Mode.Disabled).toImage()
    assert _opaque_pixels(disabled)


def test_icon_is_crisp_on_high_dpi(qapp: QApplication) -> None:
    pixmap = theme.icon("settings").pixmap(QSize(24, 24), 2.0)
    assert pixmap.width() == 48 and pixmap.devicePixelRatio() == 2.0


def test_recolour_changes_pixels(qapp: QApplication) -> None:
    plain = _opaque_pixels(theme.icon("stop").pixmap(48, 48).toImage())
    red = _opaque_pixels(theme.icon("stop", "#ff0000").pixmap(48, 48).toImage())
    assert plain and red
    assert all(abs(c.red() - 0xd6) < 8 and abs(c.blue() - 0xe3) < 8 for c in plain)
    assert all(c.red() > 240 and c.green() < 16 and c.blue() < 16 for c in red)


def test_disabled_mode_is_dimmed(qapp: QApplication) -> None:
    ico = theme.icon("stop")
    normal = _opaque_pixels(ico.pixmap(QSize(48, 48), QIcon.Mode.Normal).toImage())
    disabled = _opaque_pixels(ico.pixmap(QSize(48, 48), QIcon.Mode.Disabled).toImage())
    assert max(c.lightness() for c in disabled) < min(c.lightness() for c in normal)


def test_icons_are_cached(qapp: QApplication) -> None:
    assert theme.icon("dice").cacheKey() == theme.icon("dice").cacheKey()
    assert theme.icon("dice").cacheKey() != theme.icon("dice", theme.ACCENT).cacheKey()


@pytest.mark.parametrize("name", ["no-such-icon", "../style", ""])
def test_unknown_icon_raises(qapp: QApplication, name: str) -> None:
    with pytest.raises(KeyError, match="no icon named"):
        theme.icon(name)


def test_bad_colour_raises(qapp: QApplication) -> None:
    with pytest.raises(ValueError):
        theme.icon("stop", "not-a-colour")


def test_style_sheet_tokens_all_resolve() -> None:
    sheet = theme.style_sheet()
    assert "QPushButton[primary=\"true\"]" in sheet and theme.ACCENT in sheet
    assert "@" not in sheet
    for url in sheet.split("url(")[1:]:
        assert Path(url.split(")")[0].strip("\"'")).is_file()


def test_apply_dark_theme(qapp: QApplication) -> None:
    old_sheet, old_palette, old_style = qapp.styleSheet(), qapp.palette(), qapp.style().name()
    try:
        theme.apply_dark_theme(qapp)
        assert qapp.palette().window().color().lightness() < 60
        assert qapp.palette().text().color().lightness() > 200
        assert qapp.palette().highlight().color() == QColor(theme.ACCENT)
        assert qapp.styleSheet().strip()
        qapp.setStyleSheet("")  # under a style sheet, style() is Qt's style-sheet wrapper
        style = qapp.style()
        assert isinstance(style, theme.StudioStyle)
        assert style.baseStyle().name().lower() == "fusion"
    finally:
        qapp.setStyleSheet(old_sheet)
        qapp.setPalette(old_palette)
        if old_style:
            qapp.setStyle(old_style)


# ---------------------------------------------------------------------------- pictures to look at


def test_icon_contact_sheet(qapp: QApplication, artifacts_dir: Path) -> None:
    names = theme.icon_names()
    cols, cw, ch = 9, 120, 96
    sheet = QPixmap(cols * cw, -(-len(names) // cols) * ch)
    sheet.fill(QColor(theme.WINDOW))
    painter = QPainter(sheet)
    font = QFont()
    font.setPixelSize(11)
    painter.setFont(font)
    for i, name in enumerate(names):
        x, y = (i % cols) * cw, (i // cols) * ch
        ico = theme.icon(name)
        painter.drawPixmap(x + 10, y + 10, ico.pixmap(48, 48))
        painter.drawPixmap(x + 66, y + 10, ico.pixmap(24, 24))
        painter.drawPixmap(x + 94, y + 14, ico.pixmap(16, 16))
        painter.drawPixmap(x + 66, y + 38, theme.icon(name, theme.ACCENT).pixmap(24, 24))
        painter.drawPixmap(x + 94, y + 42, ico.pixmap(QSize(16, 16), QIcon.Mode.Disabled))
        painter.setPen(QColor(theme.TEXT_DIM))
        painter.drawText(QRect(x, y + 66, cw, 20), Qt.AlignmentFlag.AlignCenter, name)
    painter.end()
    assert sheet.save(str(artifacts_dir / "icons.png"))


def build_demo_window() -> QMainWindow:
    """A window with one of each styled widget, to look at the theme."""
    win = QMainWindow()
    win.setWindowTitle("Studio theme demo")
    win.setWindowIcon(theme.icon("app"))
    menu = win.menuBar()
    for title in ("File", "Edit", "View", "Settings", "Help"):
        menu.addMenu(title)

    toolbar = QToolBar("Main")
    toolbar.setMovable(False)
    for name in ("open", "save", "save-as", None, "generate", "stop", "cancel-all", None,
                 "zoom-out", "zoom-in", "fit", "actual-size"):
        if name is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(theme.icon(name), name)
    toolbar.actions()[-1].setEnabled(False)
    toolbar.actions()[-2].setCheckable(True)
    toolbar.actions()[-2].setChecked(True)
    win.addToolBar(toolbar)

    # left dock: the prompt panel
    panel = QWidget()
    form = QVBoxLayout(panel)
    form.setContentsMargins(12, 8, 12, 12)
    form.setSpacing(6)
    form.addWidget(theme.section_label("Model"))
    row = QHBoxLayout()
    combo = QComboBox()
    combo.addItem(theme.icon("model"), "stable-diffusion-v1-5")
    row.addWidget(combo, 1)
    for name in ("folder", "refresh"):
        b = QToolButton()
        b.setIcon(theme.icon(name))
        b.setAutoRaise(True)
        row.addWidget(b)
    form.addLayout(row)
    hint = QLabel("3 models in ~/Studio/models")
    hint.setObjectName("hintLabel")
    form.addWidget(hint)
    form.addWidget(theme.section_label("Prompt"))
    prompt = QPlainTextEdit("a lighthouse on a cliff at dusk, volumetric light, oil painting")
    prompt.setFixedHeight(70)
    form.addWidget(prompt)
    negative = QLineEdit()
    negative.setPlaceholderText("Negative prompt")
    form.addWidget(negative)
    form.addWidget(theme.section_label("Settings"))
    grid = QFormLayout()
    grid.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    grid.setHorizontalSpacing(8)
    grid.setVerticalSpacing(6)
    steps = QSpinBox()
    steps.setRange(1, 150)
    steps.setValue(30)
    cfg = QDoubleSpinBox()
    cfg.setValue(7.5)
    seed_row = QHBoxLayout()
    seed = QLineEdit("1234567890")
    seed_row.addWidget(seed, 1)
    for name in ("dice", "reuse"):
        b = QToolButton()
        b.setIcon(theme.icon(name))
        seed_row.addWidget(b)
    size_row = QHBoxLayout()
    width, height = QSpinBox(), QSpinBox()
    for s in (width, height):
        s.setRange(64, 2048)
        s.setValue(512)
    swap = QToolButton()
    swap.setIcon(theme.icon("swap"))
    size_row.addWidget(width)
    size_row.addWidget(swap)
    size_row.addWidget(height)
    grid.addRow("Steps", steps)
    grid.addRow("Guidance", cfg)
    grid.addRow("Seed", seed_row)
    grid.addRow("Size", size_row)
    form.addLayout(grid)
    strength = QHBoxLayout()
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setValue(65)
    strength.addWidget(QLabel("Strength"))
    strength.addWidget(slider, 1)
    form.addLayout(strength)
    group = QGroupBox("Advanced")
    g = QVBoxLayout(group)
    g.addWidget(QCheckBox("Use fp16 weights"))
    checked = QCheckBox("Save images automatically")
    checked.setChecked(True)
    g.addWidget(checked)
    radio = QRadioButton("Tiled VAE")
    radio.setChecked(True)
    g.addWidget(radio)
    off = QCheckBox("Attention slicing (disabled)")
    off.setEnabled(False)
    g.addWidget(off)
    form.addWidget(group)
    form.addStretch(1)
    err = QLabel("Out of memory: try a smaller size.")
    err.setObjectName("errorLabel")
    form.addWidget(err)
    generate = QPushButton("  Generate")
    generate.setIcon(theme.icon("generate", "#ffffff"))
    generate.setProperty("primary", True)
    generate.setMinimumHeight(40)
    form.addWidget(generate)
    dock = QDockWidget("Prompt", win)
    dock.setWidget(panel)
    win.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    # right dock: the queue
    queue = QWidget()
    q = QVBoxLayout(queue)
    q.setContentsMargins(8, 8, 8, 8)
    lst = QListWidget()
    for icon_name, text in (("check", "lighthouse at dusk · 30 steps"), ("generate", "forest spirit · step 12/30"),
                            ("clock", "city at night · waiting"), ("clock", "portrait study · waiting")):
        lst.addItem(text)
        lst.item(lst.count() - 1).setIcon(theme.icon(icon_name))
    lst.setCurrentRow(1)
    q.addWidget(lst)
    bar = QProgressBar()
    bar.setValue(40)
    q.addWidget(bar)
    buttons = QHBoxLayout()
    remove = QPushButton(theme.icon("remove"), "Remove")
    cancel = QPushButton(theme.icon("stop"), "Cancel")
    cancel_all = QPushButton(theme.icon("cancel-all"), "Cancel all")
    cancel_all.setProperty("danger", True)
    remove.setEnabled(False)
    for b in (remove, cancel, cancel_all):
        buttons.addWidget(b)
    q.addLayout(buttons)
    qdock = QDockWidget("Queue", win)
    qdock.setWidget(queue)
    win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, qdock)

    # centre: tabs over a "canvas"
    tabs = QTabWidget()
    tabs.setDocumentMode(True)
    canvas = QLabel()
    canvas.setAlignment(Qt.AlignmentFlag.AlignCenter)
    canvas.setPixmap(theme.icon("image", theme.TEXT_DISABLED).pixmap(96, 96))
    canvas.setStyleSheet(f"background: {theme.CANVAS};")
    tabs.addTab(canvas, theme.icon("image"), "Canvas")
    tabs.addTab(QWidget(), theme.icon("queue"), "History")
    win.setCentralWidget(tabs)

    status = QStatusBar()
    status.addWidget(QLabel("Generating…"), 1)
    mini = QProgressBar()
    mini.setValue(40)
    mini.setTextVisible(False)
    mini.setFixedWidth(160)
    status.addPermanentWidget(QLabel("Step 12/30 · 4.1 s"))
    status.addPermanentWidget(mini)
    status.addPermanentWidget(QLabel("CUDA · RTX 4090"))
    status.addPermanentWidget(QLabel("100%"))
    win.setStatusBar(status)
    win.resize(1180, 760)
    return win


def test_spin_box_text_is_indented(qapp: QApplication) -> None:
    old_sheet, old_palette = qapp.styleSheet(), qapp.palette()
    theme.apply_dark_theme(qapp)
    try:
        spin, edit = QSpinBox(), QLineEdit("12")
        for w in (spin, edit):
            w.resize(160, 30)
            w.show()
        qapp.processEvents()
        inner = spin.findChild(QLineEdit)
        left = inner.x() + inner.textMargins().left()
        assert left >= 6  # the text does not touch the frame
        assert abs(spin.sizeHint().height() - edit.sizeHint().height()) <= 1
        spin.close()
        edit.close()
    finally:
        qapp.setStyleSheet(old_sheet)
        qapp.setPalette(old_palette)


def test_theme_demo_picture(qapp: QApplication, artifacts_dir: Path) -> None:
    old_sheet, old_palette, old_style = qapp.styleSheet(), qapp.palette(), qapp.style().name()
    theme.apply_dark_theme(qapp)
    try:
        win = build_demo_window()
        win.show()
        qapp.processEvents()
        assert win.grab().save(str(artifacts_dir / "theme-demo.png"))
        win.close()
    finally:
        qapp.setStyleSheet(old_sheet)
        qapp.setPalette(old_palette)
        if old_style:
            qapp.setStyle(old_style)
