"""The canvas's preview layer: a job's preview enlarged and scaled over the result's area."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.core.document import Document
from studio.ui.canvas import CanvasView


@pytest.mark.parametrize(("latent", "output", "shown"), [(64, 512, 256), (128, 1024, 256), (96, 768, 192),
                                                          (512, 1024, 512)])
def test_previews_are_enlarged_to_about_256_px_and_scaled_over_the_results_area(qtbot, latent, output, shown):
    """Latent-sized previews are enlarged before the view scales them (a tiny pixmap looks blocky); SDXL's
    128 px ones only 2x, so each of up to 30 previews a second stays cheap on this thread. TAESD's come as
    they are."""
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.set_document(Document())
    canvas.show_preview(Image.new("RGB", (latent, latent), (40, 90, 200)), output, output)
    item = canvas.preview.item
    assert canvas.has_preview() and item.pixmap().width() == shown
    assert item.mapRectToScene(item.boundingRect()).width() == pytest.approx(output)
