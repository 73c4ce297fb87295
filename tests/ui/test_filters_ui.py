"""Studio's own filters in the window: colour transfer from the Filters menu with strength and only under the
mask (and undo), restyle prefilled with the model in use, and the post-processing chain dialog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.images import read_recipe
from studio.ui.post_chain_dialog import PostChainDialog
from studio.ui.post_process_dialog import PostProcessDialog

WAIT_MS = 60_000


def _reference(tmp_path) -> str:  # noqa: ANN001
    path = tmp_path / "orange.png"
    Image.fromarray(np.full((32, 32, 3), (230, 120, 40), np.uint8)).save(path)
    return str(path)


def _blue_canvas(window) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    window.document.set_image(Image.fromarray(np.clip(rng.normal((60, 110, 200), 25, (64, 64, 3)), 0, 255)
                                              .astype(np.uint8)), "Open")


def test_colour_transfer_from_the_menu_under_the_mask_and_undo(qtbot, window, tmp_path):
    _blue_canvas(window)
    before = np.asarray(window.document.image).copy()
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255
    window.document.set_mask("Paint", mask)
    window.mask_toolbar.show_mask_action.setChecked(True)
    action = next(a for a in window.plugin_actions.menu.actions() if a.text() == "Colour Transfer…")
    reference = _reference(tmp_path)

    def choose(dialog: PostProcessDialog) -> bool:
        assert dialog.masked.isEnabled() and dialog.masked.isChecked()  # a mask is painted: offered, on
        dialog.form.editor("style").set_path(Path(reference))
        dialog.strength_slider.setValue(70)
        return True

    window.plugin_actions.edit_dialog = choose
    action.trigger()
    qtbot.waitUntil(lambda: window.document.history_labels()[-1] == "Filter: Colour Transfer", timeout=WAIT_MS)
    after = np.asarray(window.document.image)
    assert np.array_equal(after[:, 32:], before[:, 32:])  # outside the mask: every pixel as it was
    assert after[:, :32, 0].mean() > before[:, :32, 0].mean() + 50  # warmer under the mask
    recipe_step = window.document.recipe.post[-1]
    assert (recipe_step["processor"], recipe_step["strength"], recipe_step["masked"]) == ("color", 0.7, True)
    assert window.settings.filter_params["color"] == {}  # pictures are not remembered as settings
    window.actions_.undo.trigger()
    assert np.array_equal(np.asarray(window.document.image), before)


def test_restyle_starts_with_the_model_in_use(qtbot, window, settings):
    _blue_canvas(window)
    restyle = window.service.registry.get("postprocessor", "restyle")
    seen = []
    window.plugin_actions.edit_dialog = lambda dialog: seen.append(dialog.form.values()) and False
    window.plugin_actions.open_processor(restyle)
    assert seen[0]["model"] == settings.generation.model and seen[0]["prompt"]


def test_the_chain_dialog_orders_steps_and_every_new_picture_goes_through_them(qtbot, window, settings, tmp_path,
                                                                              artifacts_dir):
    reference = _reference(tmp_path)

    def answer(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.add("histogram")
            dialog.add("color")
            dialog.add("histogram")
            dialog.list.setCurrentRow(1)
            dialog.move(-1)  # colour first
            dialog.list.setCurrentRow(2)
            dialog.remove_selected()
            assert [dialog.list.item(i).text() for i in range(dialog.list.count())] == [
                "Colour Transfer · 50%", "Colour Transfer (Histogram)"]
            dialog.grab().save(str(artifacts_dir / "post-chain-dialog.png"))
            return True
        dialog.form.editor("style").set_path(Path(reference))
        if dialog.windowTitle().startswith("Colour Transfer —"):
            dialog.strength_slider.setValue(50)
        return True

    window.plugin_actions.edit_dialog = answer
    window.plugin_actions.open_chain()
    chain = settings.generation.post
    assert [(s.processor, s.strength) for s in chain] == [("color", 0.5), ("histogram", 1.0)]
    stored = chain[0].params["style"]
    assert stored.startswith(str(window.data_dir / "post-references")) and Image.open(stored).size == (32, 32)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    saved = sorted(settings.outputs_dir.rglob("*.png"))[-1]
    assert [s["processor"] for s in read_recipe(saved).post] == ["color", "histogram"]
