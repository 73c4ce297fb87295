"""The LoRA list's VAE picker: a VAE chosen from outside the library is said to be what it is once chosen."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from safetensors.numpy import save_file

from studio.core import outside_library
from studio.ui import lora_box
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
    monkeypatch.setattr(lora_box, "outside_model", lambda *a: read_in.append(threading.current_thread())
                        or outside_library.outside_model(*a), raising=False)
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
