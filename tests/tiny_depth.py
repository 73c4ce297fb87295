"""Random-weight Depth Anything models (transformers' port of Depth Anything V2) and their image processor, saved
the way the hub repository ships them, into a models folder: a tiny one (a 2-layer DINOv2 backbone) for tests, and
the real Small architecture for benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.annotators import DEPTH_FOLDER

SMALL_SIDE = 518  # the real processor's size: 37 DINOv2 patches


def build_tiny_depth(folder: Path, seed: int = 0, side: int = 56) -> Path:
    """``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` in ``folder``. ``side``: the size the
    processor resizes to (518 in the real one; 56, four DINOv2 patches, keeps a test fast)."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                            image_size=side, patch_size=14, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
                                 reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=4)
    return save_depth_model(folder, config, side, seed)


def build_small_depth(folder: Path, seed: int = 0) -> Path:
    """Depth Anything V2 Small's architecture (24.8 M parameters), as its hub repository's ``config.json`` and
    transformers' conversion script make it: a DINOv2-S/14 backbone (384 wide, 12 layers, 6 heads) read after layers
    3, 6, 9 and 12, and the DPT neck and head (fusion 64 wide), with random weights, in float32 as shipped."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                            image_size=SMALL_SIDE, patch_size=14, out_indices=[3, 6, 9, 12], apply_layernorm=True,
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384,
                                 neck_hidden_sizes=[48, 96, 192, 384], reassemble_factors=[4, 2, 1, 0.5],
                                 fusion_hidden_size=64, head_hidden_size=32, depth_estimation_type="relative")
    return save_depth_model(folder, config, SMALL_SIDE, seed)


def save_depth_model(folder: Path, config: Any, side: int, seed: int = 0) -> Path:  # noqa: ANN401 - its config
    """A Depth Anything model of ``config`` with random weights, and the processor that reads pictures at ``side``."""
    import torch
    from transformers import DepthAnythingForDepthEstimation
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(seed)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    # The real repository's processor settings (keep the proportions, sides a multiple of 14, ImageNet colours).
    DPTImageProcessorPil(size={"height": side, "width": side}, keep_aspect_ratio=True, ensure_multiple_of=14,
                         resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                         do_pad=False).save_pretrained(folder)
    return folder


def depth_model_in(models_dir: Path, seed: int = 0) -> Path:
    """The tiny depth model where Studio's download puts the real one."""
    return build_tiny_depth(models_dir / DEPTH_FOLDER, seed)
