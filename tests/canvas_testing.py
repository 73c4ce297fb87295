"""A picture on the canvas and mouse drags over it, for the canvas editing tests."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, Qt

SIZE = 256


def open_test_picture(window) -> Image.Image:  # noqa: ANN001
    """A SIZE×SIZE random picture, opened as the window's document."""
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    window.document.set_image(image, "Open test picture")
    return image


def drag(qtbot, canvas, scene_points, button=Qt.MouseButton.LeftButton):  # noqa: ANN001, ANN201
    """Press, move through and release at scene points; returns the scene points the canvas saw."""
    viewport = canvas.viewport()
    view_points = [canvas.mapFromScene(QPointF(*p)) for p in scene_points]
    qtbot.mousePress(viewport, button, pos=view_points[0])
    for point in view_points[1:]:
        qtbot.mouseMove(viewport, point)
    qtbot.mouseRelease(viewport, button, pos=view_points[-1])
    seen = [canvas.mapToScene(p) for p in view_points]
    return [(p.x(), p.y()) for p in seen]
