"""The prompt panel's Control section on real widgets: guides added and removed, the request they make, family
filtering, the thumbnail made off the UI thread, the guide limit, a plugin generator, and saved guides restored."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from PySide6.QtCore import Qt

from studio.core import control
from studio.core.control import MAX_GUIDES, ControlGuide
from studio.core.errors import InvalidRequest
from studio.core.model_library import LibraryItem
from studio.core.models import ModelEntry
from studio.core.settings_sections import GenerationDefaults
from studio.engine.control_nets import control_pictures
from studio.plugin_host.registry import GENERATOR, Contribution
from studio.ui import control_picture
from studio.ui.control_box import NO_CONTROLNETS
from studio.ui.prompt_panel import PromptPanel

WAIT_MS = 10_000
MODELS = Path("/models")


def _item(name: str, kind: str, family: str, folder: str) -> LibraryItem:
    return LibraryItem(name, MODELS / folder / f"{name}.safetensors", kind, family, kind, 1, "models folder")


SD15 = _item("dreamshaper_8", "checkpoint", "sd1", "checkpoints")
SDXL = _item("juggernaut_xl", "checkpoint", "sdxl", "checkpoints")
CANNY15 = _item("control_v11p_sd15_canny", "controlnet", "sd1", "controlnet")
LINEART15 = _item("control_v11p_sd15_lineart", "controlnet", "sd1", "controlnet")
CANNYXL = _item("controlnet-canny-sdxl-1.0", "controlnet", "sdxl", "controlnet")


@pytest.fixture
def panel(qtbot, qt_loop) -> PromptPanel:  # noqa: ANN001
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_models([ModelEntry(i.name, i.path, i.label) for i in (SD15, SDXL)], str(SD15.path), str(MODELS))
    panel.control_box.set_library([SD15, SDXL, CANNY15, LINEART15, CANNYXL])
    panel.prompt_edit.setPlainText("a cat")
    panel.resize(360, 900)
    panel.show()
    return panel


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "sketch.png"
    image = Image.new("RGB", (96, 64), "white")
    image.paste((0, 0, 0), (20, 10, 70, 50))
    image.save(path)
    return path


def _ready(qtbot, row) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: row.picture.state == "ready" and row.picture.preview is not None, timeout=WAIT_MS)


def test_guides_are_added_and_removed_and_go_into_the_request_in_order(qtbot, panel, picture):  # noqa: ANN001
    box = panel.control_box
    assert panel.build_request(None).controls == ()
    canvas, read_in = Image.new("RGB", (64, 64), "gray"), []
    # As the window's source does: a copy of the canvas picture (made in a worker thread: a 4096² one takes a while).
    panel.image_sources = lambda: [("Canvas picture", lambda: read_in.append(threading.current_thread())
                                    or canvas.copy())]
    first = box.add()
    assert (first.model(), first.preprocessor()) == (CANNY15.name, "canny")  # the first that fits, and its edges
    qtbot.mouseClick(box.add_button, Qt.MouseButton.LeftButton)
    second = box.rows[1]
    second.select_model(LINEART15.name)
    second.preprocessor_combo.setCurrentIndex(second.preprocessor_combo.findData("invert"))
    second.weight_spin.setValue(0.6)
    second.end_spin.setValue(0.8)
    first.picture.use_file(picture)
    qtbot.mouseClick(second.picture.canvas_button, Qt.MouseButton.LeftButton)
    _ready(qtbot, first)
    _ready(qtbot, second)
    guides = panel.build_request(None).controls
    assert [(g.model, g.preprocessor, g.weight, g.start, g.end) for g in guides] == [
        (CANNY15.name, "canny", 1.0, 0.0, 1.0), (LINEART15.name, "invert", 0.6, 0.0, 0.8)]
    assert guides[0].image.size == (96, 64) and guides[0].image_path == str(picture)
    assert guides[1].image.tobytes() == canvas.tobytes() and read_in != [threading.main_thread()]
    qtbot.mouseClick(first.remove_button, Qt.MouseButton.LeftButton)
    assert box.rows == [second]
    assert [g.model for g in panel.build_request(None).controls] == [LINEART15.name]
    second.set_enabled(False)  # kept, but left out of the job
    assert panel.build_request(None).controls == () and len(box.rows) == 1


def test_the_part_of_the_steps_a_guide_steers_in_is_labelled_and_shown_as_percentages(qtbot, panel):  # noqa: ANN001
    """A row labelled "Steps" held "0.00 to 1.00" (fractions of the steps, read as step counts): it is labelled
    "Active" and shows "0% to 100%"; typed percentages become the job's fractions."""
    from PySide6.QtWidgets import QLabel

    row = panel.control_box.add()
    labels = [label.text() for label in row.findChildren(QLabel)]
    assert "Active" in labels and "Steps" not in labels
    assert (row.start_spin.text(), row.end_spin.text()) == ("0%", "100%")
    row.start_spin.lineEdit().selectAll()
    qtbot.keyClicks(row.start_spin, "35")
    row.start_spin.interpretText()
    row.end_spin.setValue(0.8)
    assert (row.start_spin.text(), row.end_spin.text()) == ("35%", "80%")
    assert (row.guide().start, row.guide().end) == (0.35, 0.8)


def test_canny_thresholds_show_only_for_canny(qtbot, panel, picture):  # noqa: ANN001
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("none"))
    qtbot.waitUntil(row.isVisible)  # a widget added to a shown layout is shown by a queued call
    low = row.low_spin
    assert not low.isVisibleTo(panel)
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("canny"))
    assert low.isVisibleTo(panel) and row.high_spin.isVisibleTo(panel)
    tip = row.preprocessor_combo.itemData(row.preprocessor_combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert tip == control.PREPROCESSORS["canny"]
    row.low_spin.setValue(50)
    row.high_spin.setValue(120)
    row.high_spin.setValue(30)  # never below the low one: the values stay a job's
    assert (row.guide().low_threshold, row.guide().high_threshold) == (50, 50)
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("invert"))
    assert not low.isVisibleTo(panel)


def test_controlnets_of_another_family_are_greyed_and_refused(qtbot, panel, picture):  # noqa: ANN001
    row = panel.control_box.add()
    combo = row.model_combo
    enabled = {combo.itemText(i): combo.model().item(i).isEnabled() for i in range(1, combo.count())}
    assert enabled == {CANNY15.name: True, LINEART15.name: True, f"{CANNYXL.name}  ·  SDXL": False}
    row.picture.use_file(picture)
    _ready(qtbot, row)
    panel.model_picker.select_model(str(SDXL.path))
    enabled = {combo.itemText(i): combo.model().item(i).isEnabled() for i in range(1, combo.count())}
    assert enabled[CANNYXL.name] and not enabled[f"{CANNY15.name}  ·  SD 1.x"]
    assert row.model() == CANNY15.name  # the choice stays, and is said to be wrong
    assert "is for SD 1.x models" in row.picture.status.text()
    with pytest.raises(InvalidRequest, match="control_v11p_sd15_canny is for SD 1.x models, and the chosen model "
                                             "is SDXL"):
        panel.build_request(None)
    row.select_model(CANNYXL.name)
    assert panel.build_request(None).controls[0].model == CANNYXL.name
    row.select_model("control_sd15_depth")  # not in the library: listed by its name
    assert row.model_combo.currentText() == "control_sd15_depth (not in the library)"


def test_a_controlnet_whose_family_is_not_known_can_be_chosen_for_any_model(qtbot, panel, picture):  # noqa: ANN001
    """Greyed as "for unknown models" while Generate would take it (the engine checks its width when the job runs):
    a ControlNet Studio cannot place fits every model, as a model Studio cannot place takes every ControlNet."""
    odd = _item("custom-controlnet", "controlnet", "", "controlnet")
    panel.control_box.set_library([SD15, SDXL, odd])
    row = panel.control_box.add()
    combo = row.model_combo
    assert [(combo.itemText(i), combo.model().item(i).isEnabled()) for i in range(1, combo.count())] == [
        ("custom-controlnet", True)]
    assert row.model() == "custom-controlnet"  # a new guide starts with it
    row.picture.use_file(picture)
    _ready(qtbot, row)
    assert row.picture.status.text() and "is for" not in row.picture.status.text()
    assert panel.build_request(None).controls[0].model == "custom-controlnet"


def test_the_thumbnail_is_made_off_the_ui_thread(qtbot, panel, picture, monkeypatch):  # noqa: ANN001
    threads: list[threading.Thread] = []
    real = control.preprocess

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(control, "preprocess", spy)
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("invert"))
    row.picture.use_file(picture)
    _ready(qtbot, row)
    assert threads and threading.main_thread() not in threads
    # As the ControlNet will see it: inverted (the white paper black), cropped square to the 512x512 job.
    assert row.picture.preview.size == (control_picture.THUMB, control_picture.THUMB)
    assert row.picture.preview.getpixel((0, 0)) == (0, 0, 0)
    assert not row.picture.thumb.pixmap().isNull()


def _guide_of_a_line_near_the_left(qtbot, panel, tmp_path):  # noqa: ANN001, ANN202
    """A 1024x512 picture with a white line near its left edge, saved, and a guide taking it as it is."""
    canvas = Image.new("RGB", (1024, 512))
    ImageDraw.Draw(canvas).line((60, 0, 60, 511), fill="white", width=9)
    canvas.save(tmp_path / "canvas.png")
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("none"))
    row.picture.use_file(tmp_path / "canvas.png")
    _ready(qtbot, row)
    return canvas, row


def test_the_thumbnail_fits_the_guide_as_the_next_job_will(qtbot, panel, tmp_path):  # noqa: ANN001
    """A guide made from a 1024x512 canvas picture, a line near its left edge, with the Size boxes at 512x512: a new
    picture crops it to the middle square (the line cut off); inpainting works at the canvas picture's size (all of
    it); img2img stretches the canvas picture to 512x512, and the guide with it. The thumbnail is what the engine's
    own fitting makes of each job."""
    panel.width_spin.setValue(512)
    panel.height_spin.setValue(512)
    canvas, row = _guide_of_a_line_near_the_left(qtbot, panel, tmp_path)

    def line_in_thumbnail() -> bool:
        return bool(np.asarray(row.picture.preview.convert("L")).max() > 128)

    def as_the_engine_sees(request, start: tuple[int, int] | None) -> bytes:  # noqa: ANN001
        area = None if start is None else (start, (0, 0, *start))
        seen = control_pictures(request.controls, (request.width, request.height), area)[0]
        return ImageOps.contain(seen, (control_picture.THUMB,) * 2, Image.Resampling.BILINEAR).tobytes()

    assert row.picture.preview.size == (96, 96) and not line_in_thumbnail()
    assert row.picture.preview.tobytes() == as_the_engine_sees(panel.build_request(None), None)
    panel.set_canvas_size(canvas.size)
    mask = Image.new("L", canvas.size, 255)
    panel.set_mask_active(True)  # inpainting: the job has the canvas picture's size
    qtbot.waitUntil(lambda: row.picture.preview.size == (96, 48), timeout=WAIT_MS)
    assert line_in_thumbnail()
    assert row.picture.preview.tobytes() == as_the_engine_sees(panel.build_request(canvas, mask), canvas.size)
    panel.set_mask_active(False)
    panel.use_canvas_check.setChecked(True)  # img2img at the Size boxes' 512x512, from the canvas picture
    qtbot.waitUntil(lambda: row.picture.preview.size == (96, 96), timeout=WAIT_MS)
    assert line_in_thumbnail()
    request = panel.build_request(canvas)
    assert (request.width, request.height) == (512, 512) and request.init_image is canvas
    assert row.picture.preview.tobytes() == as_the_engine_sees(request, canvas.size)


def test_a_masked_area_job_shows_the_part_of_the_guide_around_the_mask(qtbot, panel, tmp_path):  # noqa: ANN001
    """Inpainting the masked area only works on the mask's box plus padding at the model's size: the thumbnail shows
    that part of the guide, as the engine's own plan cuts it; painting elsewhere, or the whole picture, follows."""
    from studio.engine.inpainting import plan_inpaint

    canvas, row = _guide_of_a_line_near_the_left(qtbot, panel, tmp_path)
    panel.set_canvas_size(canvas.size)
    mask = np.zeros((512, 1024), np.uint8)
    mask[200:300, 700:900] = 255  # far from the line
    panel.set_mask_active(True, mask)

    def as_the_engine_sees() -> bytes:
        request = panel.build_request(canvas, Image.fromarray(mask))
        plan = plan_inpaint(canvas, request.mask, request.inpaint, 512)
        seen = control_pictures(request.controls, plan.work_size, (canvas.size, plan.box))[0]
        return ImageOps.contain(seen, (control_picture.THUMB,) * 2, Image.Resampling.BILINEAR).tobytes()

    def shown(expected: bytes) -> bool:
        return row.picture.preview is not None and row.picture.preview.tobytes() == expected

    qtbot.waitUntil(lambda: shown(as_the_engine_sees()), timeout=WAIT_MS)
    assert row.picture.preview.size == (96, 59) and np.asarray(row.picture.preview.convert("L")).max() == 0
    mask[:] = 0
    mask[100:400, 40:120] = 255  # a stroke over the line: the brush edits the canvas's mask in place
    panel.set_mask_active(True, mask)
    qtbot.waitUntil(lambda: shown(as_the_engine_sees()), timeout=WAIT_MS)
    assert np.asarray(row.picture.preview.convert("L")).max() > 128
    panel.inpaint_box.area_combo.setCurrentIndex(1)  # the whole picture: all of the guide
    qtbot.waitUntil(lambda: row.picture.preview.size == (96, 48), timeout=WAIT_MS)
    assert shown(as_the_engine_sees())


def test_a_picture_file_is_read_off_the_ui_thread_and_generate_waits_for_it(qtbot, panel, picture,  # noqa: ANN001
                                                                           monkeypatch):
    release, threads = threading.Event(), []
    real = control_picture.open_image

    def slow(path):  # noqa: ANN001, ANN202 - a huge picture taking its time to decode
        threads.append(threading.current_thread())
        release.wait(WAIT_MS / 1000)
        return real(path)

    monkeypatch.setattr(control_picture, "open_image", slow)
    row = panel.control_box.add()
    row.picture.use_file(picture)
    qtbot.waitUntil(lambda: bool(threads), timeout=WAIT_MS)
    assert threads[0] is not threading.main_thread() and row.picture.thumb.text() == "Reading…"
    with pytest.raises(InvalidRequest, match="still being read"):
        panel.build_request(None)
    release.set()
    _ready(qtbot, row)
    assert panel.build_request(None).controls[0].image.size == (96, 64)


def test_at_most_max_guides_and_a_word_when_the_library_has_none(qtbot, panel):  # noqa: ANN001
    box = panel.control_box
    for _ in range(MAX_GUIDES):
        assert box.add_button.isEnabled()
        box.add_button.click()
    assert len(box.rows) == MAX_GUIDES and not box.add_button.isEnabled()
    assert f"At most {MAX_GUIDES}" in box.add_button.toolTip()
    assert box.add() is None
    box.remove(box.rows[0])
    assert box.add_button.isEnabled()
    box.set_library([SD15])
    assert not box.add_button.isEnabled()
    assert box.add_button.toolTip() == NO_CONTROLNETS
    box.set_records([])
    assert box.hint.isVisibleTo(panel) and box.hint.text() == NO_CONTROLNETS


def test_a_plugin_generator_greys_the_guides_and_takes_none(qtbot, panel, picture):  # noqa: ANN001
    panel.set_generators([Contribution(GENERATOR, "noise", "Noise", "x:y")])
    row = panel.control_box.add()
    row.picture.use_file(picture)
    _ready(qtbot, row)
    panel.model_picker.select_generator("noise")
    box = panel.control_box
    assert not box.guides_widget.isEnabled() and not box.add_button.isEnabled()
    assert "Noise does not use them" in box.toolTip() and box.hint.isVisibleTo(panel)
    assert panel.build_request(None).controls == ()
    panel.model_picker.select_model(str(SD15.path))
    assert box.guides_widget.isEnabled() and len(panel.build_request(None).controls) == 1


def test_saved_guides_come_back_with_their_pictures_and_a_missing_one_is_said(qtbot, panel, picture,  # noqa: ANN001
                                                                              tmp_path):
    row = panel.control_box.add()
    row.preprocessor_combo.setCurrentIndex(row.preprocessor_combo.findData("canny"))
    row.low_spin.setValue(60)
    row.picture.use_file(picture)
    _ready(qtbot, row)
    gone = {"model": "control_sd15_depth", "preprocessor": "none", "weight": 0.5, "start": 0.2, "end": 0.9,
            "image": str(tmp_path / "gone.png"), "enabled": False}
    saved = panel.defaults().model_copy(update={"controls": [*panel.defaults().controls, gone]})
    saved = GenerationDefaults.model_validate(saved.model_dump())  # as the settings file reads it back
    other = PromptPanel()
    qtbot.addWidget(other)
    other.set_models([ModelEntry(SD15.name, SD15.path)], str(SD15.path), str(MODELS))
    other.control_box.set_library([SD15, CANNY15])
    other.load_defaults(saved)
    first, second = other.control_box.rows
    _ready(qtbot, first)
    assert (first.model(), first.preprocessor(), first.low_spin.value()) == (CANNY15.name, "canny", 60)
    assert first.picture.path == str(picture) and first.picture.image.size == (96, 64)
    qtbot.waitUntil(lambda: second.picture.state == "missing", timeout=WAIT_MS)
    assert second.model_combo.currentText() == "control_sd15_depth (not in the library)"
    assert (second.weight_spin.value(), second.start_spin.value(), second.end_spin.value()) == (0.5, 0.2, 0.9)
    assert second.picture.thumb.text() == "Picture missing" and not second.enabled()
    assert other.build_request(None).controls[0].model == CANNY15.name  # the one switched off is left out
    second.set_enabled(True)
    with pytest.raises(InvalidRequest, match="Control guide 2's picture .*gone.png is missing"):
        other.build_request(None)


def test_malformed_saved_guides_are_dropped_not_the_settings():  # noqa: ANN001
    defaults = GenerationDefaults.model_validate({"controls": [
        {"model": "a", "weight": 7}, "nonsense", {"model": "b", "preprocessor": "invert"}, *[{"model": "c"}] * 4]})
    assert [c["model"] for c in defaults.controls] == ["b", "c", "c"]
    assert ControlGuide.from_record(defaults.controls[0]).preprocessor == "invert"


def test_canvas_with_no_canvas_picture_says_so(qtbot, panel, picture, monkeypatch):  # noqa: ANN001
    release, real = threading.Event(), control_picture.open_image
    monkeypatch.setattr(control_picture, "open_image", lambda path: release.wait(WAIT_MS / 1000) and real(path))
    row = panel.control_box.add()
    row.picture.use_file(picture)
    qtbot.waitUntil(lambda: row.picture.state == "loading", timeout=WAIT_MS)
    panel.image_sources = lambda: [("Canvas picture", lambda: None)]  # an empty canvas
    row.picture.canvas_button.click()
    qtbot.waitUntil(lambda: "no picture on the canvas" in row.picture.status.text(), timeout=WAIT_MS)
    assert row.picture.state == "empty"  # the file it gave up is not left "being read"
    release.set()  # ... nor shown when it has been read after all: the later choice wins
    qtbot.waitUntil(lambda: len(panel.control_box._tasks) == 0, timeout=WAIT_MS)  # the read has ended
    assert row.picture.state == "empty"
    with pytest.raises(InvalidRequest, match="has no control picture"):
        panel.build_request(None)


@pytest.mark.parametrize("preprocessor", [control.CANNY, control.INVERT])
def test_thin_lines_of_a_big_picture_stay_bright_in_the_thumbnail(preprocessor: str) -> None:
    sketch = Image.new("RGB", (1024, 1024), "white")
    ImageDraw.Draw(sketch).line((0, 500, 1023, 500), fill="black", width=1)  # one pixel wide, as Canny finds
    thumb, _ = control_picture.preview(ControlGuide("net", sketch, preprocessor), 1024, 1024)
    assert max(thumb.size) == control_picture.THUMB
    assert np.asarray(thumb.convert("L")).max() >= 192  # averaged down, it faded to a dim grey


def _weights(path: Path, keys: dict[str, tuple[int, ...]]) -> str:
    from safetensors.numpy import save_file

    save_file({key: np.zeros(shape, np.uint8) for key, shape in keys.items()}, str(path))
    return str(path)


def test_a_controlnet_from_outside_the_library_is_said_to_be_what_it_is_once_chosen(qtbot, panel, tmp_path,  # noqa: ANN001
                                                                                     picture, monkeypatch):
    """A recipe's ControlNet given by a path that holds an SD model, a LoRA or nothing is said so on its entry and
    the card as soon as it is chosen (the header read off the window's thread), not when Generate is refused."""
    unet = "model.diffusion_model."
    checkpoint = _weights(tmp_path / "dreamshaper_8.safetensors", {
        unet + "input_blocks.0.0.weight": (1, 4, 1, 1),
        unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 768),
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (1, 1)})
    lora = _weights(tmp_path / "ink.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768)})
    controlnet = _weights(tmp_path / "my_depth.safetensors", {
        "control_model.input_hint_block.0.weight": (1, 3, 1, 1),
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 768)})
    missing = str(tmp_path / "gone" / "control_sd15_depth.safetensors")
    from studio.core.outside_library import outside_model
    from studio.ui import outside_entries

    read_in = []
    monkeypatch.setattr(outside_entries, "outside_model", lambda *a: read_in.append(threading.current_thread())
                        or outside_model(*a))
    row = panel.control_box.add()
    row.picture.use_file(picture)
    _ready(qtbot, row)
    cases = {checkpoint: ("dreamshaper_8 (not a ControlNet)",
                          "dreamshaper_8.safetensors is a Stable Diffusion model (SD 1.x), not a ControlNet."),
             lora: ("ink (not a ControlNet)", "ink.safetensors is a LoRA (SD 1.x), not a ControlNet."),
             missing: ("control_sd15_depth (not found)", f"control_sd15_depth.safetensors was not found in "
                                                         f"{tmp_path / 'gone'}."),
             controlnet: ("my_depth (not in the library)", None)}
    for value, (entry, sentence) in cases.items():
        row.select_model(value)
        qtbot.waitUntil(lambda entry=entry: row.model_combo.currentText() == entry, timeout=WAIT_MS)
        assert row.model() == value
        assert row.problem("Guide 1") == sentence
        if sentence is not None:
            assert row.picture.status.text() == sentence
            assert row.model_combo.itemData(row.model_combo.currentIndex(), Qt.ItemDataRole.ToolTipRole) == sentence
    assert read_in and threading.main_thread() not in read_in


def test_a_scan_of_the_models_folder_lists_each_guides_controlnets_once(qtbot, panel, monkeypatch):  # noqa: ANN001
    from studio.ui.control_guide_row import GuideRow

    row = panel.control_box.add()
    listed, real = [], GuideRow.set_models
    monkeypatch.setattr(GuideRow, "set_models", lambda self, items, family: listed.append(family) or
                        real(self, items, family))
    # As each scan's answer is shown (ModelActions.show_library): the picker refilled, the same model picked.
    panel.set_models([ModelEntry(i.name, i.path, i.label) for i in (SD15, SDXL)], "", str(MODELS))
    panel.control_box.set_library([SD15, SDXL, CANNY15, LINEART15, CANNYXL])
    assert listed == ["sd1"] and row.model() == CANNY15.name  # the guide keeps its ControlNet
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(str(SDXL.path)))  # another model: listed again
    assert listed == ["sd1", "sdxl"]
