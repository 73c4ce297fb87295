"""What the canvas paints over the scene: the brush outline under the pointer, and the hint on an empty canvas."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPen

EMPTY_CANVAS_HINT = "Write a prompt and press Generate (Ctrl+Enter)\nor open or drop a picture here"
# While the model picker lists nothing to generate with (a first run), Generate cannot work yet: say the first step.
NO_MODEL_CANVAS_HINT = ("Add a model first: open the Model Library (Ctrl+Shift+M)\nto import a .safetensors file or "
                        "download a starter model;\nor open or drop a picture here")


def draw_brush_outline(painter: QPainter, centre: QPointF, size: float, zoom: float) -> None:
    """The brush outline at its true ``size`` in image coordinates (so it zooms too): a dark and a light ring,
    one screen pixel apart, visible on any picture."""
    radius = size / 2
    for color in (QColor(0, 0, 0, 190), QColor(255, 255, 255, 230)):
        painter.setPen(QPen(color, 0))
        painter.drawEllipse(centre, radius, radius)
        radius += 1 / max(zoom, 1e-3)


def draw_empty_canvas_hint(painter: QPainter, viewport: QRect, hint: str = EMPTY_CANVAS_HINT) -> None:
    """Say what to do first, centred in the ``viewport`` (in screen pixels, whatever the view's zoom)."""
    painter.save()
    painter.resetTransform()
    painter.setPen(QColor("#7d8290"))
    font = painter.font()
    font.setPointSizeF(font.pointSizeF() * 1.15)
    painter.setFont(font)
    painter.drawText(viewport, Qt.AlignmentFlag.AlignCenter, hint)
    painter.restore()
