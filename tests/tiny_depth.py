"""A tiny random-weight Depth Anything model (transformers' port of Depth Anything V2, with a 2-layer DINOv2
backbone) and its image processor, saved the way the hub repository ships them, into a models folder."""

from __future__ import annotations

from pathlib import Path

from studio.core.annotators import DEPTH_FOLDER


def build_tiny_depth(folder: Path, seed: int = 0, side: int = 56) -> Path:
    """``config.json``, ``model.safetensors`` and ``preprocessor_config.json`` in ``folder``. ``side``: the size the
    processor resizes to (518 in the real one; 56, four DINOv2 patches, keeps a test fast)."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(seed)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                            image_size=side, patch_size=14, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
                                 reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=4)
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    # The real repository's processor settings (keep the proportions, sides a multiple of 14, ImageNet colours).
    DPTImageProcessorPil(size={"height": side, "width": side}, keep_aspect_ratio=True, ensure_multiple_of=14,
                         resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                         do_pad=False).save_pretrained(folder)
    return folder


def depth_model_in(models_dir: Path, seed: int = 0) -> Path:
    """The tiny depth model where Studio's download puts the real one."""
    return build_tiny_depth(models_dir / DEPTH_FOLDER, seed)
