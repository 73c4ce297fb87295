"""Benchmark: how long a brush stroke segment takes to land on screen on a 4096x4096 canvas.

Each sample is one mouse-move's worth of stroke: the core mask operation, the overlay update of
its box, and the canvas repaint of what changed (Qt's own event processing, as in the app).
Run: QT_QPA_PLATFORM=offscreen python tests/benchmarks/canvas_strokes.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.core.document import Document  # noqa: E402
from studio.ui.canvas import CanvasView  # noqa: E402
from studio.ui.canvas_tools import BRUSH  # noqa: E402


def make_canvas(size: int = 4096, view: tuple[int, int] = (1600, 1000)) -> CanvasView:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
    document = Document()
    document.set_image(picture, "Open")
    canvas = CanvasView()
    canvas.set_document(document)
    canvas.resize(*view)
    canvas.show()
    QApplication.processEvents()
    canvas.set_tool(BRUSH)
    return canvas


def measure_strokes(canvas: CanvasView, zoom: float | None, brush: float, segments: int = 60,
                    step: float = 12.0) -> list[float]:
    """Milliseconds per stroke segment, from the mouse event to the repainted canvas."""
    app = QApplication.instance()
    if zoom is None:
        canvas.fit()
    else:
        canvas.set_zoom(zoom)
    size = canvas.document.size[0]
    canvas.centerOn(size / 2, size / 2)
    canvas.set_brush(size=brush, hardness=0.7)
    center = canvas.mapToScene(canvas.viewport().rect().center())
    start = QPointF(center.x() - segments * step / 2 / max(canvas.zoom(), 1), center.y())
    tool = canvas._tool
    tool.press(start, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    app.processEvents()
    times = []
    for i in range(1, segments + 1):
        point = QPointF(start.x() + i * step / max(canvas.zoom(), 1), start.y() + 20 * np.sin(i / 5))
        began = time.perf_counter()
        tool.move(point)
        app.processEvents()  # the repaint of the dirty region happens here
        times.append((time.perf_counter() - began) * 1000)
    tool.release(point)
    app.processEvents()
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered):5.1f} ms · p95 {p95:5.1f} ms · max {ordered[-1]:5.1f} ms"


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 - must exist
    canvas = make_canvas()
    print("4096x4096 picture, 1600x1000 canvas, one sample = one mouse move (~12 screen px)")
    for zoom, label in ((None, "fit"), (1.0, "100%"), (4.0, "400%")):
        for brush in (32, 128, 512):
            print(f"zoom {label:>4}  brush {brush:4d} px  {summary(measure_strokes(canvas, zoom, brush))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
