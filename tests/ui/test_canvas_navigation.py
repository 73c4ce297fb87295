"""The canvas's navigation (zoom and fit) while a job's preview is shown and after it goes."""

from __future__ import annotations

import numpy as np
from PIL import Image


def _small_picture(window) -> None:  # noqa: ANN001
    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    window.document.set_image(picture, "Generated")


def test_a_cancelled_larger_job_leaves_the_view_as_it_was(qtbot, window):  # noqa: ANN001
    """A 512x512 job's preview over a 64x64 picture fits the view to the larger area; when the job is cancelled
    (its preview cleared, no picture arrives) the view fits the picture again, as before the job."""
    _small_picture(window)
    canvas = window.canvas
    canvas.fit()
    before, label = canvas.zoom(), window.status.zoom_label.text()
    canvas.show_preview(Image.new("RGB", (64, 64), "grey"), 512, 512)
    assert canvas.zoom() < before  # the view follows the coming picture's area
    canvas.clear_preview()  # what the window does when the job ends without a picture
    assert canvas.zoom() == before and window.status.zoom_label.text() == label
    centre = canvas.mapToScene(canvas.viewport().rect().center())
    assert abs(centre.x() - 32) < 2 and abs(centre.y() - 32) < 2


def test_a_zoom_the_person_chose_stays_after_a_preview(qtbot, window):  # noqa: ANN001
    _small_picture(window)
    canvas = window.canvas
    canvas.actual_size()
    canvas.zoom_in()
    chosen = canvas.zoom()
    canvas.show_preview(Image.new("RGB", (64, 64), "grey"), 512, 512)
    canvas.clear_preview()
    assert canvas.zoom() == chosen
