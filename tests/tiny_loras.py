"""Tiny LoRAs and VAEs for the tiny SD pipeline of tiny_models.py, made with peft and diffusers' own savers."""

from __future__ import annotations

import re
from pathlib import Path

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
RANK = 4


def tiny_unet(model_dir: Path):  # noqa: ANN201
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(model_dir / "unet")


def other_tiny_unet():  # noqa: ANN201
    """A UNet with the tiny model's text width (32) but wider blocks: a LoRA for it fits nowhere in tiny-sd."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=2)


def lora_state(unet, seed: int = 0, scale: float = 0.5) -> dict:  # noqa: ANN001
    """PEFT LoRA layers on the UNet's attention projections, with random B so they change the output."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TARGETS))
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn_like(parameter) * scale)
    return {key: value.detach().clone() for key, value in get_peft_model_state_dict(unet).items()}


def save_lora(state: dict, path: Path) -> Path:
    """A single diffusers-format .safetensors file (``unet.…lora_A.weight`` keys), as model sites ship them."""
    from diffusers import StableDiffusionPipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(path.parent, unet_lora_layers=state, weight_name=path.name)
    return path


def text_encoder_lora_state(model_dir: Path, seed: int = 1, scale: float = 0.5) -> dict:
    """PEFT LoRA layers on the tiny text encoder's attention projections, with random B: they change the
    prompt's embeddings."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    torch.manual_seed(seed)
    # peft's own injection: transformers' add_adapter wants a newer peft than PyPI has here.
    inject_adapter_in_model(LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TEXT_TARGETS), encoder)
    with torch.no_grad():
        for name, parameter in encoder.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn_like(parameter) * scale)
    return {key: value.detach().clone() for key, value in get_peft_model_state_dict(encoder).items()}


def save_lora_with_text_encoder(unet_state: dict, text_state: dict, path: Path) -> Path:
    """One diffusers-format file with UNet and text-encoder layers (``text_encoder.…`` keys)."""
    from diffusers import StableDiffusionPipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(path.parent, unet_lora_layers=unet_state,
                                              text_encoder_lora_layers=text_state, weight_name=path.name)
    return path


def save_kohya_lora(state: dict, path: Path) -> Path:
    """The same layers in kohya-ss' layout (``lora_unet_…_to_q.lora_down.weight`` + ``.alpha``)."""
    import torch
    from safetensors.torch import save_file

    converted = {}
    for key, value in state.items():
        module, kind = re.match(r"(.*)\.lora_([AB])\.weight$", key).groups()
        name = "lora_unet_" + module.replace(".", "_")
        converted[f"{name}.lora_{'down' if kind == 'A' else 'up'}.weight"] = value.contiguous()
        converted[f"{name}.alpha"] = torch.tensor(float(RANK))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(converted, str(path))
    return path


def widen_context(state: dict, width: int) -> dict:
    """The state with cross-attention inputs ``width`` wide: what a LoRA for SDXL (2048) looks like there."""
    import torch

    return {key: (torch.randn(value.shape[0], width) if re.search(r"attn2\.to_[kv]\.lora_A", key) else value)
            for key, value in state.items()}


def build_tiny_vae_folder(folder: Path, model_dir: Path, seed: int = 1) -> Path:
    """A VAE with the tiny model's architecture and other random weights, as a diffusers folder."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(model_dir / "vae"))
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


def ldm_vae_state(diffusers_state: dict, levels: int = 4) -> dict:
    """A diffusers VAE state dict in the original (LDM) layout that single-file VAEs use."""
    attention = "mid_block.attentions.0."
    renames = [("conv_shortcut", "nin_shortcut"), ("conv_norm_out", "norm_out"),
               (f"{attention}group_norm.", "mid.attn_1.norm."), (f"{attention}to_q.", "mid.attn_1.q."),
               (f"{attention}to_k.", "mid.attn_1.k."), (f"{attention}to_v.", "mid.attn_1.v."),
               (f"{attention}to_out.0.", "mid.attn_1.proj_out."),
               ("mid_block.resnets.0.", "mid.block_1."), ("mid_block.resnets.1.", "mid.block_2.")]
    for i in range(levels):
        renames += [(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block."),
                    (f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."),
                    (f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{levels - 1 - i}.block."),
                    (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{levels - 1 - i}.upsample.")]
    result = {}
    for key, value in diffusers_state.items():
        for old, new in renames:
            key = key.replace(old, new)
        if ".attn_1." in key and key.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        result[key] = value.contiguous()
    return result
