"""A1111's <lora:name:weight> tags typed in the window's prompt, and in an A1111 picture's prompt loaded into it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from PySide6.QtCore import Qt

from studio.core.errors import InvalidRequest
from studio.core.hashing import lora_hash
from studio.core.images import read_recipe
from studio.core.model_library import LibraryItem
from studio.core.requests import LoraChoice
from studio.ui.lora_box import LoraBox

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
    box.set_values([], "my-vae")  # chosen by the person: a picture naming no VAE keeps it, as A1111 does
    task = window.actions_.run(window.history_actions.load_from_picture(picture))
    qtbot.waitUntil(task.done, timeout=10_000)
    assert window.prompt_panel.prompt_edit.toPlainText() == "a fox, snow"
    assert box.choices() == (LoraChoice(str(lora.resolve()), 0.6),) and box.vae() == "my-vae"
    assert not box.tagged_label.isVisible()
    request = window.prompt_panel.build_request(None)
    assert [(c.name, c.weight) for c in request.loras] == [(str(lora.resolve()), 0.6)]
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, "
                                "VAE hash: 1eddc4b4f9, VAE: vae-ft-mse.safetensors, Version: v1.10.1")
    Image.new("RGB", (64, 64)).save(picture, pnginfo=info)
    task = window.actions_.run(window.history_actions.load_from_picture(picture))
    qtbot.waitUntil(task.done, timeout=10_000)
    assert box.vae() == "vae-ft-mse"  # the VAE it names, as Studio names VAEs


def _library_lora(path: Path) -> LibraryItem:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return LibraryItem(path.stem, path, "lora", "sd1", "LoRA (SD 1.x)", 7, "models folder")


def test_the_line_under_the_list_says_what_generate_would_refuse(qtbot, tmp_path):  # noqa: ANN001
    ink, paint = (_library_lora(tmp_path / "loras" / f"{name}.safetensors") for name in ("ink", "paint"))
    box = LoraBox()
    qtbot.addWidget(box)
    box.set_library([ink, paint])

    def line(prompt: str) -> tuple[str, bool]:
        box.show_prompt_tags(prompt)
        return box.tagged_label.text(), bool(box.tagged_label.property("error"))

    assert line("<lora:paint:0.5> a fox") == ("From the prompt: paint (0.5)", False)
    twice = ("The prompt tags the LoRA paint twice, as <lora:paint:0.5> and <lora:paint:0.2>; keep one tag, with "
             "one weight.")
    assert line("<lora:paint:0.5> <lora:paint:0.2> a fox") == (twice, True)
    with pytest.raises(InvalidRequest, match=re.escape(twice)):
        box.with_prompt_tags("<lora:paint:0.5> <lora:paint:0.2> a fox")
    unknown = ("The prompt's <lora:nothere:1> names the LoRA nothere, which is not in the library; check its name, "
               "or add the LoRA to the library.")
    assert line("<lora:nothere:1> a fox") == (unknown, True)
    with pytest.raises(InvalidRequest, match=re.escape(unknown)):
        box.with_prompt_tags("<lora:nothere:1> a fox")

    # A tag finds the list's LoRA in any case, whether the row came from the menu (a path) or by its bare name.
    for listed in (str(ink.path), "ink"):
        box.set_values([], "")
        box.add(listed, 0.8)
        assert line("<lora:INK:0.3> a fox") == ("From the prompt: INK (the list's weight applies)", False)
        assert [(c.name, c.weight) for c in box.with_prompt_tags("<lora:INK:0.3> a fox")] == \
            [(str(ink.path), 0.8), (str(ink.path), 0.3)]  # take_lora_tags applies it once, at the list's 0.8
    box.set_values([], "")
    assert line("<lora:Paint:0.4> a fox") == ("From the prompt: Paint (0.4)", False)
    assert [c.name for c in box.with_prompt_tags("<lora:Paint:0.4> a fox")] == [str(paint.path)]


def test_generate_refuses_an_unknown_tag_and_a_missing_listed_lora_before_queueing(qtbot, window,  # noqa: ANN001
                                                                                  tiny_model_dir):
    window.models.refresh()
    panel, box = window.prompt_panel, window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: window.models._scanned, timeout=10_000)
    panel.prompt_edit.setPlainText("<lora:nothere:1> a fox")
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text() == ("The prompt's <lora:nothere:1> names the LoRA nothere, which is not in the "
                                        "library; check its name, or add the LoRA to the library.")
    panel.prompt_edit.setPlainText("a fox")
    box.set_values([("paint", 0.5)], "")  # a recipe's LoRA the library does not have
    qtbot.mouseClick(panel.generate_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text().startswith("The LoRA paint is not in the library; remove it from the list")
    assert window.queue_panel.job_ids() == []  # nothing was queued


def test_each_keystroke_in_the_prompt_box_reads_the_prompt_s_tags_once(qtbot, tmp_path, monkeypatch):  # noqa: ANN001
    from studio.core import prompt_loras
    from studio.ui import lora_box
    from studio.ui.prompt_panel import PromptPanel

    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.lora_box.set_library([_library_lora(tmp_path / "loras" / "ink.safetensors")])
    read, real = [], prompt_loras.read_tags

    def counted(prompt: str) -> list[prompt_loras.LoraTag]:
        read.append(prompt)
        return real(prompt)

    monkeypatch.setattr(prompt_loras, "read_tags", counted)
    monkeypatch.setattr(lora_box, "read_tags", counted, raising=False)
    typed = "a fox <lora:ink:0.8>"
    qtbot.keyClicks(panel.prompt_edit, typed)
    assert panel.lora_box.tagged_label.text() == "From the prompt: ink (0.8)"
    # The tag's own text, read to name it under the list, is no reading of the prompt.
    assert [read.count(typed[:n]) for n in range(1, len(typed) + 1)] == [1] * len(typed)


def test_an_a1111_picture_s_loras_by_alias_and_by_hash_are_the_library_s_files(qtbot, window, tmp_path):  # noqa: ANN001
    # A1111 with "use alias" wrote <lora:zelda_v2:0.6> and "Lora hashes: zelda_v2: …" for princess_zelda.safetensors
    # (ss_output_name zelda_v2) in a linked folder: the box said "The LoRA zelda_v2 is not in the library" and the
    # status called it missing. A LoRA renamed since (ink, now ink_final) is found by its hash.
    from model_files import aliased_lora

    webui = tmp_path / "sd-webui"
    (webui / "models" / "Stable-diffusion").mkdir(parents=True)
    zelda = aliased_lora(webui / "models" / "Lora" / "princess_zelda.safetensors", "zelda_v2")
    ink = aliased_lora(window.settings.models_dir / "loras" / "ink_final.safetensors", "", fill=3)
    window.settings.extra_model_paths.append(webui)
    window.models.refresh()
    box = window.prompt_panel.lora_box
    qtbot.waitUntil(lambda: len(box._loras) == 2, timeout=10_000)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a fox <lora:zelda_v2:0.6> <lora:ink:0.4>\nNegative prompt: blurry\nSteps: 4, "
                  "Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, "
                  f'Lora hashes: "zelda_v2: {lora_hash(zelda)}, ink: {lora_hash(ink)}", Version: v1.10.1')
    picture = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(picture, pnginfo=info)
    task = window.actions_.run(window.history_actions.load_from_picture(picture))
    qtbot.waitUntil(task.done, timeout=20_000)
    assert box.choices() == (LoraChoice(str(zelda.resolve()), 0.6), LoraChoice(str(ink.resolve()), 0.4))
    assert "missing" not in window.status.message_label.text()
    assert [box._library.row_problem(name) for name, _, _ in box._rows] == [None, None]
