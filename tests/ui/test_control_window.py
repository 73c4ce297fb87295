"""Control guides in the main window: the library feeds the section, "Canvas" takes the canvas picture (kept for
the settings), "Load parameters" brings a picture's guides back (a missing picture said, not crashed on), and a
screenshot of the section."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from studio.core.images import save_image
from studio.core.metadata import Recipe
from studio.core.model_library import LibraryItem
from studio.services.history_reuse import recorded_choices
from studio.services.history_store import HistoryEntry
from studio.ui.model_actions import CONTROL_PICTURES

WAIT_MS = 10_000


def _library(window, tiny_model_dir: Path) -> None:  # noqa: ANN001
    """The tiny model and three ControlNets (the engine's scan lists them once it reads controlnet/)."""
    models = window.settings.models_dir
    tiny = LibraryItem("tiny-sd", tiny_model_dir.resolve(), "checkpoint", "sd1", "SD 1.x", 1, "linked", linked=True)
    nets = [LibraryItem(name, models / "controlnet" / f"{name}.safetensors", "controlnet", family, "ControlNet", 1,
                        "models folder") for name, family in (("control_v11p_sd15_canny", "sd1"),
                                                              ("control_v11p_sd15_lineart", "sd1"),
                                                              ("controlnet-canny-sdxl-1.0", "sdxl"))]
    window.models.show_library([tiny, *nets])


def _drawing(path: Path) -> Path:
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 30, 200, 210), outline="black", width=5)
    draw.rectangle((150, 90, 300, 220), fill=(190, 70, 40))
    image.save(path)
    return path


def test_the_library_feeds_the_section_and_canvas_takes_the_canvas_picture(qtbot, window, tiny_model_dir):  # noqa: ANN001
    box = window.prompt_panel.control_box
    assert not box.add_button.isEnabled()  # no ControlNets in the library yet
    _library(window, tiny_model_dir)
    assert box.add_button.isEnabled()
    row = box.add()
    combo = row.model_combo
    assert [combo.model().item(i).isEnabled() for i in range(1, combo.count())] == [True, True, False]  # SDXL's
    canvas = Image.new("RGB", (64, 64), (200, 30, 30))
    window.document.set_image(canvas, "Test")
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: row.picture.path.startswith(str(window.data_dir / CONTROL_PICTURES)), timeout=WAIT_MS)
    assert Image.open(row.picture.path).convert("RGB").tobytes() == canvas.tobytes()
    saved = window.generation_defaults().controls
    assert [(c["model"], c["preprocessor"], c["image"]) for c in saved] == [
        ("control_v11p_sd15_canny", "canny", row.picture.path)]
    request = window.prompt_panel.build_request(window.document.image)
    assert request.controls[0].image.tobytes() == canvas.tobytes()


def test_the_thumbnail_follows_the_canvas_picture_an_inpainting_job_works_on(qtbot, window, tiny_model_dir):  # noqa: ANN001
    """A guide taken from a 256x128 canvas picture with a line near its left edge, the Size boxes at 128x128: a new
    picture crops it to the middle (no line in the thumbnail); once a mask makes Generate inpaint the whole picture,
    the job has the canvas picture's size and the thumbnail shows all of it; inpainting the masked area only, the
    part around the mask (the mask painted in the window reaches the thumbnail)."""
    _library(window, tiny_model_dir)
    panel = window.prompt_panel
    panel.width_spin.setValue(128)
    panel.height_spin.setValue(128)
    canvas = Image.new("RGB", (256, 128))
    ImageDraw.Draw(canvas).line((12, 0, 12, 127), fill="white", width=5)
    window.document.set_image(canvas, "Test")
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("none"))
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: row.picture.preview is not None, timeout=WAIT_MS)
    assert row.picture.preview.size == (96, 96) and row.picture.preview.getextrema()[0][1] == 0
    panel.inpaint_box.area_combo.setCurrentIndex(1)  # the whole picture
    mask = np.zeros((128, 256), np.uint8)
    mask[:, 200:] = 255
    window.document.set_mask("Mask", mask)
    qtbot.waitUntil(lambda: row.picture.preview.size == (96, 48), timeout=WAIT_MS)
    assert np.asarray(row.picture.preview.convert("L"))[:, :8].max() > 128
    panel.inpaint_box.area_combo.setCurrentIndex(0)  # the masked area: 168-256 with its 32 px of padding
    qtbot.waitUntil(lambda: row.picture.preview.size[0] < 96, timeout=WAIT_MS)
    assert row.picture.area_box == (168, 0, 256, 128) and row.picture.preview.getextrema()[0][1] == 0


def test_the_outpaint_frame_extends_the_guides_made_for_the_picture_and_the_fill_job_takes_them(  # noqa: ANN001
        qtbot, window, tiny_model_dir, tmp_path, monkeypatch):
    """Extending the canvas (the outpaint frame, Extend Canvas…) extends a guide whose picture has the picture's size
    by the same amounts: its Canny edges as the ControlNet saw them, black in the new area, taken as they are and
    kept for the settings; the fill job gets it. A guide of another size is left as it is."""
    from studio.core.control import CANNY, NONE, preprocess

    _library(window, tiny_model_dir)
    box = window.prompt_panel.control_box
    photo = Image.new("RGB", (64, 64), (40, 40, 40))
    ImageDraw.Draw(photo).line((20, 0, 20, 63), fill="white", width=3)
    window.document.set_image(photo, "Test")
    row, other = box.add(), box.add()
    assert row.preprocessor() == CANNY  # a Canny ControlNet's own
    row.picture.canvas_button.click()
    other.picture.use_file(_drawing(tmp_path / "drawing.png"))
    qtbot.waitUntil(lambda: row.picture.path != "" and other.picture.state == "ready", timeout=WAIT_MS)
    canvas_kept, drawing = row.picture.path, other.picture.image
    submitted = []
    monkeypatch.setattr(window.service, "submit", lambda request: submitted.append(request) or 1)
    window.canvas.frame_requested.emit(0, 0, 64, 0)  # the frame tool dragged 64 px past the right edge
    qtbot.waitUntil(lambda: len(submitted) == 1, timeout=WAIT_MS)
    extended, untouched = submitted[0].controls
    assert submitted[0].mask is not None and submitted[0].init_image.size == extended.image.size == (128, 64)
    seen = np.asarray(extended.image)
    assert np.array_equal(seen[:, :64], np.asarray(preprocess(photo, CANNY))) and seen[:, 64:].max() == 0
    assert (row.preprocessor(), row.picture.image) == (NONE, extended.image)
    assert untouched.image is drawing and other.preprocessor() == CANNY
    qtbot.waitUntil(lambda: row.picture.path not in ("", canvas_kept), timeout=WAIT_MS)
    assert row.picture.path.startswith(str(window.data_dir / CONTROL_PICTURES))
    # The fill job works on the new area and its padding (the masked area): the thumbnail shows that part.
    qtbot.waitUntil(lambda: row.picture.preview is not None and row.picture.area_box is not None, timeout=WAIT_MS)
    assert 0 < row.picture.area_box[0] < 64 and row.picture.area_box[2:] == (128, 64)


def test_undoing_an_outpaint_brings_its_guides_back_and_redoing_it_extends_them_again(  # noqa: ANN001
        qtbot, window, tiny_model_dir, tmp_path):
    """A guide extended with the canvas follows the canvas back: Undo gives it its picture, file and Canny
    preprocessor again, Redo its extension; a history jump over the extension and a change after it does the same;
    a guide given another picture since is left as the person chose."""
    from studio.core.control import CANNY, NONE

    _library(window, tiny_model_dir)
    box = window.prompt_panel.control_box
    photo = Image.new("RGB", (64, 64), (40, 40, 40))
    ImageDraw.Draw(photo).line((20, 0, 20, 63), fill="white", width=3)
    window.document.set_image(photo, "Test")
    row = box.add()
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: row.picture.path != "", timeout=WAIT_MS)
    canvas_kept, note = row.picture.path, row.picture.note
    window.actions_.extend_canvas(0, 0, 64, 0, fill=False)
    qtbot.waitUntil(lambda: row.picture.image is not photo and row.picture.path not in ("", canvas_kept),
                    timeout=WAIT_MS)
    extended = row.picture.image
    assert extended.size == (128, 64) and row.preprocessor() == NONE

    window.actions_.undo.trigger()
    qtbot.waitUntil(lambda: row.picture.image is photo, timeout=WAIT_MS)
    assert (row.preprocessor(), row.picture.path, row.picture.note) == (CANNY, canvas_kept, note)
    window.actions_.redo.trigger()
    qtbot.waitUntil(lambda: row.picture.image is extended, timeout=WAIT_MS)
    assert row.preprocessor() == NONE

    window.document.set_image(Image.new("RGB", (128, 64), (200, 10, 10)), "Generated")  # the fill job's result
    window.history_panel.position_requested.emit(window.document.history_position - 2)
    qtbot.waitUntil(lambda: row.picture.image is photo, timeout=WAIT_MS)
    assert row.preprocessor() == CANNY

    other = _drawing(tmp_path / "drawing.png")
    row.picture.use_file(other)
    qtbot.waitUntil(lambda: row.picture.path == str(other) and row.picture.state == "ready", timeout=WAIT_MS)
    drawing = row.picture.image
    window.actions_.redo.trigger()
    qtbot.waitUntil(lambda: window.document.size == (128, 64), timeout=WAIT_MS)
    qtbot.wait(300)  # the views' batched refresh
    assert row.picture.image is drawing and row.preprocessor() == CANNY


def test_an_outpaint_whose_guide_cannot_be_extended_says_so_and_starts_no_fill_job(  # noqa: ANN001
        qtbot, window, tiny_model_dir, monkeypatch):
    """A Depth guide made for the picture, with no depth model: the canvas is extended, the guide left as it was,
    and the fill job, which would take a guide that no longer lies on the picture, waits for the person."""
    _library(window, tiny_model_dir)
    photo = Image.new("RGB", (64, 64), (40, 40, 40))
    window.document.set_image(photo, "Test")
    row = window.prompt_panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("depth"))
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: row.picture.path != "", timeout=WAIT_MS)
    submitted = []
    monkeypatch.setattr(window.service, "submit", lambda request: submitted.append(request) or 1)
    window.canvas.frame_requested.emit(0, 0, 64, 0)
    qtbot.waitUntil(lambda: "could not be extended" in window.status.message_label.text(), timeout=WAIT_MS)
    assert window.status.message_label.text().startswith("The control guide could not be extended with the canvas: ")
    assert window.status.message_label.text().endswith("then press Generate to fill it.")
    assert window.document.size == (128, 64) and row.picture.image is photo and submitted == []


def test_load_parameters_brings_the_guides_back_and_a_missing_picture_is_said(qtbot, window, tiny_model_dir,  # noqa: ANN001
                                                                               tmp_path):
    _library(window, tiny_model_dir)
    kept = _drawing(tmp_path / "kept.png")
    records = [{"model": "control_v11p_sd15_canny", "hash": "", "preprocessor": "canny", "weight": 0.8, "start": 0.0,
                "end": 0.7, "low": 80, "high": 160, "image": str(kept)},
               {"model": "control_sd15_depth", "hash": "", "preprocessor": "none", "weight": 1.0, "start": 0.1,
                "end": 1.0, "low": 100, "high": 200, "image": str(tmp_path / "gone.png")}]
    entry = HistoryEntry(prompt="a house", model_path=str(tiny_model_dir.resolve()), seed=3, steps=4, cfg_scale=7,
                         width=64, height=64, params={"controls": records})
    box = window.prompt_panel.control_box
    window.actions_.run(window.history_actions.load_parameters(entry))
    qtbot.waitUntil(lambda: len(box.rows) == 2 and box.rows[1].picture.state == "missing", timeout=WAIT_MS)
    first, second = box.rows
    qtbot.waitUntil(lambda: first.picture.state == "ready", timeout=WAIT_MS)
    assert (first.model(), first.weight_spin.value(), first.end_spin.value(), first.low_spin.value()) == (
        "control_v11p_sd15_canny", 0.8, 0.7, 80)
    assert second.model_combo.currentText() == "control_sd15_depth (not in the library)"
    assert "gone.png is missing" in window.status.message_label.text()
    window.generate()  # said in a sentence where the person looks; nothing is queued
    assert "Control guide 2's picture" in window.prompt_panel.error_label.text()
    assert not window.queue_panel.job_ids("waiting") and not window.queue_panel.job_ids("running")
    # A picture made without guides: its remake is too.
    window.actions_.run(window.history_actions.load_parameters(HistoryEntry(prompt="plain", params={"controls": []})))
    qtbot.waitUntil(lambda: not box.rows, timeout=WAIT_MS)


def test_presets_leave_the_guides_as_they_are(qtbot, window, tiny_model_dir):  # noqa: ANN001
    """Like the prompt, guides belong to the picture being made: a preset neither keeps nor replaces them."""
    _library(window, tiny_model_dir)
    box = window.prompt_panel.control_box
    row = box.add()
    window.document.set_image(Image.new("RGB", (64, 64), "white"), "Test")
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: row.picture.state == "ready", timeout=WAIT_MS)
    window.history_actions.add_preset("Fast")
    preset = next(p for p in window.settings.presets if p.name == "Fast")
    assert preset.generation.controls == []
    window.prompt_panel.steps_spin.setValue(9)
    window.history_actions.apply_preset(preset)
    assert window.prompt_panel.steps_spin.value() == 4 and box.rows == [row] and row.picture.state == "ready"


def test_guides_are_read_from_the_pictures_recipe_when_the_history_has_none(tmp_path):  # noqa: ANN001
    record = {"model": "control_v11p_sd15_canny", "hash": "", "preprocessor": "invert", "weight": 1.0, "start": 0.0,
              "end": 1.0, "low": 100, "high": 200, "image": str(tmp_path / "control.png")}
    recipe = Recipe(prompt="a", negative_prompt="", steps=4, sampler="Euler a", cfg_scale=7, seed=1, width=64,
                    height=64, model_name="tiny", controls=(record,))
    picture = save_image(Image.new("RGB", (64, 64)), tmp_path / "made.png", recipe)
    outputs = tmp_path / "outputs"
    *_, records, missing = recorded_choices(HistoryEntry(prompt="a", image_path=str(picture)), outputs)
    assert [r["preprocessor"] for r in records] == ["invert"] and missing == [str(tmp_path / "control.png")]
    # Today's recipes name a kept picture relative to the outputs folder: it is found there.
    kept = outputs / "2026-12-07" / "sources" / "0123456789abcdef-control.png"
    kept.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(kept)
    relative = {**record, "image": "2026-12-07/sources/0123456789abcdef-control.png"}
    save_image(Image.new("RGB", (64, 64)), picture, replace(recipe, controls=(relative,)))
    *_, records, missing = recorded_choices(HistoryEntry(prompt="a", image_path=str(picture)), outputs)
    assert [r["image"] for r in records] == [str(kept)] and missing == []


def test_guide_cards_fit_the_generate_panel_whatever_their_preprocessor(qtbot, window, tiny_model_dir):  # noqa: ANN001
    """The panel never scrolls sideways (it has no horizontal scroll bar): a guide card with Depth chosen and its
    download offer shown fits the dock as a Canny one does."""
    _library(window, tiny_model_dir)
    scroll = window.prompt_panel._scroll
    row = window.prompt_panel.control_box.add()
    for preprocessor in ("canny", "depth"):
        row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData(preprocessor))
        qtbot.wait(100)
        assert scroll.widget().width() <= scroll.viewport().width(), preprocessor
    assert row.depth_offer.isVisible()


def test_screenshot_of_the_control_section(qtbot, window, tiny_model_dir, tmp_path, artifacts_dir):  # noqa: ANN001
    """Saves artifacts/main-window-control.png: two guides, one from a file with Canny, one from the canvas."""
    _library(window, tiny_model_dir)
    panel = window.prompt_panel
    panel.prompt_edit.setPlainText("a cottage in a meadow, watercolor")
    drawing = Image.open(_drawing(tmp_path / "drawing.png"))
    window.document.set_image(drawing.resize((256, 192)), "Test")
    first = panel.control_box.add()
    first.picture.use_file(tmp_path / "drawing.png")
    second = panel.control_box.add()
    second.select_model("control_v11p_sd15_lineart")
    second.preprocessor_combo.setCurrentIndex(second.preprocessor_combo.findData("invert"))
    second.weight_spin.setValue(0.6)
    second.end_spin.setValue(0.8)
    second.picture.canvas_button.click()
    qtbot.waitUntil(lambda: all(r.picture.preview is not None for r in panel.control_box.rows), timeout=WAIT_MS)
    panel._scroll.ensureWidgetVisible(panel.control_box, 0, 0)
    panel._scroll.verticalScrollBar().setValue(panel._scroll.verticalScrollBar().maximum())
    window.canvas.fit()
    window.grab().save(str(artifacts_dir / "main-window-control.png"))
    assert (artifacts_dir / "main-window-control.png").stat().st_size > 10_000


def test_a_guided_picture_made_in_the_window_records_its_guide_and_runs_again_the_same(qtbot, window, tiny_model_dir,  # noqa: ANN001
                                                                                        tmp_path, monkeypatch):
    """End to end with the real engine: a tiny ControlNet in the models folder's controlnet/, a guide with a picture
    file, Generate; the picture's recipe and its history entry name the guide and its kept picture, and Run again
    from the gallery makes the same pixels."""
    from PySide6.QtWidgets import QMessageBox
    from tiny_controlnets import build_tiny_controlnet

    from studio.core.images import read_recipe
    from studio.services.outputs import is_kept_control

    build_tiny_controlnet(window.settings.models_dir / "controlnet" / "tiny-edges", tiny_model_dir)
    box = window.prompt_panel.control_box
    window.models.refresh()  # the library finds it, as after an import
    qtbot.waitUntil(box.add_button.isEnabled, timeout=WAIT_MS)
    row = box.add()
    assert row.model() == "tiny-edges"
    drawing = _drawing(tmp_path / "drawing.png")
    row.picture.use_file(drawing)
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("canny"))
    row.weight_spin.setValue(1.5)
    qtbot.waitUntil(lambda: row.picture.state == "ready", timeout=WAIT_MS)
    window.prompt_panel.prompt_edit.setPlainText("a cottage")
    window.prompt_panel.seed_edit.setText("42")
    window.generate()
    assert window.prompt_panel.error_label.text() == ""
    gallery = window.gallery.model
    qtbot.waitUntil(lambda: gallery.rowCount() == 1, timeout=120_000)
    first = gallery.entry_at(0)
    (record,) = first.params["controls"]
    kept = Path(record["image"])
    assert (record["model"], record["preprocessor"], record["weight"]) == ("tiny-edges", "canny", 1.5)
    assert is_kept_control(kept) and kept.parent.name == "sources"
    assert kept.parent.parent.parent == window.settings.outputs_dir.absolute()
    with Image.open(kept) as picture, Image.open(drawing) as given:
        assert picture.convert("RGB").tobytes() == given.convert("RGB").tobytes()
    # The picture's recipe names the kept picture relative to the outputs folder: no folder of the person's computer
    # goes with a shared picture. The history row (above) keeps the full path.
    (recorded,) = read_recipe(first.image_path).controls
    assert {k: recorded[k] for k in ("model", "preprocessor", "weight", "image")} == {
        "model": "tiny-edges", "preprocessor": "canny", "weight": 1.5,
        "image": kept.relative_to(window.settings.outputs_dir.absolute()).as_posix()}
    assert str(window.settings.outputs_dir.absolute()) not in read_recipe(first.image_path).to_json()
    assert str(Path.home()) not in recorded["image"] and not Path(recorded["image"]).is_absolute()
    asked: list[str] = []  # the model is the one it was made with: nothing to ask
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a: asked.append(text)
                        or QMessageBox.StandardButton.Yes)
    window.gallery.select_row(0)
    window.gallery.rerun_button.click()
    qtbot.waitUntil(lambda: gallery.rowCount() == 2, timeout=120_000)
    again = gallery.entry_at(0)
    assert not asked and again.id != first.id and again.seed == 42
    assert [{k: r[k] for k in ("model", "preprocessor", "weight")} for r in again.params["controls"]] == [
        {"model": "tiny-edges", "preprocessor": "canny", "weight": 1.5}]
    with Image.open(first.image_path) as made, Image.open(again.image_path) as remade:
        assert np.array_equal(np.asarray(made), np.asarray(remade))
    # Without the guide the same seed makes another picture: the guide is what was run again.
    window.prompt_panel.control_box.remove(row)
    window.generate()
    qtbot.waitUntil(lambda: gallery.rowCount() == 3, timeout=120_000)
    with Image.open(first.image_path) as made, Image.open(gallery.entry_at(0).image_path) as unguided:
        assert not np.array_equal(np.asarray(made), np.asarray(unguided))
    # The picture dropped on the prompt box brings its guide back, with its kept picture found in the outputs folder.
    _drop_on_the_prompt(window, Path(first.image_path))
    qtbot.waitUntil(lambda: len(box.rows) == 1 and box.rows[0].picture.state == "ready", timeout=WAIT_MS)
    assert (box.rows[0].model(), box.rows[0].picture.path) == ("tiny-edges", str(kept))


def a1111_picture(path: Path, unit: str) -> None:
    """A picture as AUTOMATIC1111 saves it, with one sd-webui-controlnet unit in its parameters (and no picture)."""
    text = PngInfo()
    text.add_text("parameters", "a barn\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, "
                                f'ControlNet 0: "{unit}"')
    Image.new("RGB", (64, 64)).save(path, pnginfo=text)


def _drop_on_the_prompt(window, path: Path) -> None:  # noqa: ANN001
    from PySide6.QtCore import QMimeData, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.prompt_panel.prompt_edit.insertFromMimeData(mime)


def test_a_picture_dropped_on_the_prompt_box_brings_its_guides_back_as_load_parameters_does(qtbot, window,  # noqa: ANN001
                                                                                             tiny_model_dir, tmp_path):
    _library(window, tiny_model_dir)
    kept = _drawing(tmp_path / "kept.png")
    records = ({"model": "control_v11p_sd15_canny", "hash": "", "preprocessor": "canny", "weight": 0.8, "start": 0.0,
                "end": 0.7, "low": 80, "high": 160, "image": str(kept)},
               {"model": "control_sd15_depth", "hash": "", "preprocessor": "none", "weight": 1.0, "start": 0.1,
                "end": 1.0, "low": 100, "high": 200, "image": str(tmp_path / "gone.png")})
    recipe = Recipe(prompt="a house", negative_prompt="", steps=4, sampler="Euler a", cfg_scale=7, seed=3, width=64,
                    height=64, model_name="tiny-sd", controls=records)
    picture = save_image(Image.new("RGB", (64, 64)), tmp_path / "made.png", recipe)
    box = window.prompt_panel.control_box
    _drop_on_the_prompt(window, picture)
    qtbot.waitUntil(lambda: len(box.rows) == 2 and box.rows[1].picture.state == "missing", timeout=WAIT_MS)
    first, second = box.rows
    qtbot.waitUntil(lambda: first.picture.state == "ready", timeout=WAIT_MS)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a house"
    assert (first.model(), first.weight_spin.value(), first.end_spin.value(), first.low_spin.value()) == (
        "control_v11p_sd15_canny", 0.8, 0.7, 80)
    assert first.picture.path == str(kept)
    assert second.model_combo.currentText() == "control_sd15_depth (not in the library)"
    assert "gone.png is missing" in window.status.message_label.text()
    # AUTOMATIC1111 names its guides (sd-webui-controlnet's text) but keeps none of their pictures.
    a1111 = tmp_path / "a1111.png"
    a1111_picture(a1111, 'Module: canny, Model: control_v11p_sd15_lineart [5c23b17d], Weight: 0.6, '
                         'Guidance Start: 0, Guidance End: 1, Threshold A: 90, Threshold B: 180')
    _drop_on_the_prompt(window, a1111)
    qtbot.waitUntil(lambda: len(box.rows) == 1 and box.rows[0].model() == "control_v11p_sd15_lineart",
                    timeout=WAIT_MS)
    (only,) = box.rows
    assert (only.preprocessor(), only.weight_spin.value(), only.low_spin.value(), only.picture.state) == (
        "canny", 0.6, 90, "empty")
    assert "It names no picture for its control guide; choose one." in window.status.message_label.text()
    # A picture made without guides: its parameters take them away, as Load parameters does.
    plain = save_image(Image.new("RGB", (64, 64)), tmp_path / "plain.png",
                       Recipe("a field", "", 4, "Euler a", 7, 9, 64, 64, "tiny-sd"))
    _drop_on_the_prompt(window, plain)
    qtbot.waitUntil(lambda: not box.rows, timeout=WAIT_MS)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a field"


def test_a_dropped_picture_s_guides_are_found_in_the_outputs_folder_and_a_file_of_its_own_is_said_missing(  # noqa: ANN001
        qtbot, window, tiny_model_dir):
    """A Studio recipe names a kept control picture relative to the outputs folder (it is shared without the
    person's folders), and the person's own file, not kept, by its name alone."""
    _library(window, tiny_model_dir)
    outputs = window.settings.outputs_dir.absolute()
    (outputs / "2026-12-07" / "sources").mkdir(parents=True)
    kept = _drawing(outputs / "2026-12-07" / "sources" / "0123456789abcdef-control.png")
    records = ({"model": "control_v11p_sd15_canny", "hash": "", "preprocessor": "canny", "weight": 0.8, "start": 0.0,
                "end": 0.7, "low": 80, "high": 160, "image": "2026-12-07/sources/0123456789abcdef-control.png"},
               {"model": "control_v11p_sd15_lineart", "hash": "", "preprocessor": "none", "weight": 1.0, "start": 0.0,
                "end": 1.0, "low": 100, "high": 200, "image": "photo.png"})
    recipe = Recipe(prompt="a house", negative_prompt="", steps=4, sampler="Euler a", cfg_scale=7, seed=3, width=64,
                    height=64, model_name="tiny-sd", controls=records)
    picture = save_image(Image.new("RGB", (64, 64)), outputs / "shared.png", recipe)
    box = window.prompt_panel.control_box
    _drop_on_the_prompt(window, picture)
    qtbot.waitUntil(lambda: len(box.rows) == 2 and box.rows[0].picture.state == "ready"
                    and box.rows[1].picture.state == "missing", timeout=WAIT_MS)
    assert box.rows[0].picture.path == str(kept) and box.rows[0].model() == "control_v11p_sd15_canny"
    assert box.rows[1].picture.path == str(outputs / "photo.png")
    assert "photo.png is missing" in window.status.message_label.text()
