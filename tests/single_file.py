"""Turn a diffusers SD 1.x folder into the original single-file layout model sites ship (LDM key names).

The inverse of diffusers' single-file conversion, after diffusers' own
``scripts/convert_diffusers_to_original_stable_diffusion.py``, generalised to any number of blocks and
layers so the tiny test pipeline converts too.
"""

from __future__ import annotations

import json
from pathlib import Path

RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
          ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
UNET_TOP = (("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
            ("add_embedding.linear_1.", "label_emb.0.0."), ("add_embedding.linear_2.", "label_emb.0.2."),
            ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."))
VAE_ATTENTION = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                 ("to_out.0.", "proj_out."))


def _unet_prefixes(config: dict) -> list[tuple[str, str]]:
    blocks = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    pairs: list[tuple[str, str]] = []
    for i in range(blocks):
        for j in range(layers):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{1 + i * (layers + 1) + j}.0."))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{1 + i * (layers + 1) + j}.1."))
        if i < blocks - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op."))
        has_attention = config["up_block_types"][i].startswith("CrossAttn")
        for j in range(layers + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{i * (layers + 1) + j}.0."))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{i * (layers + 1) + j}.1."))
        if i < blocks - 1:
            pairs.append((f"up_blocks.{i}.upsamplers.0.",
                          f"output_blocks.{i * (layers + 1) + layers}.{2 if has_attention else 1}."))
    pairs.append(("mid_block.attentions.0.", "middle_block.1."))
    pairs += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.") for j in range(2)]
    return pairs


def unet_to_original(state: dict, config: dict) -> dict:
    prefixes = _unet_prefixes(config)
    out = {}
    for key, value in state.items():
        new = key
        for hf, sd in UNET_TOP:
            if new.startswith(hf):
                new = sd + new[len(hf):]
        if "resnets" in new:
            for hf, sd in RESNET:
                new = new.replace(f".{hf}.", f".{sd}.")
        for hf, sd in prefixes:
            if new.startswith(hf):
                new = sd + new[len(hf):]
                break
        out["model.diffusion_model." + new] = value
    return out


def vae_to_original(state: dict, config: dict) -> dict:
    blocks = len(config["block_out_channels"])
    out = {}
    for key, value in state.items():
        new = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        for i in range(blocks):
            new = new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
            new = new.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
            new = new.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{blocks - 1 - i}.block.")
            new = new.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{blocks - 1 - i}.upsample.")
        for k in range(2):
            new = new.replace(f"mid_block.resnets.{k}.", f"mid.block_{k + 1}.")
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for hf, sd in VAE_ATTENTION:
                new = new.replace(f"attn_1.{hf}", f"attn_1.{sd}")
            if new.endswith(".weight") and value.ndim == 2:
                value = value.reshape(*value.shape, 1, 1)  # the original VAE's attention is 1x1 convolutions
        out["first_stage_model." + new] = value
    return out


def text_to_open_clip(state: dict, prefix: str) -> dict:
    """A transformers CLIPTextModelWithProjection as OpenCLIP's keys (SDXL's second text encoder, SD 2.x's)."""
    import torch
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    mapping = DIFFUSERS_TO_LDM_MAPPING["openclip"]
    out = {}
    for key, value in state.items():
        if key in mapping["layers"]:
            ldm = mapping["layers"][key]
            out[prefix + ldm] = value.T.contiguous() if ldm == "text_projection" else value
            continue
        new = key
        for diffusers_name, ldm_name in list(mapping["transformer"].items())[:6]:
            new = new.replace(diffusers_name, ldm_name)
        out[prefix + "transformer." + new] = value
    for key in [k for k in out if k.endswith(".attn.q_proj.weight") or k.endswith(".attn.q_proj.bias")]:
        kind = key.rsplit(".", 1)[1]
        base = key[: -len(f"q_proj.{kind}")]
        parts = [out.pop(f"{base}{name}_proj.{kind}") for name in "qkv"]
        out[f"{base}in_proj_{kind}"] = torch.cat(parts)  # OpenCLIP keeps q, k and v in one matrix
    return out


def write_original_checkpoint(diffusers_folder: Path, target: Path) -> Path:
    """Save the SD 1.x or SDXL diffusers folder as one original-layout ``.safetensors`` checkpoint."""
    from safetensors.torch import load_file, save_file

    def part(name: str) -> tuple[dict, dict]:
        folder = diffusers_folder / name
        weights = next(folder.glob("*.safetensors"))
        return load_file(str(weights)), json.loads((folder / "config.json").read_text())

    unet, unet_config = part("unet")
    vae, vae_config = part("vae")
    text, _ = part("text_encoder")
    state = unet_to_original(unet, unet_config) | vae_to_original(vae, vae_config)
    sdxl = (diffusers_folder / "text_encoder_2").is_dir()
    first = "conditioner.embedders.0.transformer." if sdxl else "cond_stage_model.transformer."
    # transformers 5 saves CLIPTextModel without its ``text_model.`` level; the original layout has it.
    state |= {first + (k if k.startswith("text_model.") else "text_model." + k): v for k, v in text.items()}
    if sdxl:
        text_2, _ = part("text_encoder_2")
        state |= text_to_open_clip(text_2, "conditioner.embedders.1.model.")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(target))
    return target
