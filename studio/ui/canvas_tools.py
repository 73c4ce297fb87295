"""Canvas tools: each turns pointer events (in image pixels) into core mask operations.

Tools never touch pixels themselves; they call ``studio.core.mask`` through the Document, which
records the undo step. Right button (brush) or Alt (shapes) subtracts from the mask.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF

from studio.core.images import MAX_PIXELS
from studio.core.inpaint import MAX_EXTEND
from studio.core.mask import fill_polygon, fill_rect, stroke_segment

if TYPE_CHECKING:
    from studio.ui.canvas import CanvasView

HAND, BRUSH, ERASER, RECT, LASSO, FRAME = "hand", "brush", "eraser", "rect", "lasso", "frame"
TOOL_NAMES = (HAND, BRUSH, ERASER, RECT, LASSO, FRAME)
FRAME_STEP = 8  # extensions are whole multiples of 8 pixels, like every size the models take


def _outline_pens() -> tuple[QPen, QPen]:
    """A dark and a light cosmetic line: visible on any picture, 1 px at any zoom."""
    dark = QPen(QColor(0, 0, 0, 200), 0)
    light = QPen(QColor(255, 255, 255, 230), 0, Qt.PenStyle.DashLine)
    return dark, light


class Tool:
    name = ""
    cursor = Qt.CursorShape.ArrowCursor

    def __init__(self, view: CanvasView) -> None:
        self.view = view

    @property
    def active(self) -> bool:
        return False

    def press(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> bool:
        return False

    def move(self, pos: QPointF) -> None:
        pass

    def release(self, pos: QPointF) -> None:
        pass

    def draw(self, painter: QPainter) -> None:
        """Temporary outlines, in image coordinates (the view's foreground)."""

    def outline_rect(self) -> QRectF:
        return QRectF()


class BrushTool(Tool):
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: CanvasView, erase: bool) -> None:
        super().__init__(view)
        self.name = ERASER if erase else BRUSH
        self._erase = erase
        self._last: tuple[float, float] | None = None
        self._erasing = erase

    @property
    def active(self) -> bool:
        return self._last is not None

    def press(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> bool:
        doc = self.view.document
        if doc is None or doc.image is None or button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return False
        self._erasing = self._erase != (button == Qt.MouseButton.RightButton)
        doc.begin_stroke("Erase mask" if self._erasing else "Paint mask")
        self._last = (pos.x(), pos.y())
        self._segment(self._last)
        return True

    def move(self, pos: QPointF) -> None:
        if self._last is not None:
            self._segment((pos.x(), pos.y()))

    def release(self, pos: QPointF) -> None:
        if self._last is not None:
            self._last = None
            self.view.document.end_stroke()

    def _segment(self, point: tuple[float, float]) -> None:
        start, self._last = self._last, point
        self.view.document.stroke(partial(stroke_segment, p0=start, p1=point, size=self.view.brush_size,
                                          hardness=self.view.brush_hardness, erase=self._erasing))


class RectTool(Tool):
    name = RECT
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self._start: QPointF | None = None
        self._end: QPointF | None = None
        self._erase = False

    @property
    def active(self) -> bool:
        return self._start is not None

    def press(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> bool:
        if self.view.document is None or self.view.document.image is None or button != Qt.MouseButton.LeftButton:
            return False
        self._start = self._end = pos
        self._erase = bool(modifiers & Qt.KeyboardModifier.AltModifier)
        return True

    def move(self, pos: QPointF) -> None:
        if self._start is not None:
            self._end = pos

    def release(self, pos: QPointF) -> None:
        if self._start is None:
            return
        rect = QRectF(self._start, pos).normalized()
        self._start = self._end = None
        box = (round(rect.left()), round(rect.top()), round(rect.right()), round(rect.bottom()))
        self.view.fill_mask("Erase rectangle" if self._erase else "Fill rectangle",
                            partial(fill_rect, box=box, erase=self._erase), box)

    def outline_rect(self) -> QRectF:
        if self._start is None or self._end is None:
            return QRectF()
        return QRectF(self._start, self._end).normalized()

    def draw(self, painter: QPainter) -> None:
        rect = self.outline_rect()
        if rect.isNull():
            return
        for pen in _outline_pens():
            painter.setPen(pen)
            painter.drawRect(rect)


class LassoTool(Tool):
    name = LASSO
    cursor = Qt.CursorShape.CrossCursor

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self._points: list[QPointF] = []
        self._erase = False

    @property
    def active(self) -> bool:
        return bool(self._points)

    def press(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> bool:
        if self.view.document is None or self.view.document.image is None or button != Qt.MouseButton.LeftButton:
            return False
        self._points = [pos]
        self._erase = bool(modifiers & Qt.KeyboardModifier.AltModifier)
        return True

    def move(self, pos: QPointF) -> None:
        if self._points and (pos - self._points[-1]).manhattanLength() >= 1:
            self._points.append(pos)

    def release(self, pos: QPointF) -> None:
        outline = QPolygonF(self._points).boundingRect()
        points, self._points = [(p.x(), p.y()) for p in self._points], []
        if len(points) >= 3:
            box = (int(outline.left()), int(outline.top()), int(outline.right()) + 1, int(outline.bottom()) + 1)
            self.view.fill_mask("Erase lasso" if self._erase else "Fill lasso",
                                partial(fill_polygon, points=points, erase=self._erase), box)

    def outline_rect(self) -> QRectF:
        return QPolygonF(self._points).boundingRect() if self._points else QRectF()

    def draw(self, painter: QPainter) -> None:
        if len(self._points) < 2:
            return
        polygon = QPolygonF(self._points)
        for pen in _outline_pens():
            painter.setPen(pen)
            painter.drawPolygon(polygon)


class FrameTool(RectTool):
    """Outpainting by hand: drag a frame past the picture's edges; the picture grows to hold it."""

    name = FRAME

    def press(self, pos: QPointF, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> bool:
        return super().press(pos, button, Qt.KeyboardModifier.NoModifier)

    def extension(self, rect: QRectF) -> tuple[int, int, int, int]:
        """Pixels to add (left, top, right, bottom) so the picture covers rect, rounded up to 8, within Extend
        Canvas's limit per side and Studio's on pixels (a long drag at low zoom asked for a 200,000² canvas)."""
        width, height = self.view.document.size

        def up(v: float) -> int:
            return min(MAX_EXTEND, int(-(-max(0.0, min(v, MAX_EXTEND)) // FRAME_STEP) * FRAME_STEP))

        amounts = [up(-rect.left()), up(-rect.top()), up(rect.right() - width), up(rect.bottom() - height)]
        while (width + amounts[0] + amounts[2]) * (height + amounts[1] + amounts[3]) > MAX_PIXELS and any(amounts):
            largest = max(range(4), key=amounts.__getitem__)
            amounts[largest] = max(0, amounts[largest] - FRAME_STEP)
        left, top, right, bottom = amounts
        return left, top, right, bottom

    def release(self, pos: QPointF) -> None:
        if self._start is None:
            return
        rect = QRectF(self._start, pos).normalized()
        self._start = self._end = None
        amounts = self.extension(rect)
        if any(amounts):
            self.view.frame_requested.emit(*amounts)

    def draw(self, painter: QPainter) -> None:
        rect = self.outline_rect()
        if rect.isNull():
            return
        left, top, right, bottom = self.extension(rect)
        width, height = self.view.document.size
        for pen in _outline_pens():
            painter.setPen(pen)
            painter.drawRect(QRectF(-left, -top, width + left + right, height + top + bottom))


def make_tool(name: str, view: CanvasView) -> Tool:
    if name == BRUSH:
        return BrushTool(view, erase=False)
    if name == ERASER:
        return BrushTool(view, erase=True)
    if name == RECT:
        return RectTool(view)
    if name == LASSO:
        return LassoTool(view)
    if name == FRAME:
        return FrameTool(view)
    tool = Tool(view)
    tool.name = HAND
    tool.cursor = Qt.CursorShape.OpenHandCursor
    return tool
