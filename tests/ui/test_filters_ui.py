"""Studio's own filters in the window: colour transfer from the Filters menu with strength and only under the
mask (and undo), restyle prefilled with the model in use, and the post-processing chain dialog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.images import read_recipe
from studio.ui.mnemonics import plain
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
    action = next(a for a in window.plugin_actions.menu.actions() if plain(a.text()) == "Colour Transfer…")
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


def test_upscale_starts_with_an_installed_upscaler_not_the_sd_model_and_runs_it(qtbot, window, settings,
                                                                              monkeypatch):
    """Upscale's parameter is also called "model", but it names an upscaler file: the picked Stable Diffusion
    model was filled in, and Apply (and every later generation, from the chain) failed "No upscaler called"."""
    import torch
    from safetensors.torch import save_file

    from studio.engine import upscale

    folder = settings.models_dir / "upscalers"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"weight": torch.zeros(1)}, str(folder / "x2.safetensors"))
    loaded = []  # spandrel's part (reading the architecture) stood in for by a 2x nearest upsampler
    monkeypatch.setattr(upscale, "load_upscaler", lambda path, device: loaded.append(path.name) or upscale.Upscaler(
        torch.nn.Upsample(scale_factor=2, mode="nearest"), path.name, 2, 3, 1, 0, True, torch.float32))
    window.models.show_library([_upscaler_item(settings)])  # as a library scan finds it
    _blue_canvas(window)
    seen = []

    def answer(dialog: PostProcessDialog) -> bool:
        seen.append(dialog.form.values()["model"])
        dialog.after_each.setChecked(True)
        return True

    window.plugin_actions.edit_dialog = answer
    next(a for a in window.plugin_actions.menu.actions() if plain(a.text()) == "Upscale…").trigger()
    qtbot.waitUntil(lambda: window.document.history_labels()[-1] == "Filter: Upscale", timeout=WAIT_MS)
    assert seen == ["x2"] and loaded == ["x2.safetensors"]
    assert window.document.image.size == (128, 128)
    assert [(s.processor, s.params["model"]) for s in settings.generation.post] == [("upscale", "x2")]


def _upscaler_item(settings):  # noqa: ANN001, ANN202
    from studio.core.model_library import LibraryItem

    return LibraryItem("x2", settings.models_dir / "upscalers" / "x2.safetensors", "upscaler", "",
                       "Upscaler (ESRGAN)", 1, "models folder")


def test_filters_upscale_is_chosen_from_the_installed_upscalers_and_refused_without_one(qtbot, window, settings):
    """Filters → Upscale had a free-text Upscaler (and a "Final scale" of "0.00") while the chain's Upscale step
    listed the installed upscalers: Apply with none installed was taken and the job failed."""
    _blue_canvas(window)
    outcomes = []

    def answer(dialog: PostProcessDialog) -> bool:
        combo = dialog.form.editor("model")
        dialog.accept()
        outcomes.append(([combo.itemText(i) for i in range(combo.count())], combo.isEnabled(),
                         dialog.form.editor("outscale").text(),
                         dialog.result() == PostProcessDialog.DialogCode.Accepted, dialog.problem.text()))
        return False  # what Apply then runs is the test above's

    window.plugin_actions.edit_dialog = answer
    upscale = window.service.registry.get("postprocessor", "upscale")
    window.plugin_actions.open_processor(upscale)
    names, enabled, scale_text, accepted, problem = outcomes[-1]
    assert (names, enabled, scale_text, accepted) == (["None installed"], False, "0 = the upscaler's own scale", False)
    assert problem.startswith("No upscaler model is installed: put one")

    window.models.show_library([_upscaler_item(settings)])
    window.plugin_actions.open_processor(upscale)
    assert outcomes[-1][:4] == (["x2"], True, "0 = the upscaler's own scale", True)


def test_filters_are_off_with_a_sentence_while_the_canvas_is_empty_and_the_chain_stays_open(qtbot, window):
    """Upscale's form was accepted, its settings kept, and only then "The canvas is empty" was said."""
    menu = window.plugin_actions.menu
    filters = [a for a in menu.actions() if plain(a.text()) in ("Colour Transfer…", "Upscale…", "Diffusion Restyle…")]
    assert len(filters) == 3 and window.document.image is None
    assert not any(a.isEnabled() for a in filters)
    assert all(a.toolTip().startswith("The canvas is empty: open or generate a picture") for a in filters)
    assert window.plugin_actions.chain_action.isEnabled()
    _blue_canvas(window)
    assert all(a.isEnabled() and "canvas is empty" not in a.toolTip() for a in filters)
    upscale = next(a for a in menu.actions() if plain(a.text()) == "Upscale…")
    assert upscale.toolTip() == window.service.registry.get("postprocessor", "upscale").description


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
    qtbot.waitUntil(lambda: all(s.params["style"] for s in chain), timeout=WAIT_MS)  # saved in a worker thread
    stored = chain[0].params["style"]
    assert stored.startswith(str(window.data_dir / "post-references")) and Image.open(stored).size == (32, 32)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    saved = [p for p in sorted(settings.outputs_dir.rglob("*.png")) if p.parent.name != "sources"][-1]  # (the
    # outputs' sources/ keeps the chain's pictures for reruns)
    assert [s["processor"] for s in read_recipe(saved).post] == ["color", "histogram"]


def test_a_chain_step_whose_picture_cannot_be_taken_is_not_added_and_its_picture_is_kept_when_edited(
        qtbot, window, settings, tmp_path):  # noqa: ANN001
    """With the canvas empty, Colour Transfer's "Canvas picture" cannot be taken: the step is not added, and the
    chain dialog says why. Editing a step later offers the picture it was set up with, not the canvas."""
    seen = {}

    def empty_canvas(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.add("color")  # its settings accepted as offered
            seen.update(steps=list(dialog.steps), problem=dialog.problem.text())
            return False
        return True

    window.plugin_actions.edit_dialog = empty_canvas
    window.plugin_actions.open_chain()
    assert seen == {"steps": [], "problem": "Style picture: There is no canvas picture to use; pick another "
                                             "picture."}

    def with_reference(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.add("color")
            return True
        dialog.form.editor("style").set_path(Path(_reference(tmp_path)))
        return True

    window.plugin_actions.edit_dialog = with_reference
    window.plugin_actions.open_chain()
    _blue_canvas(window)

    def stronger(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.list.setCurrentRow(0)
            return dialog.edit_selected()
        dialog.strength_slider.setValue(60)  # the strength alone is changed
        return True

    window.plugin_actions.edit_dialog = stronger
    window.plugin_actions.open_chain()
    (step,) = settings.generation.post
    qtbot.waitUntil(lambda: bool(step.params["style"]), timeout=WAIT_MS)
    assert step.strength == 0.6 and Image.open(step.params["style"]).getpixel((0, 0)) == (230, 120, 40)


def test_run_again_remakes_a_chain_step_with_its_picture_and_strength(qtbot, window, settings, tmp_path):  # noqa: ANN001
    from studio.core.settings_sections import PostStepSetting
    from studio.services.history_reuse import request_for_entry

    window.plugin_actions.set_chain([PostStepSetting(processor="color", params={"style": _reference(tmp_path)},
                                                     strength=0.3)])
    window.prompt_panel.seed_edit.setText("42")
    window.generate()
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 1, timeout=WAIT_MS)
    entry = window.gallery.model.entry_at(0)
    (step,) = request_for_entry(entry).post
    assert (step.processor, step.strength) == ("color", 0.3)
    kept = Path(step.params["style"])  # a copy the history keeps (the reference file may go), with its pixels
    assert kept.parent.name == "sources" and kept.parent.parent.parent == settings.outputs_dir
    assert np.array_equal(np.asarray(Image.open(kept)), np.asarray(Image.open(_reference(tmp_path))))
    window.gallery.run_again_requested.emit(entry)
    qtbot.waitUntil(lambda: window.gallery.model.rowCount() == 2, timeout=WAIT_MS)
    first, again = (np.asarray(Image.open(window.gallery.model.entry_at(i).image_path), np.int16) for i in (1, 0))
    assert np.abs(first - again).max() <= 1  # the same picture


def test_the_step_dialog_stays_open_with_a_sentence_until_its_settings_can_be_taken(qtbot, window):  # noqa: ANN001
    colour = window.service.registry.get("postprocessor", "color")
    dialog = PostProcessDialog(colour, {}, image_sources=[("Canvas picture", lambda: None)], parent=window)
    qtbot.addWidget(dialog)
    dialog.accept()
    assert dialog.result() != PostProcessDialog.DialogCode.Accepted and not dialog.problem.isHidden()
    assert dialog.problem.text() == "Style picture: There is no canvas picture to use; pick another picture."


def test_a_masked_upscale_is_held_with_a_sentence_when_the_canvas_changed_while_it_ran(qtbot, window, tmp_path,
                                                                                       monkeypatch, caplog):
    """Colour transfer, then an upscale under the mask, queued together: when the upscale lands, the canvas is no
    longer the picture it was made from, and a picture of another size cannot have its changes carried over
    (numpy refused to broadcast, and the result vanished without a word)."""
    import logging

    import studio.engine.upscale as upscale
    from studio.ui.result_landing import FILTER_CHANGED

    monkeypatch.setattr(upscale.Upscale, "process",  # spandrel's model stands in: 2x nearest
                        lambda self, image, params, context: image.resize((image.width * 2, image.height * 2)))
    _blue_canvas(window)
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 255
    window.document.set_mask("Paint", mask)
    window.mask_toolbar.show_mask_action.setChecked(True)
    registry, actions = window.service.registry, window.plugin_actions
    from studio.core.images import open_image

    actions.apply(registry.get("postprocessor", "color"), {"style": open_image(Path(_reference(tmp_path)))},
                  storable={})
    actions.apply(registry.get("postprocessor", "upscale"), {}, masked=True)
    with caplog.at_level(logging.ERROR):
        qtbot.waitUntil(lambda: window.status.message_label.text().endswith(FILTER_CHANGED), timeout=WAIT_MS)
    assert window.document.history_labels()[-1] == "Filter: Colour Transfer"  # its work stays
    assert window.document.image.size == (64, 64)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_seed_out_of_range_is_said_in_the_dialog_and_never_kept_in_the_chain(qtbot, window, settings, tmp_path):
    """A seed above MAX_SEED went into the chain (and filter_params) before the job was checked; every Generate
    was then refused."""
    from studio.core.parameters import MAX_SEED

    _blue_canvas(window)
    neural = window.service.registry.get("postprocessor", "neural")
    dialog = PostProcessDialog(neural, {}, image_sources=window.plugin_actions.image_sources(), parent=window)
    qtbot.addWidget(dialog)
    seed = dialog.form.editor("seed")
    seed.clear()
    qtbot.keyClicks(seed, "99999999999")
    assert seed.text() == "999999999"  # the field takes no more than a seed can be
    seed.setText("9999999999")  # set from elsewhere, past the validator
    dialog.accept()
    assert dialog.result() != PostProcessDialog.DialogCode.Accepted
    assert dialog.problem.text() == f"Neural Style Transfer: Seed must be between -1 and {MAX_SEED}, not 9999999999."

    def answer(dialog: PostProcessDialog) -> bool:
        dialog.form.editor("style").set_path(Path(_reference(tmp_path)))
        dialog.form.editor("seed").setText("9999999999")
        dialog.after_each.setChecked(True)
        return True

    window.plugin_actions.edit_dialog = answer
    window.plugin_actions.open_processor(neural)
    assert not settings.generation.post and "neural" not in settings.filter_params
    assert "Seed must be between" in window.status.message_label.text()


def test_applying_a_filter_from_the_menu_changes_only_its_own_step_of_the_chain(qtbot, window, settings, tmp_path):
    """The chain held Histogram twice: applying Histogram from the Filters menu removed both and put one back."""
    from studio.core.settings_sections import PostStepSetting

    reference = _reference(tmp_path)
    window.plugin_actions.set_chain([PostStepSetting(processor="histogram", params={"style": reference}),
                                     PostStepSetting(processor="color", params={"style": reference}),
                                     PostStepSetting(processor="histogram", params={"style": reference}, strength=0.4)])
    _blue_canvas(window)
    histogram = window.service.registry.get("postprocessor", "histogram")

    def answer(dialog: PostProcessDialog) -> bool:
        dialog.strength_slider.setValue(70)
        return True

    window.plugin_actions.edit_dialog = answer
    window.plugin_actions.open_processor(histogram)
    assert [(s.processor, s.strength) for s in settings.generation.post] == [
        ("histogram", 0.7), ("color", 1.0), ("histogram", 0.4)]

    def untick(dialog: PostProcessDialog) -> bool:
        dialog.after_each.setChecked(False)
        return True

    window.plugin_actions.edit_dialog = untick
    window.plugin_actions.open_processor(histogram)
    assert [(s.processor, s.strength) for s in settings.generation.post] == [("color", 1.0), ("histogram", 0.4)]


def test_a_chain_steps_picture_is_saved_off_the_windows_thread(qtbot, window, settings, monkeypatch):
    """Ticking "Also apply after each generation" with the canvas as the reference PNG-encoded and hashed the
    canvas on the window's thread (7 s at 4096²). It is saved in a worker thread; a Generate meanwhile gets the
    picture itself."""
    import threading

    from PIL import Image as PILImage

    from studio.ui.chain_step_pictures import ChainStepPictures

    threads, release = [], threading.Event()
    storable = ChainStepPictures._storable

    def slow(self, values):  # noqa: ANN001, ANN202
        threads.append(threading.current_thread())
        release.wait(10)
        return storable(self, values)

    monkeypatch.setattr(ChainStepPictures, "_storable", slow)
    _blue_canvas(window)

    def answer(dialog: PostProcessDialog) -> bool:
        dialog.after_each.setChecked(True)  # the style: "Canvas picture", as offered
        return True

    window.plugin_actions.edit_dialog = answer
    window.plugin_actions.open_processor(window.service.registry.get("postprocessor", "color"))
    (step,) = settings.generation.post
    (offered,) = window.plugin_actions.post_steps()
    assert isinstance(offered.params["style"], PILImage.Image) and step.params["style"] == ""
    release.set()
    qtbot.waitUntil(lambda: bool(step.params["style"]), timeout=WAIT_MS)
    assert threads and threading.main_thread() not in threads
    assert Image.open(window.plugin_actions.post_steps()[0].params["style"]).size == (64, 64)


def test_quitting_while_a_chain_steps_picture_is_saved_keeps_the_picture(qtbot, window, settings, monkeypatch):
    """The settings written on quit held the step's empty path, and the step lost its picture."""
    import threading

    from studio.core.settings import load_settings
    from studio.ui.chain_step_pictures import ChainStepPictures

    release = threading.Event()
    storable = ChainStepPictures._storable

    def slow_off_the_window(self, values):  # noqa: ANN001, ANN202
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)
        return storable(self, values)

    monkeypatch.setattr(ChainStepPictures, "_storable", slow_off_the_window)
    _blue_canvas(window)
    window.plugin_actions.edit_dialog = lambda dialog: dialog.after_each.setChecked(True) or True
    window.plugin_actions.open_processor(window.service.registry.get("postprocessor", "color"))
    window.persist_settings()  # as on quit, with the worker's save still waiting
    release.set()
    (step,) = load_settings().generation.post
    assert step.params["style"] and Image.open(step.params["style"]).size == (64, 64)


def test_a_deleted_reference_is_shown_as_missing_and_left_out_of_a_generation_with_a_note(qtbot, window, settings,
                                                                                        tmp_path):
    """A chain step's reference file deleted: Generate was refused, and editing the step swapped in the canvas
    picture without a word. Now the generation runs without the step, saying so, and the step's form shows the
    missing file, which must be replaced."""
    import os

    from studio.core.settings_sections import PostStepSetting

    window.plugin_actions.set_chain([PostStepSetting(processor="color", params={"style": _reference(tmp_path)},
                                                     strength=0.5)])
    gone = settings.generation.post[0].params["style"]
    os.unlink(gone)
    _blue_canvas(window)
    window.generate()
    qtbot.waitUntil(lambda: bool(window.queue_panel.job_ids("finished")), timeout=WAIT_MS)
    assert not window.prompt_panel.error_label.text()
    saved = sorted(settings.outputs_dir.rglob("*.png"))[-1]
    assert read_recipe(saved).post == ()
    seen = {}

    def edit(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.list.setCurrentRow(0)
            seen["edited"] = dialog.edit_selected()
            seen["chain problem"] = dialog.problem.text()
            return True
        seen["choice"] = dialog.form.editor("style").combo.currentText()
        seen["problem"] = dialog.problem.text()
        dialog.strength_slider.setValue(60)  # the strength alone is changed
        dialog.accept()
        seen["accepted"] = dialog.result() == PostProcessDialog.DialogCode.Accepted
        return True

    window.plugin_actions.edit_dialog = edit
    window.plugin_actions.open_chain()
    name = Path(gone).name
    assert seen["choice"] == f"Missing: {name} (choose another)" and not seen["accepted"] and not seen["edited"]
    assert seen["problem"] == f"Style picture: The picture {gone} is gone; choose another."
    assert seen["chain problem"] == seen["problem"]
    (step,) = settings.generation.post
    assert step.params["style"] == gone and step.strength == 0.5  # as it was: nothing swapped in


def test_a_picture_file_or_gallery_picture_chosen_for_a_filter_is_read_off_the_windows_thread(
        qtbot, window, settings, tmp_path, monkeypatch):  # noqa: ANN001
    """Apply read the chosen picture on the window's thread just to check there was one (a 4096² gallery picture
    held it 0.7 s), and then again to run the filter. The job reads it on the engine thread; a chain step's file is
    read where it is saved, in a worker thread."""
    import threading

    from PIL import ImageFile

    from studio.services.history_store import HistoryEntry

    gallery_file, chain_file = _reference(tmp_path), str(tmp_path / "chain.png")
    Image.open(gallery_file).save(chain_file)
    readers: list[threading.Thread] = []
    load = ImageFile.ImageFile.load

    def recorded(self):  # noqa: ANN001, ANN202
        if self.filename in (gallery_file, chain_file):
            readers.append(threading.current_thread())
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recorded)
    selected = HistoryEntry(prompt="", image_path=gallery_file, id=1)
    monkeypatch.setattr(window.gallery, "selected_entry", lambda: selected)
    _blue_canvas(window)
    before = np.asarray(window.document.image).copy()

    def gallery_picture(dialog: PostProcessDialog) -> bool:
        combo = dialog.form.editor("style").combo
        combo.setCurrentIndex(combo.findData("source:Gallery selection"))
        dialog.accept()
        return dialog.result() == PostProcessDialog.DialogCode.Accepted

    window.plugin_actions.edit_dialog = gallery_picture
    window.plugin_actions.open_processor(window.service.registry.get("postprocessor", "color"))
    assert not readers  # accepted, the picture unread
    qtbot.waitUntil(lambda: window.document.history_labels()[-1] == "Filter: Colour Transfer", timeout=WAIT_MS)
    assert np.asarray(window.document.image)[..., 0].mean() > before[..., 0].mean() + 50  # the orange one's colours
    assert readers and threading.main_thread() not in readers

    def chain_step(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.add("color")
            return True
        dialog.form.editor("style").set_path(Path(chain_file))
        dialog.accept()
        return dialog.result() == PostProcessDialog.DialogCode.Accepted

    readers.clear()
    window.plugin_actions.edit_dialog = chain_step
    window.plugin_actions.open_chain()
    (step,) = settings.generation.post
    qtbot.waitUntil(lambda: bool(step.params["style"]), timeout=WAIT_MS)  # kept as a copy among the references
    assert step.params["style"].startswith(str(window.data_dir / "post-references"))
    assert readers and threading.main_thread() not in readers


def test_a_chain_upscale_step_is_chosen_from_the_installed_upscalers_and_refused_without_one(qtbot, window, settings):
    """The chain's Upscale step had an empty free-text Upscaler and a "Final scale" of "0.00"; OK took it with no
    upscaler installed, and every later generation ended with a warning."""
    outcomes = []

    def answer(dialog) -> bool:  # noqa: ANN001
        if isinstance(dialog, PostChainDialog):
            dialog.add("upscale")
            return True
        combo = dialog.form.editor("model")
        outscale = dialog.form.editor("outscale")
        dialog.accept()
        outcomes.append((combo.isEnabled(), [combo.itemText(i) for i in range(combo.count())], outscale.text(),
                         dialog.result() == PostProcessDialog.DialogCode.Accepted, dialog.problem.text()))
        return outcomes[-1][3]

    window.plugin_actions.edit_dialog = answer
    window.plugin_actions.open_chain()
    enabled, names, scale_text, accepted, problem = outcomes[-1]
    assert (enabled, names, scale_text, accepted) == (False, ["None installed"], "0 = the upscaler's own scale", False)
    assert problem.startswith("No upscaler model is installed: put one")
    assert settings.generation.post == []

    window.models.show_library([_upscaler_item(settings)])  # as a library scan finds it
    window.plugin_actions.open_chain()
    assert outcomes[-1][:4] == (True, ["x2"], "0 = the upscaler's own scale", True)
    assert [(s.processor, s.params["model"]) for s in settings.generation.post] == [("upscale", "x2")]
