"""Where a finished job's picture lands: image to image on a canvas whose size is no multiple of 8."""

from __future__ import annotations

from PIL import Image

from studio.core.requests import GenerationRequest
from studio.ui.result_landing import landed, source_of


def test_img2img_from_an_odd_sized_canvas_keeps_the_canvas_size(qtbot, window):  # noqa: ANN001
    """From a 63x97 picture the model works at 64x96 (the size Use canvas as input picks); the result goes on the
    canvas at 63x97. Before, the canvas became 64x96 without a word."""
    window.document.set_image(Image.new("RGB", (63, 97), (200, 30, 30)), "Open")
    panel = window.prompt_panel
    panel.use_canvas_check.setChecked(True)
    assert (panel.width_spin.value(), panel.height_spin.value()) == (64, 96)
    panel.strength_spin.setValue(0.5)
    panel.prompt_edit.setPlainText("make it blue")
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=60_000)
    qtbot.waitUntil(lambda: window.document.history_labels()[-1] != "Open", timeout=10_000)
    assert window.document.image.size == (63, 97)
    saved = list(window.settings.outputs_dir.rglob("*.png"))
    assert saved and Image.open(saved[0]).size == (64, 96)  # the gallery keeps the model's own picture


def test_img2img_at_a_size_the_person_chose_lands_at_that_size() -> None:
    canvas = Image.new("RGB", (63, 97))
    chosen = GenerationRequest(model="m", prompt="p", width=128, height=128, init_image=canvas)
    assert source_of(chosen) is None
    assert landed(canvas, Image.new("RGB", (128, 128)), source_of(chosen)).size == (128, 128)
    fitted = GenerationRequest(model="m", prompt="p", width=64, height=96, init_image=canvas)
    assert source_of(fitted) is canvas
    assert landed(canvas, Image.new("RGB", (64, 96)), canvas).size == (63, 97)
    even = Image.new("RGB", (64, 96))  # a canvas the model works at as it is: nothing to put back
    assert source_of(GenerationRequest(model="m", prompt="p", width=64, height=96, init_image=even)) is None
