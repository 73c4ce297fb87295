"""Load parameters puts a picture's source back on the canvas: never under a brush stroke still being painted; it
and Run again say which LoRA, VAE or ControlNet is another file now."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QMessageBox
from recorded_files import made_with_files, weights_file

import studio.core.hashing
from studio.core.hashing import lora_hash
from studio.services.history_store import HistoryEntry
from studio.ui import history_actions
from studio.ui.canvas_tools import BRUSH


@pytest.mark.parametrize("with_mask", [True, False], ids=["inpaint", "img2img"])
def test_a_source_restored_during_a_stroke_waits_for_the_brush(qtbot, window, tmp_path, with_mask):  # noqa: ANN001
    doc, canvas = window.document, window.canvas
    doc.set_image(Image.new("RGB", (256, 256), (10, 20, 30)), "Open")
    source = tmp_path / "source.png"
    Image.new("RGB", (128, 96), (200, 0, 0)).save(source)
    mask_path = tmp_path / "mask.png"
    Image.new("L", (128, 96), 0).save(mask_path)
    entry = HistoryEntry(prompt="x", image_path=str(source), id=1, source_image_path=str(source),
                         source_mask_path=str(mask_path) if with_mask else "")
    canvas.set_tool(BRUSH)
    canvas.set_brush(size=20, hardness=1.0)
    viewport = canvas.viewport()

    def at(x: float, y: float):  # noqa: ANN202
        return canvas.mapFromScene(QPointF(x, y))

    task = window.actions_.run(window.history_actions.load_parameters(entry))
    assert not task.done()  # the source is read in a worker: the person starts painting meanwhile
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=at(200, 200))
    qtbot.mouseMove(viewport, at(210, 200))
    qtbot.wait(500)  # long enough for the source to be read and converted
    assert doc.size == (256, 256) and not task.done()  # the picture waits for the brush
    qtbot.mouseMove(viewport, at(220, 210))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=at(220, 210))
    qtbot.waitUntil(task.done, timeout=20_000)
    label = "Restore inpaint source" if with_mask else "Restore img2img source"
    assert doc.history_labels() == ["Open", "Paint mask", label]
    assert doc.size == (128, 96) and not doc.mask.any()  # the stroke did not go on into the restored mask
    assert doc.undo() and doc.size == (256, 256)
    assert doc.mask[200, 200] and doc.mask[200, 210] and doc.mask[210, 220]  # all the stroke, on its picture
    assert doc.undo() and not doc.mask.any()
    assert doc.redo() and doc.redo() and doc.size == (128, 96) and doc.history_position == 3


def test_run_again_and_load_parameters_name_a_lora_that_is_another_file_now(qtbot, window, tmp_path,  # noqa: ANN001
                                                                           tiny_model_dir, monkeypatch):
    models = window.settings.models_dir
    entry = replace(made_with_files(models, tmp_path / "out", vae=False, controlnet=False),
                    model_path=str(tiny_model_dir))
    then = lora_hash(models / "loras" / "ink.safetensors")
    now = lora_hash(weights_file(models / "loras" / "ink.safetensors", 9))
    sentence = (f"The LoRA 'ink' is not the file this picture was made with (hash {then}, now {now}): the result "
                "will differ.")
    hashed_on: list[str] = []
    tensor_sha256 = studio.core.hashing.tensor_sha256
    monkeypatch.setattr(studio.core.hashing, "tensor_sha256",
                        lambda path: hashed_on.append(threading.current_thread().name) or tensor_sha256(path))
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *a: asked.append(text) or QMessageBox.StandardButton.No)
    submitted: list = []
    monkeypatch.setattr(window.service, "submit", submitted.append)
    window.gallery.run_again_requested.emit(entry)
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    assert asked == [f"{sentence} Run it anyway?"]  # where and as the checkpoint's warning is asked
    qtbot.wait(100)
    assert submitted == []  # the person said no
    assert hashed_on and threading.main_thread().name not in hashed_on  # a worker hashed it, not the window

    window.gallery.load_parameters_requested.emit(entry)
    qtbot.waitUntil(lambda: sentence in window.status.message_label.text(), timeout=10_000)
    assert window.status.message_label.text() == f"{sentence} Loaded the parameters of that picture."
    assert [c.name for c in window.prompt_panel.lora_box.choices()] == ["ink"]  # the fields are filled all the same


def test_run_again_names_a_gone_model_and_the_picture_as_the_gallery_shows_it(qtbot, window, tmp_path,  # noqa: ANN001
                                                                              tiny_model_dir, monkeypatch):
    """It said "The model … used by history entry 1 no longer exists.": the gallery never shows an entry's id."""
    gone = tmp_path / "models" / "dreamy-v2.safetensors"
    entry = HistoryEntry("a red fox sleeping in deep snow under tall pine trees at dawn", model_name="dreamy-v2",
                         model_path=str(gone), seed=7, steps=4, width=64, height=64, created=1_700_000_000, id=1)
    submitted: list = []
    monkeypatch.setattr(window.service, "submit", submitted.append)
    made = datetime.fromtimestamp(entry.created).strftime("%Y-%m-%d %H:%M")
    window.gallery.run_again_requested.emit(entry)
    status = window.status.message_label
    qtbot.waitUntil(lambda: "no longer exists" in status.text(), timeout=10_000)
    assert status.text().startswith("The model dreamy-v2 is gone")  # said first: the status line cuts a path off
    assert status.text() == ("The model dreamy-v2 is gone, so the picture “a red fox sleeping in deep snow under…” "
                             f"from {made} cannot be run again; {gone} no longer exists.")
    assert submitted == [] and status.property("error") is True

    asked: list[str] = []  # a model that is another file now is named so too, in the question before the run
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *a: asked.append(text) or QMessageBox.StandardButton.No)
    window.gallery.run_again_requested.emit(replace(entry, model_path=str(tiny_model_dir), model_hash="0000000000"))
    qtbot.waitUntil(lambda: bool(asked), timeout=10_000)
    assert asked[0].startswith(f"The model file changed since the picture “a red fox sleeping in deep snow under…” "
                               f"from {made} was made (hash 0000000000 then, ")
    assert "history entry" not in asked[0] and submitted == []


@pytest.mark.parametrize(("prompt", "named"), [
    ("a cat", "the picture “a cat”"),
    ("  a   cat\non a mat ", "the picture “a cat on a mat”"),
    ("", "the picture"),
    ("x" * 60, "the picture “" + "x" * 39 + "…”"),
])
def test_an_entry_is_named_by_its_prompt_shortened_and_its_time(prompt, named):  # noqa: ANN001
    from studio.ui.gallery_model import entry_name

    made = datetime.fromtimestamp(1_700_000_000).strftime("%Y-%m-%d %H:%M")
    assert entry_name(HistoryEntry(prompt, created=1_700_000_000, id=9)) == f"{named} from {made}"


@pytest.mark.parametrize(("outcome", "named"), [
    ("failed", "the failed job “a cat”"), ("cancelled", "the cancelled job “a cat”"), ("ok", "the picture “a cat”"),
])
def test_a_job_without_a_picture_is_named_as_the_job_it_was(outcome, named):  # noqa: ANN001
    from studio.ui.gallery_model import entry_name

    made = datetime.fromtimestamp(1_700_000_000).strftime("%Y-%m-%d %H:%M")
    entry = HistoryEntry("a cat", created=1_700_000_000, id=9, outcome=outcome)
    assert entry_name(entry) == f"{named} from {made}"
    assert entry_name(replace(entry, prompt="")) == f"{named.split(' “')[0]} from {made}"


def test_load_parameters_says_so_at_once_and_adds_only_the_latest_load_s_file_warnings(qtbot, window,  # noqa: ANN001
                                                                                       monkeypatch):
    hashed = {"A": threading.Event(), "B": threading.Event()}
    missing = "The LoRA 'ink' this picture was made with (hash abc) is missing."

    def check(entry, models_root, cache, **named):  # noqa: ANN001, ANN003, ANN202 - a big checkpoint hashed for the first time
        hashed[entry.prompt].wait(20)
        return [f"{entry.prompt}: {missing}"]

    monkeypatch.setattr(history_actions, "changed_file_warnings", check)
    status, actions = window.status.message_label, window.history_actions
    first = window.actions_.run(actions.load_parameters(HistoryEntry("A", id=1)))
    qtbot.waitUntil(lambda: status.text() == "Loaded the parameters of that picture.", timeout=10_000)
    assert not first.done()  # said while its files are still being hashed
    second = window.actions_.run(actions.load_parameters(HistoryEntry("B", id=2)))
    qtbot.waitUntil(lambda: window.prompt_panel.prompt_edit.toPlainText() == "B", timeout=10_000)
    hashed["B"].set()
    qtbot.waitUntil(second.done, timeout=10_000)
    assert status.text() == f"B: {missing} Loaded the parameters of that picture."
    hashed["A"].set()  # the first picture's check ends last: its warning must not reach the second's line
    qtbot.waitUntil(first.done, timeout=10_000)
    assert status.text() == f"B: {missing} Loaded the parameters of that picture."


def test_a_picture_dropped_on_the_prompt_box_names_its_lora_that_is_another_file_now(qtbot, window, tmp_path,  # noqa: ANN001
                                                                                   monkeypatch):
    models = window.settings.models_dir
    picture = made_with_files(models, tmp_path / "out", vae=False, controlnet=False).image_path
    then = lora_hash(models / "loras" / "ink.safetensors")
    now = lora_hash(weights_file(models / "loras" / "ink.safetensors", 9))
    hashed_on: list[str] = []
    tensor_sha256 = studio.core.hashing.tensor_sha256
    monkeypatch.setattr(studio.core.hashing, "tensor_sha256",
                        lambda path: hashed_on.append(threading.current_thread().name) or tensor_sha256(path))
    window.prompt_panel.picture_dropped.emit(Path(picture))
    status = window.status.message_label
    qtbot.waitUntil(lambda: "is not the file" in status.text(), timeout=10_000)
    warning = f"The LoRA 'ink' is not the file this picture was made with (hash {then}, now {now}): the result will " \
              "differ."
    assert status.text().startswith(warning) and "Loaded the parameters of fox.png (made by Studio)." in status.text()
    # What the status bar shows of it in the window (cut to its width, with "…"): the warning whole, which after
    # "Loaded the parameters of …" lost its end.
    assert QLabel.text(status).startswith(warning)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a fox"  # the fields are filled all the same
    assert hashed_on and threading.main_thread().name not in hashed_on


def test_a_picture_dropped_while_a_load_is_read_leaves_the_later_load_s_fields(qtbot, window, tmp_path,  # noqa: ANN001
                                                                             monkeypatch):
    read = threading.Event()
    inspect = history_actions.read_dropped
    monkeypatch.setattr(history_actions, "read_dropped", lambda *args: read.wait(20) and inspect(*args))
    picture = made_with_files(window.settings.models_dir, tmp_path / "out", controlnet=False).image_path
    dropped = window.actions_.run(window.history_actions.load_from_picture(Path(picture)))
    loaded = window.actions_.run(window.history_actions.load_parameters(HistoryEntry("a castle", id=3)))
    qtbot.waitUntil(loaded.done, timeout=10_000)
    read.set()
    qtbot.waitUntil(dropped.done, timeout=10_000)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a castle"
    assert window.status.message_label.text() == "Loaded the parameters of that picture."


@pytest.mark.parametrize(("settings_line", "said"), [
    ("Steps: 28, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 6, Seed: 5, Size: 64x96",
     ["Studio has no DPM++ SDE Karras sampler; kept DDIM."]),
    ("Steps: 28, Sampler: Euler, Schedule type: Exponential, CFG scale: 6, Seed: 5, Size: 64x96",
     ["Studio has no Euler sampler with the Exponential schedule; kept DDIM."]),
    ("Steps: 100000, Sampler: Euler a, CFG scale: -5, Seed: 99999999999, Size: 99999x3",
     ["Steps 100000 is more than 1000 (the most); kept 30.", "CFG scale -5 is less than 0 (the least); kept 4.5.",
      "Seed 99999999999 is more than 4294967295 (the most); kept 1234.",
      "Size 99999x3 is not from 64 to 4096 pixels a side; kept 512x768."]),
])
def test_a_dropped_picture_s_values_studio_cannot_take_are_each_said_with_what_was_kept(  # noqa: ANN001
        qtbot, window, tmp_path, settings_line, said):
    """An AUTOMATIC1111 picture with a sampler Studio lacks, or values past its limits, was 'Loaded' with no word
    while the old sampler and values stayed."""
    from PIL.PngImagePlugin import PngInfo

    panel = window.prompt_panel
    panel.scheduler_combo.setCurrentText("DDIM")
    panel.steps_spin.setValue(30)
    panel.cfg_spin.setValue(4.5)
    panel.seed_edit.setText("1234")
    panel.width_spin.setValue(512)
    panel.height_spin.setValue(768)
    text = PngInfo()
    text.add_text("parameters", f"a castle\nNegative prompt: ugly\n{settings_line}")
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png", pnginfo=text)
    window.prompt_panel.picture_dropped.emit(tmp_path / "x.png")
    status = window.status.message_label
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == " ".join(["Loaded the parameters of x.png (made by AUTOMATIC1111).", *said])
    assert panel.prompt_edit.toPlainText() == "a castle" and panel.negative_edit.toPlainText() == "ugly"


@pytest.mark.parametrize(("model_line", "said"), [
    ("Model: SD15\\Tiny-SD.safetensors", ""),
    ("Model: {folder}_Tiny-SD", ""),  # older A1111's name of a checkpoint in a subfolder: SD15_x for SD15/x
    ("Model: {folder}_tiny-sd, Model hash: {hash}", ""),  # found by that name, not "renamed" for its hash
    ("Model: renamed_since, Model hash: {hash}",
     " It names the model 'renamed_since'; tiny-sd has the same hash, so it was picked.")])
def test_a_dropped_picture_s_model_is_found_by_its_file_name_or_its_hash(qtbot, window, tmp_path,  # noqa: ANN001
                                                                        model_line, said):
    """ComfyUI names a checkpoint with its folder and extension, A1111 a renamed file by its hash: both were "not in
    the model list" though the list has it."""
    from PIL.PngImagePlugin import PngInfo

    panel = window.prompt_panel
    listed = panel.model_combo.currentData()
    digest = studio.core.hashing.model_hash(Path(listed), window.cache_dir / "model-hashes.json")
    panel.steps_spin.setValue(30)  # a different model would still be seen: select_model answers for this one
    text = PngInfo()
    text.add_text("parameters", f"a castle\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 5, Size: 64x64, "
                                f"{model_line.format(hash=digest, folder=Path(listed).parent.name)}")
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png", pnginfo=text)
    panel.picture_dropped.emit(tmp_path / "x.png")
    status = window.status.message_label
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == "Loaded the parameters of x.png (made by AUTOMATIC1111)." + said
    assert panel.model_combo.currentData() == listed and panel.steps_spin.value() == 12


@pytest.mark.parametrize("recorded_in", ["params", "picture"])
def test_load_parameters_finds_a_lora_renamed_since_by_its_recorded_hash(qtbot, window, tmp_path,  # noqa: ANN001
                                                                          recorded_in):
    """A dropped picture's LoRA renamed since (ink, now ink_final) was found by its hash, but Load parameters of a
    history entry left the row "ink", which the library does not have, so Generate refused it."""
    from model_files import aliased_lora
    from PIL.PngImagePlugin import PngInfo

    from studio.core.requests import LoraChoice

    ink = aliased_lora(window.settings.models_dir / "loras" / "ink_final.safetensors", "", fill=3)
    window.models.refresh()
    box = window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: len(box._loras) == 1, timeout=10_000)
    if recorded_in == "params":  # as the history records a job: the LoRA as chosen, with its hash
        entry = HistoryEntry("a fox", id=4, params={"loras": [{"name": "ink", "weight": 0.4, "hash": lora_hash(ink)}]})
    else:  # an entry that lists no LoRAs: its picture's recipe does
        text = PngInfo()
        text.add_text("parameters", "a fox <lora:ink:0.4>\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, "
                                    f'Size: 64x64, Lora hashes: "ink: {lora_hash(ink)}"')
        Image.new("RGB", (64, 64)).save(tmp_path / "x.png", pnginfo=text)
        entry = HistoryEntry("a fox", id=4, image_path=str(tmp_path / "x.png"))
    task = window.actions_.run(window.history_actions.load_parameters(entry))
    qtbot.waitUntil(task.done, timeout=20_000)
    assert box.choices() == (LoraChoice(str(ink.resolve()), 0.4),)
    assert [box._library.row_problem(name) for name, _, _ in box._rows] == [None]


@pytest.mark.parametrize(("made", "said"), [
    ({"strength": 0.6}, " It was made from a picture (strength 0.6), which a dropped file does not bring back; "
                        "Load Parameters in the Gallery restores it."),
    ({"strength": 0.75, "mask_blur": 4.0, "inpaint_area": "Only masked"},
     " It was made from a picture and a mask (strength 0.75), which a dropped file does not bring back; Load "
     "Parameters in the Gallery restores them."),
    ({}, "")])
def test_a_dropped_img2img_or_inpaint_picture_says_its_source_is_not_brought_back(qtbot, window, tmp_path,  # noqa: ANN001
                                                                                  made, said):
    """It said only "Loaded the parameters", and Generate then made a picture from the prompt alone."""
    from metadata_images import pillow_png

    from studio.core.metadata import PARAMETERS_CHUNK, STUDIO_CHUNK, Recipe

    panel = window.prompt_panel
    listed = panel.model_combo.currentText()
    recipe = Recipe(prompt="a castle", negative_prompt="", steps=12, sampler="Euler", cfg_scale=6, seed=5, width=64,
                    height=64, model_name=listed, **made)
    pillow_png(tmp_path / "x.png", {STUDIO_CHUNK: recipe.to_json(), PARAMETERS_CHUNK: recipe.to_parameters()})
    panel.picture_dropped.emit(tmp_path / "x.png")
    status = window.status.message_label
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == "Loaded the parameters of x.png (made by Studio)." + said
    assert panel.prompt_edit.toPlainText() == "a castle" and panel.steps_spin.value() == 12


def test_loading_a_picture_computed_in_another_precision_says_the_remake_may_differ(qtbot, window, tmp_path):  # noqa: ANN001
    """Load Parameters or a drop, then Generate, computes in the precision Speed picks now: a bfloat16 picture came
    back in float32 up to 8 grey levels apart, without a word (Run again computes in the recorded one)."""
    from metadata_images import pillow_png

    from studio.core.metadata import PARAMETERS_CHUNK, STUDIO_CHUNK, Recipe

    window.models.gpu_menu.show_device("cpu")  # tests compute float32 on the CPU (STUDIO_CPU_DTYPE)
    panel, status = window.prompt_panel, window.status.message_label
    listed = panel.model_combo.currentData()
    differ = ("It was computed in bfloat16 and Generate computes in float32 on this processor (Settings → GPU sets "
              "it), so the new picture may differ from it by a grey level or so")
    for precision, said in (("bfloat16", f" {differ}; Run again in the Gallery computes as it was."),
                            ("float32", "")):
        entry = HistoryEntry("a fox", model_path=listed, id=1, steps=3, params={"precision": precision})
        window.actions_.run(window.history_actions.load_parameters(entry))
        qtbot.waitUntil(lambda said=said: status.text() == "Loaded the parameters of that picture." + said,
                        timeout=10_000)
    recipe = Recipe(prompt="a castle", negative_prompt="", steps=12, sampler="Euler", cfg_scale=6, seed=5, width=64,
                    height=64, model_name=panel.model_combo.currentText(), precision="bfloat16")
    pillow_png(tmp_path / "x.png", {STUDIO_CHUNK: recipe.to_json(), PARAMETERS_CHUNK: recipe.to_parameters()})
    panel.picture_dropped.emit(tmp_path / "x.png")
    qtbot.waitUntil(lambda: "Loaded the parameters of x.png" in status.text(), timeout=10_000)
    assert status.text() == f"Loaded the parameters of x.png (made by Studio). {differ}."
