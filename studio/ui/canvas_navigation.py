"""Where the canvas looks: a view on a picture-sized extent over a checkerboard that zooms, fits and pans.

The view keeps the extent fitted to the window until the person zooms or pans; a fit asked for while a gesture
is under way (``busy``, or a pan) waits for it to end, so the picture never moves under the pointer mid-stroke.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QTransform
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QWidget

from studio.ui.canvas_preview import checkerboard

MIN_ZOOM, MAX_ZOOM = 0.02, 32.0
WHEEL_STEP = 1.15


class NavigableView(QGraphicsView):
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)  # owned by the view: Qt deletes both together
        self.setScene(self._scene)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setBackgroundBrush(QColor("#141519"))
        # Pan with space/middle-drag instead: scroll bars would only eat canvas room.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._backdrop = self._scene.addRect(QRectF(), Qt.PenStyle.NoPen, checkerboard())
        self._extent_w = self._extent_h = 0  # the picture's (or the coming result's) size
        self._pan_from: QPointF | None = None
        self._auto_fit = True  # until the person zooms, keep the picture fitted to the window
        self._fit_pending = False  # a fit asked for mid-stroke, done when it ends

    @property
    def busy(self) -> bool:
        """A gesture is under way that a fit must wait for (the canvas's tools say)."""
        return False

    def _set_extent(self, width: int, height: int) -> bool:
        changed = (width, height) != (self._extent_w, self._extent_h)
        self._extent_w, self._extent_h = width, height
        rect = QRectF(0, 0, width, height)
        self._backdrop.setRect(rect)
        self._backdrop.setVisible(width > 0 and height > 0)
        margin = max(width, height, 256) * 0.5
        self._scene.setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
        return changed

    # -- zoom ----------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor_under_mouse: bool = False) -> None:
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        old_anchor = self.transformationAnchor()
        if not anchor_under_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setTransform(QTransform.fromScale(factor, factor))
        self.setTransformationAnchor(old_anchor)
        self.zoom_changed.emit(factor)

    def zoom_in(self) -> None:
        self._auto_fit = False
        self.set_zoom(self.zoom() * WHEEL_STEP)

    def zoom_out(self) -> None:
        self._auto_fit = False
        self.set_zoom(self.zoom() / WHEEL_STEP)

    def actual_size(self) -> None:
        self._auto_fit = False
        self.set_zoom(1.0)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self) -> None:
        """Fit the picture to the window, and keep it fitted on resize until the person zooms."""
        self._auto_fit = True
        if self._extent_w <= 0 or self._extent_h <= 0:
            self.set_zoom(1.0)
            return
        view = self.viewport().rect().adjusted(24, 24, -24, -24)
        factor = min(view.width() / self._extent_w, view.height() / self._extent_h)
        self.set_zoom(max(MIN_ZOOM, factor))
        self.centerOn(self._extent_w / 2, self._extent_h / 2)

    def _fit_when_free(self) -> None:
        """Fit now, or when the stroke or pan under way ends: fitting mid-stroke moved the picture under the
        pointer, so the stroke jumped."""
        self._fit_pending = self.busy or self._pan_from is not None
        if not self._fit_pending:
            self.fit()

    def _fit_if_pending(self) -> None:
        pending, self._fit_pending = self._fit_pending, False
        if pending and self._auto_fit and not self.busy:
            self.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()

    # -- pan -----------------------------------------------------------------------------------
    def _pan_to(self, position: QPointF) -> None:
        """Move the view with a pan under way (begun at ``_pan_from``) to the pointer's ``position``."""
        delta = position - self._pan_from
        self._pan_from = position
        self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
        self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
        self._auto_fit = False
