"""The tool bar above the canvas: tools, brush size and hardness, and the mask's look and edits."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import QColorDialog, QLabel, QSlider, QSpinBox, QToolBar, QToolButton, QWidget

from studio.ui.canvas import MAX_BRUSH, MIN_BRUSH, CanvasView
from studio.ui.canvas_tools import BRUSH, ERASER, FRAME, HAND, LASSO, RECT
from studio.ui.theme import icon

TOOLS = [  # name, icon, label, shortcut
    (HAND, "hand", "Hand: drag to pan", "H"),
    (BRUSH, "brush", "Mask brush: paint the area to regenerate (right button erases)", "B"),
    (ERASER, "eraser", "Mask eraser", "E"),
    (RECT, "rect-select", "Rectangle: fill a box of mask (Alt subtracts)", "R"),
    (LASSO, "lasso", "Lasso: fill a drawn outline of mask (Alt subtracts)", "L"),
    (FRAME, "extend", "Outpaint frame: drag past the picture's edges to extend it and fill the new area", "F"),
]


def _slider(minimum: int, maximum: int, width: int, tip: str) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(minimum, maximum)
    slider.setFixedWidth(width)
    slider.setToolTip(tip)
    return slider


class MaskToolBar(QToolBar):
    invert_requested = Signal()
    clear_requested = Signal()
    grow_requested = Signal(int)  # pixels; negative shrinks

    def __init__(self, canvas: CanvasView, parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("toolOptions")
        self.setMovable(False)
        self.canvas = canvas
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name, icon_name, tip, key in TOOLS:
            action = QAction(icon(icon_name), tip.split(":")[0], self)
            action.setToolTip(f"{tip} ({key})")
            action.setShortcut(QKeySequence(key))
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, n=name: canvas.set_tool(n))
            group.addAction(action)
            self.addAction(action)
            self.tool_actions[name] = action
        self.tool_actions[canvas.tool].setChecked(True)
        self.addSeparator()

        self.addWidget(QLabel(" Size "))
        self.size_slider = _slider(int(MIN_BRUSH), 512, 110, "Brush size in picture pixels ([ and ] change it)")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(int(MIN_BRUSH), int(MAX_BRUSH))
        self.size_spin.setSuffix(" px")
        self.size_spin.setMaximumWidth(84)  # "2048 px": it would take the room the tools after it need
        self.size_spin.setToolTip(self.size_slider.toolTip())
        self.addWidget(self.size_slider)
        self.addWidget(self.size_spin)
        self.addWidget(QLabel("  Hardness "))
        self.hardness_slider = _slider(0, 100, 80, "Brush edge: 100 % is hard, lower is softer")
        self.addWidget(self.hardness_slider)
        self.addSeparator()

        self.show_mask_action = QAction(icon("eye"), "&Show Mask", self)
        self.show_mask_action.setCheckable(True)
        self.show_mask_action.setChecked(True)
        self.show_mask_action.setShortcut(QKeySequence("M"))
        self.show_mask_action.setToolTip("Show or hide the mask (M). A hidden mask is not used for inpainting.")
        self.addAction(self.show_mask_action)
        self.color_button = QToolButton()
        self.color_button.setToolTip("Mask colour")
        self.color_button.setAutoRaise(True)
        self.addWidget(self.color_button)
        self.opacity_slider = _slider(10, 100, 70, "Mask opacity")
        self.addWidget(self.opacity_slider)
        self.invert_action = self.addAction(icon("invert"), "Invert Mask")
        self.invert_action.setToolTip("Invert the mask (Ctrl+I)")
        self.clear_action = self.addAction(icon("mask-clear"), "Clear Mask")
        self.clear_action.setToolTip("Clear the mask (Ctrl+Shift+A)")
        self.grow_spin = QSpinBox()
        self.grow_spin.setRange(1, 256)
        self.grow_spin.setValue(8)
        self.grow_spin.setSuffix(" px")
        self.grow_spin.setMaximumWidth(76)
        self.grow_spin.setToolTip("How far Grow and Shrink move the mask edge")
        self.grow_action = self.addAction(icon("grow"), "&Grow Mask")
        self.shrink_action = self.addAction(icon("shrink"), "S&hrink Mask")
        self.addWidget(self.grow_spin)

        self._wire()
        self.sync_from_canvas()

    def _wire(self) -> None:
        self.size_slider.valueChanged.connect(lambda v: self.canvas.set_brush(size=v))
        self.size_spin.valueChanged.connect(lambda v: self.canvas.set_brush(size=v))
        self.hardness_slider.valueChanged.connect(lambda v: self.canvas.set_brush(hardness=v / 100))
        self.canvas.brush_changed.connect(self.sync_from_canvas)
        self.canvas.tool_changed.connect(lambda name: self.tool_actions[name].setChecked(True))
        self.show_mask_action.toggled.connect(self._set_mask_visible)
        self.opacity_slider.valueChanged.connect(
            lambda v: self.canvas.overlay.set_style(self.canvas.overlay.color, v / 100))
        self.color_button.clicked.connect(self._choose_color)
        self.invert_action.triggered.connect(self.invert_requested)
        self.clear_action.triggered.connect(self.clear_requested)
        self.grow_action.triggered.connect(lambda: self.grow_requested.emit(self.grow_spin.value()))
        self.shrink_action.triggered.connect(lambda: self.grow_requested.emit(-self.grow_spin.value()))

    def sync_from_canvas(self) -> None:
        for widget, value in ((self.size_slider, self.canvas.brush_size), (self.size_spin, self.canvas.brush_size),
                              (self.hardness_slider, self.canvas.brush_hardness * 100),
                              (self.opacity_slider, self.canvas.overlay.overlay_opacity * 100)):
            widget.blockSignals(True)
            widget.setValue(round(value))
            widget.blockSignals(False)
        swatch = QPixmap(16, 16)
        swatch.fill(self.canvas.overlay.color)
        self.color_button.setIcon(QIcon(swatch))

    def _set_mask_visible(self, visible: bool) -> None:
        self.canvas.set_mask_visible(visible)
        self.show_mask_action.setIcon(icon("eye" if visible else "eye-off"))

    def _choose_color(self) -> None:
        color = QColorDialog.getColor(self.canvas.overlay.color, self, "Mask colour")
        if color.isValid():
            self.set_mask_color(color)

    def set_mask_color(self, color: QColor) -> None:
        self.canvas.overlay.set_style(color, self.canvas.overlay.overlay_opacity)
        self.sync_from_canvas()
