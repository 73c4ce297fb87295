"""Tiny random-weight ControlNets for the tiny test models, as diffusers folders and as single files."""

from __future__ import annotations

import re
from pathlib import Path

RESNET_NAMES = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))


def tiny_controlnet(model_dir: Path, seed: int = 0, scale: float = 0.5):  # noqa: ANN201 - a ControlNetModel
    """The tiny model's UNet's encoder half as a ControlNet (``ControlNetModel.from_unet``, as ControlNets are
    started). Its zero convolutions get random weights, so a guide changes the picture, as a trained one's does."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    if unet.config.in_channels != 4:  # ControlNets for inpainting models are the ordinary ones: latents only
        unet = UNet2DConditionModel.from_config({**unet.config, "in_channels": 4})
    net = ControlNetModel.from_unet(unet)
    with torch.no_grad():
        for conv in zero_convolutions(net):
            for weight in conv.parameters():
                weight.normal_(0, scale)
    return net


def zero_convolutions(net) -> list:  # noqa: ANN001 - a ControlNetModel
    """The convolutions a new ControlNet starts at zero (its residuals are nothing until it is trained): the ones
    that hand its residuals to the UNet and the last of its control-picture embedding."""
    return [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]


def build_tiny_controlnet(folder: Path, model_dir: Path, seed: int = 0) -> Path:
    """A tiny ControlNet for the model in ``model_dir``, saved as a diffusers folder at ``folder``."""
    tiny_controlnet(model_dir, seed).save_pretrained(folder, safe_serialization=True)
    return folder


def original_layout(net) -> dict:  # noqa: ANN001 - a ControlNetModel
    """The ControlNet's weights under lllyasviel's original key names (``control_model.…``), as A1111 people have
    them: diffusers' ``convert_controlnet_checkpoint`` turned around, for any block layout."""
    per_block = net.config.layers_per_block + 1  # resnets (+ attention), then a downsampler
    moved = {}
    for key, tensor in net.state_dict().items():
        moved[_original_key(key, per_block)] = tensor
    return {f"control_model.{key}": value for key, value in moved.items()}


def _original_key(key: str, per_block: int) -> str:
    fixed = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
             "conv_in.": "input_blocks.0.0.", "controlnet_cond_embedding.conv_in.": "input_hint_block.0.",
             "controlnet_cond_embedding.conv_out.": "input_hint_block.14.",
             "controlnet_mid_block.": "middle_block_out.0."}
    for new, old in fixed.items():
        if key.startswith(new):
            return old + key[len(new):]
    if found := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.*)", key):
        return f"input_hint_block.{2 * int(found[1]) + 2}.{found[2]}"
    if found := re.match(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
        return f"zero_convs.{found[1]}.0.{found[2]}"
    if found := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{1 + int(found[1]) * per_block + per_block - 1}.0.op.{found[2]}"
    if found := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = 1 + int(found[1]) * per_block + int(found[3])
        return f"input_blocks.{index}.{0 if found[2] == 'resnets' else 1}.{_resnet(found[4], found[2])}"
    if found := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = 1 if found[1] == "attentions" else 2 * int(found[2])
        return f"middle_block.{index}.{_resnet(found[3], found[1])}"
    raise ValueError(f"no original name for {key}")


def _resnet(rest: str, part: str) -> str:
    if part != "resnets":
        return rest
    for new, old in RESNET_NAMES:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest
