"""SD 2.x base (512 px, epsilon) and v (768 px) checkpoints told apart by sd2_prediction, through detect_kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from studio.core.model_kinds import detect_kind
from studio.core.weight_files import check_weights_file

UNET = "model.diffusion_model."
# An SD 2.x single-file checkpoint's telling keys: its UNet (1024-wide cross-attention), VAE and OpenCLIP text encoder.
SD2_CHECKPOINT = {UNET + "input_blocks.0.0.weight": (1, 4, 1, 1),
                  UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 1024),
                  UNET + "output_blocks.11.0.skip_connection.weight": (1, 1, 1, 1),
                  "first_stage_model.decoder.conv_in.weight": (1, 4, 1, 1),
                  "cond_stage_model.model.token_embedding.weight": (1, 1),
                  "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (1, 1)}


def sd2_file(path: Path, bias: np.ndarray | None = None, metadata: dict[str, str] | None = None) -> Path:
    tensors = {key: np.zeros(shape, np.uint8) for key, shape in SD2_CHECKPOINT.items()}
    if bias is not None:
        tensors[UNET + "output_blocks.11.1.transformer_blocks.0.norm1.bias"] = bias
    save_file(tensors, str(path), metadata=metadata)
    return path


def prediction_of(path: Path) -> tuple[str, str]:
    kind = detect_kind(check_weights_file(path), path.name, path)
    return kind.prediction, kind.label


def test_sd2_base_and_v_are_told_apart(tmp_path):
    """2.x-base (512, epsilon) and 2.x-v (768, v) have the same layers: the name, ModelSpec metadata, one bias's
    spread (ComfyUI's rule: std > 0.09 is v) and a NAME.yaml next to the file (A1111's) tell them apart."""
    base, v = ("epsilon", "SD 2.x (512, epsilon)"), ("v", "SD 2.x (768, v)")
    assert prediction_of(sd2_file(tmp_path / "v2-1_512-ema-pruned.safetensors")) == base
    assert prediction_of(sd2_file(tmp_path / "sd21-base.safetensors")) == base
    assert prediction_of(sd2_file(tmp_path / "v2-1_768-ema-pruned.safetensors")) == v
    assert prediction_of(sd2_file(tmp_path / "anything.safetensors")) == v  # SD 2.1, the common one
    assert prediction_of(sd2_file(tmp_path / "m1.safetensors", metadata={"modelspec.prediction_type": "epsilon"})) \
        == base
    assert prediction_of(sd2_file(tmp_path / "m2.safetensors",
                                  metadata={"modelspec.architecture": "stable-diffusion-v2-512"})) == base
    spread = np.linspace(-0.5, 0.5, 320)
    for dtype in (np.float16, np.float32):
        assert prediction_of(sd2_file(tmp_path / "wide.safetensors", spread.astype(dtype))) == v
        # the weights outrank a name that says otherwise
        assert prediction_of(sd2_file(tmp_path / "x_512.safetensors", (spread / 10).astype(dtype))) == base
    own = sd2_file(tmp_path / "mine_512.safetensors", (spread / 10).astype(np.float16))
    own.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert prediction_of(own) == v  # the person's word wins
    assert prediction_of(sd2_file(tmp_path / "mine_768.safetensors")) == v
    (tmp_path / "mine_768.yaml").write_text("model:\n  params:\n    image_size: 64\n")  # LDM's default: eps
    assert prediction_of(tmp_path / "mine_768.safetensors") == base
    turbo = detect_kind(check_weights_file(sd2_file(tmp_path / "sd_turbo.safetensors")), "sd_turbo.safetensors")
    assert (turbo.prediction, turbo.label) == ("epsilon", "SD-Turbo")

