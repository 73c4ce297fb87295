"""A1111's <lora:name:weight> tags typed in the window's prompt, and in an A1111 picture's prompt loaded into it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from PySide6.QtCore import Qt

from studio.core.hashing import lora_hash
from studio.core.images import read_recipe
from studio.core.requests import LoraChoice

WAIT_MS = 120_000


def _generate(qtbot, window, finished: int) -> Path:  # noqa: ANN001
    """Press Generate; the picture of that job, the window's finished-th."""
    before = set(window.settings.outputs_dir.rglob("*.png"))
    qtbot.mouseClick(window.prompt_panel.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.queue_panel.job_ids("finished")) == finished, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(set(window.settings.outputs_dir.rglob("*.png")) - before) == 1, timeout=10_000)
    return (set(window.settings.outputs_dir.rglob("*.png")) - before).pop()


def test_a_typed_tag_applies_its_lora_as_the_lora_list_does(qtbot, window, tiny_model_dir, tmp_path):  # noqa: ANN001
    from tiny_loras import lora_state, save_lora, tiny_unet

    a1111 = tmp_path / "stable-diffusion-webui"  # a linked A1111 folder: the tag finds its LoRA by name
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), a1111 / "models" / "Lora" / "ink.safetensors")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    window.settings.extra_model_paths.append(a1111)
    window.models.refresh()
    panel, box = window.prompt_panel, window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: bool(box._loras), timeout=10_000)  # the library is scanned off the UI thread
    panel.seed_edit.setText("7")

    panel.prompt_edit.clear()
    qtbot.keyClicks(panel.prompt_edit, "<lora:ink:0.8> a fox")
    assert box.tagged_label.isVisible() and box.tagged_label.text() == "From the prompt: ink (0.8)"
    qtbot.waitUntil(lambda: panel.prompt_tokens.text() == "2/75", timeout=5000)  # the tag is no words to encode
    tagged = _generate(qtbot, window, 1)
    recipe = read_recipe(tagged)
    assert recipe.prompt == "a fox"
    assert [(r.name, r.hash, r.weight) for r in recipe.loras] == [("ink", lora_hash(lora), 0.8)]
    assert "LoRAs from the prompt: ink (0.8)." in window.status.message_label.text()
    assert panel.prompt_edit.toPlainText() == "<lora:ink:0.8> a fox"  # the person's text stays as typed

    # The same picture as the LoRA list makes; and the list's weight wins over a tag's, said under the list.
    panel.prompt_edit.setPlainText("<lora:ink:0.3> a fox")
    box.add(str(lora.resolve()), 0.8)
    assert box.tagged_label.text() == "From the prompt: ink (the list's weight applies)"
    chosen = _generate(qtbot, window, 2)
    assert "The LoRA ink is chosen at 0.8 and tagged in the prompt as <lora:ink:0.3>" in \
        window.status.message_label.text()
    assert [(r.name, r.weight) for r in read_recipe(chosen).loras] == [("ink", 0.8)]
    with Image.open(tagged) as first, Image.open(chosen) as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))

    box.set_values([], "")
    panel.prompt_edit.setPlainText("<lora:ink:abc> a fox")  # said under the list as typed, and on Generate
    sentence = ("The tag <lora:ink:abc> in the prompt has the weight 'abc', which is not a number; write "
                "<lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>.")
    assert box.tagged_label.text() == sentence
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text() == sentence and len(window.queue_panel.job_ids("finished")) == 2


def test_an_a1111_picture_s_tags_come_back_once_as_the_list_s_loras(qtbot, window, tiny_model_dir,  # noqa: ANN001
                                                                     tmp_path):
    from tiny_loras import lora_state, save_lora, tiny_unet

    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)),
                     window.settings.models_dir / "loras" / "ink.safetensors")
    window.models.refresh()
    box = window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: bool(box._loras), timeout=10_000)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox <lora:ink:0.6>, snow\nNegative prompt: blurry\n"
                                "Steps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Version: v1.10.1")
    picture = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(picture, pnginfo=info)
    task = window.actions_.run(window.history_actions.load_from_picture(picture))
    qtbot.waitUntil(task.done, timeout=10_000)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a fox, snow"
    assert box.choices() == (LoraChoice(str(lora.resolve()), 0.6),)
    assert not box.tagged_label.isVisible()
    request = window.prompt_panel.build_request(None)
    assert [(c.name, c.weight) for c in request.loras] == [(str(lora.resolve()), 0.6)]
