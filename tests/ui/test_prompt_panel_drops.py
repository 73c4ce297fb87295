"""A picture dropped on the prompt panel loads its parameters: all of its recipe (what it was made without is
emptied), wherever on the panel it lands, and the canvas is left alone."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.core.images import save_image
from studio.core.metadata import LoraRecord, Recipe


def _a1111_png(path: Path, parameters: str) -> Path:
    text = PngInfo()
    text.add_text("parameters", parameters)
    Image.new("RGB", (64, 64)).save(path, pnginfo=text)
    return path


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

