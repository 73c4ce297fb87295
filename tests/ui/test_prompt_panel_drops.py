"""A picture dropped on the prompt panel loads its parameters: all of its recipe (what it was made without is
emptied), wherever on the panel it lands, and the canvas is left alone."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from studio.core.images import save_image
from studio.core.metadata import LoraRecord, Recipe


def _a1111_png(path: Path, parameters: str) -> Path:
    text = PngInfo()
    text.add_text("parameters", parameters)
    Image.new("RGB", (64, 64)).save(path, pnginfo=text)
    return path


def _drop_as_qt_does(widget: QWidget, path: Path) -> bool:
    """Drag-enter, move and drop ``path`` at the middle of ``widget`` as Qt delivers them: to the nearest widget
    from there up that accepts drops. False if no widget took it."""
    target = widget
    while target is not None and not target.acceptDrops():
        target = target.parentWidget()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    mime.setText(QUrl.fromLocalFile(str(path)).toString())  # file managers offer the URL as text too
    point = target.mapFromGlobal(widget.mapToGlobal(widget.rect().center()))
    action, button, keys = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(point, action, mime, button, keys)
    enter.setAccepted(False)
    QApplication.sendEvent(target, enter)
    move = QDragMoveEvent(point, action, mime, button, keys)
    move.setAccepted(enter.isAccepted())
    QApplication.sendEvent(target, move)
    if not move.isAccepted():
        return False
    QApplication.sendEvent(target, QDropEvent(QPointF(point), action, mime, button, keys))
    return True


def test_a_dropped_picture_made_without_loras_or_negative_prompt_empties_them(qtbot, window, tmp_path):  # noqa: ANN001
    """The previous picture's LoRA "ink 0.70" and negative prompt stayed, so a remake silently differed."""
    panel, status = window.prompt_panel, window.status.message_label
    recipe = Recipe(prompt="an inked fox", negative_prompt="blurry", steps=2, sampler="Euler", cfg_scale=5, seed=7,
                    width=64, height=64, model_name="tiny-sd", loras=(LoraRecord("ink", "", 0.7),))
    with_lora = save_image(Image.new("RGB", (64, 64)), tmp_path / "inked.png", recipe)
    panel.picture_dropped.emit(with_lora)
    qtbot.waitUntil(lambda: "Loaded the parameters of inked.png" in status.text(), timeout=10_000)
    assert [(c.name, c.weight) for c in panel.lora_box.choices()] == [("ink", 0.7)]
    assert panel.negative_edit.toPlainText() == "blurry"

    plain = _a1111_png(tmp_path / "plain.png", "a plain fox\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, "
                                               "Size: 64x64, Clip skip: 2")
    panel.picture_dropped.emit(plain)
    qtbot.waitUntil(lambda: "Loaded the parameters of plain.png" in status.text(), timeout=10_000)
    assert panel.prompt_edit.toPlainText() == "a plain fox"
    assert panel.lora_box.choices() == () and panel.negative_edit.toPlainText() == ""
    # Studio has no clip skip: said, as other values it cannot take are.
    assert "Studio has no clip skip setting (this picture used Clip skip 2); kept the model's usual text encoder " \
           "output." in status.text()


def test_a_picture_dropped_anywhere_on_the_prompt_panel_loads_its_parameters(qtbot, window, tmp_path):  # noqa: ANN001
    """Dropped on the Sampling box (outside the two prompt boxes) it was opened on the canvas instead."""
    panel, status = window.prompt_panel, window.status.message_label
    picture = _a1111_png(tmp_path / "a1111.png", "a castle\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, "
                                                 "Size: 64x64")
    for number, target in enumerate((panel.sampling, panel.size_box, panel.model_picker, panel.seed_edit,
                                     panel.hires_box)):
        panel.prompt_edit.replace_text("")
        window.status.set_message("")
        assert _drop_as_qt_does(target, picture)
        qtbot.waitUntil(lambda: "Loaded the parameters of a1111.png" in status.text(), timeout=10_000)
        assert panel.prompt_edit.toPlainText() == "a castle", number
        assert panel.seed_edit.text() == "5"  # the seed box took the picture's seed, not its file's address
        assert window.document.image is None  # the canvas is left alone


def _dropped(qtbot, window, picture: Path) -> str:  # noqa: ANN001
    window.status.set_message("")
    window.prompt_panel.picture_dropped.emit(picture)
    qtbot.waitUntil(lambda: f"Loaded the parameters of {picture.name}" in window.status.message_label.text(),
                    timeout=10_000)
    return window.status.message_label.text()


def test_a_dropped_studio_picture_sets_the_chain_it_records(qtbot, window, tmp_path):  # noqa: ANN001
    """The chain a Studio picture was made with was left as set up, so Generate did not make it again; as Load
    parameters does, its steps are set up, and one that cannot be is left out and said. A picture of another tool
    records no chain: the one set up stays."""
    from studio.core.settings_sections import PostStepSetting

    window.plugin_actions.set_chain([PostStepSetting(processor="upscale", params={})])
    recipe = Recipe(prompt="a chained fox", negative_prompt="", steps=2, sampler="Euler", cfg_scale=5, seed=7,
                    width=64, height=64, model_name="tiny-sd", post=(
                        {"processor": "sharpen-plus", "version": "1", "params": {"amount": 2}, "strength": 1.0},
                        {"processor": "histogram", "version": "1", "params": {"style": "<picture 16x16>"},
                         "strength": 0.5}))
    chained = save_image(Image.new("RGB", (64, 64)), tmp_path / "chained.png", recipe)
    said = _dropped(qtbot, window, chained)
    assert said.startswith(
        "Loaded the parameters of chained.png (made by Studio); the post-processing chain is now Colour Transfer "
        "(Histogram). Its post-processing step 'sharpen-plus' was left out of the chain: no installed and enabled "
        "plugin provides it. Its Colour Transfer (Histogram) step's picture was not kept; choose one for it in the "
        "post-processing chain."), said
    assert [(s.processor, s.params, s.strength) for s in window.settings.generation.post] == [("histogram", {}, 0.5)]

    other = _a1111_png(tmp_path / "other.png", "a plain fox\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, "
                                               "Size: 64x64")
    assert "chain" not in _dropped(qtbot, window, other)
    assert [s.processor for s in window.settings.generation.post] == ["histogram"]


def test_a_dropped_picture_whose_listed_model_is_gone_keeps_the_current_one(qtbot, window, tmp_path,  # noqa: ANN001
                                                                           tiny_model_dir):
    """The model list, read while the model was there, still names it: the drop picked it by name and the next
    Generate refused "The model folder … does not exist"."""
    from studio.core.model_library import ModelEntry

    gone = tmp_path / "models" / "gone model"
    panel = window.prompt_panel
    panel.set_models([ModelEntry("tiny-sd", Path(tiny_model_dir)), ModelEntry("gone model", gone)],
                     str(tiny_model_dir), str(tmp_path / "models"))
    picture = _a1111_png(tmp_path / "gone.png", "a gone-model dog\nSteps: 20, Sampler: Euler, CFG scale: 7, "
                                                "Seed: 5, Size: 64x64, Model: gone model")
    said = _dropped(qtbot, window, picture)
    assert said.startswith(f"Loaded the parameters of gone.png (made by AUTOMATIC1111). The model gone model is "
                           f"gone, so the current one was kept; {gone} no longer exists."), said
    assert panel.selected_model() == str(tiny_model_dir)
    assert panel.prompt_edit.toPlainText() == "a gone-model dog"
