"""How the canvas shapes the prompt panel's sections: a mask brings the inpainting options, a job from the canvas
has no hires fix, and the control guides' thumbnails are fitted to the size the next job will have."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QScrollArea, QSpinBox

if TYPE_CHECKING:
    from studio.plugin_host.registry import Contribution
    from studio.ui.control_box import ControlBox
    from studio.ui.generation_controls import Img2ImgBox
    from studio.ui.hires_box import HiresBox
    from studio.ui.inpaint_options import InpaintOptionsBox


class CanvasFollowing:
    """The part of ``PromptPanel`` (a QWidget) that follows the canvas picture's size and mask; the panel makes the
    sections and state declared here."""

    _mask_active: bool
    _mask: np.ndarray | None  # the canvas's mask, set with set_mask_active
    _canvas_size: tuple[int, int] | None  # the canvas picture's (None: no picture)
    _scroll: QScrollArea
    inpaint_box: InpaintOptionsBox
    img2img: Img2ImgBox
    hires_box: HiresBox
    control_box: ControlBox
    width_spin: QSpinBox
    height_spin: QSpinBox
    use_canvas_check: QCheckBox
    selected_generator: Callable[[], Contribution | None]

    def set_mask_active(self, active: bool, mask: np.ndarray | None = None) -> None:
        """A visible, non-empty mask turns Generate into inpainting (with its own options). ``mask``: the canvas's
        (edited in place by the brush), for the control guides' thumbnails to show the part a job works on."""
        self._mask = mask
        became_active = active and not self._mask_active
        self.inpaint_box.setVisible(active and self.selected_generator() is None)
        self._mask_active = active
        if became_active:  # the first stroke of a mask: show where its options are
            QTimer.singleShot(0, self, self._show_inpaint_options)
        self.img2img.set_mask_active(active)
        self._update_hires()
        self._update_control_size()

    def set_canvas_size(self, size: tuple[int, int] | None) -> None:
        """The canvas picture's size (None: no picture), which a job from the canvas starts from."""
        if size == self._canvas_size:
            return  # said after every stroke; set_mask_active, said with it, fits the guides once
        self._canvas_size = size
        self._update_control_size()

    def _size_changed(self) -> None:
        self.hires_box.set_base_size(self.width_spin.value(), self.height_spin.value())
        self._update_control_size()

    def _update_control_size(self) -> None:
        """The guides' thumbnails fitted as the next job fits them (build_request): inpainting works at the canvas
        picture's size, img2img stretches the canvas picture to the Size boxes, a new picture is cropped to them."""
        canvas = self._canvas_size
        if self._mask_active and canvas is not None:
            mask = self._mask if self._mask is not None and self._mask.shape == canvas[::-1] else None
            self.control_box.set_size(*canvas, canvas, None if mask is None else (mask, self.inpaint_box.options()))
        else:
            start = canvas if self.use_canvas_check.isChecked() else None
            self.control_box.set_size(self.width_spin.value(), self.height_spin.value(), start)

    def _update_hires(self) -> None:
        """A job that starts from the canvas works at the canvas's size: the hires fix does not apply to it."""
        self.hires_box.set_applies(not (self._mask_active or self.use_canvas_check.isChecked()))

    def _show_inpaint_options(self) -> None:
        """Scrolled down to them, never sideways: the panel has no horizontal scroll bar to scroll back with."""
        sideways = self._scroll.horizontalScrollBar()
        left = sideways.value()
        self._scroll.ensureWidgetVisible(self.inpaint_box, 0, 12)
        sideways.setValue(left)
