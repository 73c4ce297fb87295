"""Pickle checkpoints converted to safetensors, then imported: tensors only, and never run."""

from __future__ import annotations

import pytest
from model_files import RunsCodeOnLoad

from studio.core.errors import ModelError
from studio.core.model_library import scan_library
from studio.services.model_conversion import convert_and_import


def test_a_pickle_checkpoint_is_converted_then_imported_tensors_only(tmp_path):
    import torch

    models = tmp_path / "models"
    checkpoint = tmp_path / "ink.ckpt"
    torch.save({"state_dict": {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4)}},
               checkpoint)
    result = convert_and_import(checkpoint, models)
    assert result.copied and result.item.path == models / "loras" / "ink.safetensors"
    assert result.item.kind == "lora"
    assert scan_library(models)[0].source == f"imported from {checkpoint.resolve()}"
    assert not (models / ".incoming").exists()


def test_a_converted_import_gets_the_mode_a_copy_gets(tmp_path):
    # models import X.pt --convert filed the model 0600 (owner only), where a copied model gets the umask's 0644.
    import os
    import stat

    import torch

    checkpoint = tmp_path / "ink.pt"
    torch.save({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.ones(4, 8),
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.ones(8, 4)}, checkpoint)
    old_umask = os.umask(0o022)
    try:
        result = convert_and_import(checkpoint, tmp_path / "models")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(result.item.path.stat().st_mode) == 0o644


def test_a_checkpoint_with_code_is_refused_by_the_conversion_and_never_runs(tmp_path):
    import torch

    from studio.core.errors import StudioError

    sentinel = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "callback": RunsCodeOnLoad(sentinel)}, evil)  # as torch writes them
    with pytest.raises(StudioError, match="contains code or objects"):
        convert_and_import(evil, tmp_path / "models")
    assert not sentinel.exists()
    assert not list((tmp_path / "models").rglob("*.safetensors"))


def test_a_converted_import_refused_names_the_checkpoint_and_keeps_what_was_left_out_as_notes(tmp_path):
    # The refusal named the conversion's temporary mo.safetensors, and what the conversion left out was lost.
    import torch

    from studio.services.model_conversion import convert_and_import

    checkpoint = tmp_path / "mo.pth"
    torch.save({"model": {"m1": torch.ones(2)}, "optimizer": {"o": torch.ones(1)}}, checkpoint)
    with pytest.raises(ModelError) as caught:
        convert_and_import(checkpoint, tmp_path / "models")
    assert str(caught.value).startswith("mo.pth, converted, is a safetensors file, but not a kind of model")
    assert caught.value.__notes__ == [
        "Wrote only the weights under 'model'; left out the rest of the checkpoint: optimizer."]
    assert list((tmp_path / "models").iterdir()) == []
