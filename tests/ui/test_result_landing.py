"""Where a finished job's picture lands: image to image on a canvas whose size is no multiple of 8; an inpaint on the
canvas it was sent from, whose picture and mask the history keeps (nothing left unsaved)."""

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


def _inpaint_sent(qtbot, window, batch: int = 1):  # noqa: ANN001, ANN202
    """An inpaint of a painted mask on an opened (saved) picture, sent from the window; the picture."""
    import numpy as np

    from studio.core.mask import fill_rect

    picture = Image.fromarray(np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    window.document.set_image(picture, "Open")
    window.document.mark_saved()
    window.document.edit_mask("Brush", lambda m: fill_rect(m, (8, 8, 40, 40)))
    assert window.document.changed_since_save  # the painted mask is kept nowhere yet
    window.prompt_panel.prompt_edit.setPlainText("a red door")
    window.prompt_panel.batch_spin.setValue(batch)
    window.generate()
    return picture


def _landed(qtbot, window, count: int = 1) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished"))
                    and window.document.history_labels().count("Generated") == count, timeout=60_000)


def test_an_inpaint_landing_on_the_canvas_it_was_sent_from_leaves_nothing_unsaved(qtbot, window):  # noqa: ANN001
    """The source picture and mask are kept with the inpaint's history entry and the result in the outputs folder:
    closing asked about unsaved work all the same."""
    from studio.core.mask import fill_rect

    _inpaint_sent(qtbot, window, batch=2)
    _landed(qtbot, window, count=2)
    assert window.document.has_mask
    (entry, _) = window.history.search()
    assert entry.source_mask_path and entry.source_image_path
    assert not window.document.changed_since_save
    window.document.edit_mask("Brush", lambda m: fill_rect(m, (44, 44, 60, 60)))  # new work since: unsaved
    assert window.document.changed_since_save


def test_a_mask_painted_after_the_inpaint_was_sent_stays_unsaved(qtbot, window):  # noqa: ANN001
    from studio.core.mask import fill_rect

    _inpaint_sent(qtbot, window)
    window.document.edit_mask("Brush", lambda m: fill_rect(m, (44, 44, 60, 60)))  # not in the job's mask
    _landed(qtbot, window)
    assert window.document.changed_since_save


def test_an_inpaint_whose_history_is_not_written_leaves_its_mask_unsaved(qtbot, window, monkeypatch):  # noqa: ANN001
    monkeypatch.setattr(window.history, "read_only", True)  # the window shows a history it may not write to
    _inpaint_sent(qtbot, window)
    _landed(qtbot, window)
    assert window.document.changed_since_save
