"""The LoRA list: a VAE chosen from outside the library is said to be what it is once chosen; a listed LoRA the job
cannot use (gone from the library, made for another family) is marked and refused before Generate."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel
from safetensors.numpy import save_file

from studio.core import outside_library
from studio.core.errors import InvalidRequest
from studio.core.model_library import LibraryItem
from studio.ui import outside_entries
from studio.ui.lora_box import LoraBox


def _weights(path: Path, keys: dict[str, tuple[int, ...]]) -> str:
    save_file({key: np.zeros(shape, np.uint8) for key, shape in keys.items()}, str(path))
    return str(path)


def test_a_vae_from_outside_the_library_is_said_to_be_what_it_is_once_chosen(qtbot, qt_loop, tmp_path,  # noqa: ANN001
                                                                             monkeypatch):
    unet = "model.diffusion_model."
    checkpoint = _weights(tmp_path / "dreamshaper_8.safetensors", {
        unet + "input_blocks.0.0.weight": (1, 4, 1, 1),
        unet + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 768),
        "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (1, 1)})
    vae = _weights(tmp_path / "sd-vae-ft-mse.safetensors", {"decoder.conv_in.weight": (1, 4, 1, 1),
                                                            "encoder.conv_in.weight": (1, 3, 1, 1)})
    missing = str(tmp_path / "gone" / "kl-f8-anime2-with-a-long-name.safetensors")
    read_in = []
    monkeypatch.setattr(outside_entries, "outside_model", lambda *a: read_in.append(threading.current_thread())
                        or outside_library.outside_model(*a))
    box = LoraBox()
    qtbot.addWidget(box)
    cases = {checkpoint: ("dreamshaper_8 (not a VAE)",
                          "dreamshaper_8.safetensors is a Stable Diffusion model (SD 1.x), not a VAE."),
             missing: ("kl-f8-anime2-with… (not found)",  # cut: the note stays in sight
                       f"kl-f8-anime2-with-a-long-name.safetensors was not found in {tmp_path / 'gone'}."),
             vae: ("sd-vae-ft-mse (not in the library)", f"{vae} is not in the model library"),
             "vae-ft-ema": ("vae-ft-ema (not in the library)", "vae-ft-ema is not in the model library")}
    for value, (entry, tip) in cases.items():
        box.set_values([], value)
        qtbot.waitUntil(lambda entry=entry: box.vae_combo.currentText() == entry, timeout=10_000)
        assert box.vae() == value
        assert box.vae_combo.itemData(box.vae_combo.currentIndex(), Qt.ItemDataRole.ToolTipRole) == tip
    assert read_in and threading.main_thread() not in read_in


def _lora(path: Path, family: str = "sd1") -> LibraryItem:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")  # the box reads no file: the library has identified it
    label = {"sd1": "LoRA (SD 1.x)", "sdxl": "LoRA (SDXL)"}[family]
    return LibraryItem(path.stem, path, "lora", family, label, 7, "models folder")


def _row_label(box: LoraBox, name: str) -> QLabel:
    """The name shown in the list's row for the LoRA ``name``."""
    return next(row.findChild(QLabel) for listed, _, row in box._rows if listed == name)


def test_a_lora_gone_from_the_library_is_marked_and_refused_before_generate(qtbot, tmp_path):  # noqa: ANN001
    paint = _lora(tmp_path / "loras" / "paint.safetensors")
    box = LoraBox()
    qtbot.addWidget(box)
    box.set_library([paint])
    box.add(str(paint.path), 0.5)
    assert _row_label(box, str(paint.path)).text() == "paint" and box.with_prompt_tags("")
    paint.path.unlink()
    box.set_library([])  # the library is read again, without it
    label = _row_label(box, str(paint.path))
    sentence = (f"The LoRA paint is not in the library any more ({paint.path} was removed); remove it from the "
                "list or put it back.")
    assert (label.text(), label.toolTip(), label.property("error")) == ("paint (not found)", sentence, True)
    with pytest.raises(InvalidRequest, match=re.escape(sentence)):
        box.with_prompt_tags("a fox")

    box.set_values([("nothere", 0.7)], "")  # a recipe's LoRA the library never had
    label = _row_label(box, "nothere")
    assert label.text() == "nothere (not found)" and label.property("error") is True
    with pytest.raises(InvalidRequest, match="The LoRA nothere is not in the library; remove it from the list"):
        box.with_prompt_tags("")
    box.remove("nothere")
    assert box.with_prompt_tags("") == ()


def test_loras_for_another_family_are_greyed_in_the_menu_and_marked_in_the_list(qtbot, tmp_path):  # noqa: ANN001
    sd1, sdxl = tmp_path / "dreamshaper.safetensors", tmp_path / "juggernaut.safetensors"
    ink, detail = _lora(tmp_path / "loras" / "ink.safetensors"), _lora(tmp_path / "loras" / "detail.safetensors",
                                                                         "sdxl")
    box = LoraBox()
    qtbot.addWidget(box)
    box.set_library([ink, detail, LibraryItem("dreamshaper", sd1, "checkpoint", "sd1", "SD 1.x", 7, ""),
                     LibraryItem("juggernaut", sdxl, "checkpoint", "sdxl", "SDXL", 7, "")])
    box.set_model(str(sdxl))
    box.add(str(detail.path), 0.6)
    assert _row_label(box, str(detail.path)).text() == "detail"
    box.set_model(str(sd1))
    box._fill_menu()
    menu = [(a.text(), a.isEnabled(), a.toolTip()) for a in box.add_menu.actions()]
    assert menu == [("ink  ·  LoRA (SD 1.x)", True, str(ink.path)),
                    ("detail  ·  LoRA (SDXL)", False, "For SDXL models; the chosen model is SD 1.x")]
    label = _row_label(box, str(detail.path))
    sentence = ("The LoRA detail is made for SDXL models and the chosen model is SD 1.x; remove it from the list "
                "or choose a model of that kind.")
    assert (label.text(), label.toolTip(), label.property("error")) == ("detail (for SDXL)", sentence, True)
    with pytest.raises(InvalidRequest, match=re.escape(sentence)):
        box.with_prompt_tags("")
    box.set_model(str(sdxl))  # back to a model it fits
    assert _row_label(box, str(detail.path)).text() == "detail" and box.with_prompt_tags("")


def test_a_scan_of_the_models_folder_marks_each_listed_lora_once(qtbot, window, monkeypatch):  # noqa: ANN001
    from studio.core.model_library import scan_library

    box = window.prompt_panel.lora_box
    (window.settings.models_dir / "loras").mkdir(parents=True, exist_ok=True)
    ink = _weights(window.settings.models_dir / "loras" / "ink.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768)})
    window.models.refresh()
    qtbot.waitUntil(lambda: bool(box._loras), timeout=10_000)
    box.set_values([(ink, 0.8), ("nothere", 0.5)], "")
    items = scan_library(window.settings.models_dir, window.settings.extra_model_paths)  # the model stays picked
    marked, real = [], box._library.row_problem
    monkeypatch.setattr(box._library, "row_problem", lambda name: marked.append(name) or real(name))
    window.models.show_library(items)  # as each scan's answer is shown
    assert marked == [ink, "nothere"]
    assert _row_label(box, "nothere").text() == "nothere (not found)" and _row_label(box, ink).text() == "ink"


def test_a_weights_steps_do_not_read_the_prompts_tags_again(qtbot, tmp_path, monkeypatch):  # noqa: ANN001
    from studio.ui import lora_box

    ink, paint = _lora(tmp_path / "loras" / "ink.safetensors"), _lora(tmp_path / "loras" / "paint.safetensors")
    box = LoraBox()
    qtbot.addWidget(box)
    box.set_library([ink, paint])
    box.show_prompt_tags("a fox <lora:paint:0.7>")
    box.add(str(ink.path), 0.5)
    spin = box._rows[0][1]
    read, real = [], lora_box.read_tags
    monkeypatch.setattr(lora_box, "read_tags", lambda prompt: read.append(prompt) or real(prompt))
    with qtbot.waitSignals([box.changed] * 3):
        for _ in range(3):
            spin.stepUp()  # the weight moves on: the prompt's tags are what they were
    assert spin.value() == pytest.approx(0.65) and read == []
    assert box.tagged_label.text() == "From the prompt: paint (0.7)"
    box.add(str(paint.path))  # the tag's LoRA listed now: what the tags add is said again
    assert read == ["a fox <lora:paint:0.7>"]
    assert box.tagged_label.text() == "From the prompt: paint (the list's weight applies)"
    box.remove(str(paint.path))
    assert box.tagged_label.text() == "From the prompt: paint (0.7)"


def test_a_scan_that_takes_the_picked_model_away_marks_the_loras_and_lists_the_guides_once(  # noqa: ANN201
        qtbot, window, tmp_path, monkeypatch):  # noqa: ANN001
    from studio.ui.control_guide_row import GuideRow

    def checkpoint(name: str, family: str) -> LibraryItem:
        return LibraryItem(name, tmp_path / f"{name}.safetensors", "checkpoint", family, family, 7, "models folder")

    sd1, sdxl = checkpoint("dreamshaper", "sd1"), checkpoint("juggernaut", "sdxl")
    ink = _lora(tmp_path / "ink.safetensors")
    canny = LibraryItem("canny", tmp_path / "controlnet" / "canny.safetensors", "controlnet", "sd1", "ControlNet",
                        7, "models folder")
    panel, box = window.prompt_panel, window.prompt_panel.lora_box
    window.models.show_library([sd1, sdxl, ink, canny])
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(str(sdxl.path)))
    box.add(str(ink.path))
    guide = panel.control_box.add()
    assert _row_label(box, str(ink.path)).text() == "ink (for SD 1.x)"
    marked, real = [], box._library.row_problem
    monkeypatch.setattr(box._library, "row_problem", lambda name: marked.append(name) or real(name))
    listed, real_lists = [], GuideRow.set_models
    monkeypatch.setattr(GuideRow, "set_models", lambda row, items, family: listed.append(family) or
                        real_lists(row, items, family))

    window.models.show_library([sd1, ink, canny])  # juggernaut is gone: the picker picks dreamshaper
    assert panel.selected_model() == str(sd1.path)
    assert marked == [str(ink.path)] and listed == ["sd1"]  # once each, for the new model and the new library
    assert _row_label(box, str(ink.path)).text() == "ink" and box.with_prompt_tags("")
    assert guide.model_combo.model().item(guide.model_combo.findData("canny")).isEnabled()


def test_a_long_lora_or_vae_name_is_cut_short_instead_of_widening_the_panel(qtbot, tmp_path):  # noqa: ANN001
    long_name = "x" * 60
    lora = _lora(tmp_path / "loras" / f"{long_name}.safetensors")
    vae = LibraryItem("v" * 60, tmp_path / f"{'v' * 60}.safetensors", "vae", "sd1", "VAE (SD 1.x)", 7, "models folder")
    box = LoraBox()
    qtbot.addWidget(box)
    box.set_library([lora, vae])
    narrow = box.minimumSizeHint().width()
    box.add(str(lora.path), 1.0)
    box.set_values([(str(lora.path), 1.0)], str(vae.path))
    assert box.minimumSizeHint().width() <= narrow + 10  # the panel keeps its width: nothing demands more room
    box.resize(narrow, box.sizeHint().height())
    box.show()
    label = _row_label(box, str(lora.path))
    qtbot.waitUntil(lambda: "…" in label.shown_text())
    assert label.fontMetrics().horizontalAdvance(label.shown_text()) <= label.contentsRect().width()
    assert (label.text(), label.toolTip()) == (long_name, str(lora.path))  # the whole name stays in reach
    lora.path.unlink()
    box.set_library([vae])  # the LoRA is gone: its row is marked, and the mark stays in sight
    box.resize(360, box.height())  # the Generate panel's usual width
    qtbot.waitUntil(lambda: label.shown_text().endswith("found)") and "…" in label.shown_text())
    box.remove(str(lora.path))
    assert box.minimumSizeHint().width() <= narrow + 10


def test_renaming_the_lora_rows_leaves_the_chosen_vae_alone(qtbot, qt_loop, tmp_path, monkeypatch):  # noqa: ANN001
    """rename passed the VAE shown back in to be chosen again, where None ("keep the chosen VAE") was meant."""
    box = LoraBox()
    qtbot.addWidget(box)
    chosen = str(tmp_path / "kl-f8.safetensors")
    box.set_library([LibraryItem("kl-f8", Path(chosen), "vae", "sd1", "VAE", 1, "models folder")])
    box.set_values([], chosen)
    reselected: list[str] = []
    monkeypatch.setattr(box, "_select_vae", reselected.append)
    box.rename({})
    assert reselected == [] and box.vae() == chosen
