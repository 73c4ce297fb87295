"""Tiny random-weight Stable Diffusion pipelines built in code, the way diffusers' own tests do."""

from __future__ import annotations

import json
from pathlib import Path


def byte_level_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode alphabet, with and without the end-of-word mark: tokenizes any text offline."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def byte_level_tokenizer(folder: Path, vocab: dict[str, int]):  # noqa: ANN201 - CLIPTokenizer
    """A CLIP tokenizer over ``vocab`` with no merges, written to ``folder``: it tokenizes any text offline."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def build_tiny_sd(folder: Path, seed: int = 0) -> Path:
    """Save a tiny SD 1.x-style pipeline (4-level UNet/VAE, 32-wide CLIP) as a diffusers folder."""
    return _build_tiny(folder, seed, inpainting=False)


def build_tiny_sd_inpaint(folder: Path, seed: int = 0) -> Path:
    """The same tiny pipeline as an SD inpainting model: a 9-channel UNet (latents + mask + masked image),
    saved as a StableDiffusionInpaintPipeline folder, the way runwayml's inpainting checkpoint is."""
    return _build_tiny(folder, seed, inpainting=True)


def _build_tiny(folder: Path, seed: int, inpainting: bool) -> Path:
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=9 if inpainting else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=4,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4, norm_num_groups=4, layers_per_block=1, sample_size=64,
    )
    vocab = byte_level_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
        hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(vocab), max_position_embeddings=77, projection_dim=32,
    ))
    tokenizer = byte_level_tokenizer(folder.parent / f".{folder.name}-tokenizer-src", vocab)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1)
    pipeline_class = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipe = pipeline_class(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL-style pipeline: two text encoders (the second with a projection, pooled into the UNet's
    text_time embedding), as diffusers' own SDXL tests build theirs."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=72, norm_num_groups=4)  # the two text encoders' widths, 32 + 40, side by side
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4, layers_per_block=1,
        sample_size=64, scaling_factor=0.13025)
    vocab = byte_level_vocab()
    text_config = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                       pad_token_id=vocab["<|endoftext|>"], hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
                       num_attention_heads=4, num_hidden_layers=2, vocab_size=len(vocab), max_position_embeddings=77,
                       projection_dim=32, hidden_act="gelu")
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    # Another width than the first encoder's: diffusers tells SDXL's two encoders apart by it in single files.
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**{**text_config, "hidden_size": 40}))
    tokenizer = byte_level_tokenizer(folder.parent / f".{folder.name}-tokenizer-src", vocab)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_ip_adapter(models_dir: Path, model_dir: Path, seed: int = 0, family: str = "sd") -> Path:
    """``<models_dir>/ip-adapter`` laid out as h94/IP-Adapter is, sized for the tiny SD 1.x (or SDXL) UNet in
    model_dir."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPVisionConfig

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    return build_ip_adapter(models_dir, unet, CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, projection_dim=16, num_hidden_layers=2, num_attention_heads=4,
        image_size=224, patch_size=32), seed=seed, family=family)


def build_ip_adapter(models_dir: Path, unet, vision_config, seed: int = 0, scale: float = 0.5,  # noqa: ANN001
                     dtype=None, family: str = "sd") -> Path:  # noqa: ANN001
    """``<models_dir>/ip-adapter`` (adapter + CLIP image encoder, random weights) for an SD 1.x or SDXL ``unet``.

    The adapter's key numbering follows the original's (1, 3, 5, … for the cross-attention layers, in the
    UNet's processor order), which diffusers' loader expects.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    cross, embed, tokens = unet.config.cross_attention_dim, vision_config.projection_dim, 4
    state = {"image_proj.proj.weight": torch.randn(cross * tokens, embed) * 0.2,
             "image_proj.proj.bias": torch.zeros(cross * tokens),
             "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross)}
    key_id = 1
    channels = unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        block = int(name.split(".")[1]) if not name.startswith("mid_block") else None
        hidden = (channels[-1] if block is None else
                  list(reversed(channels))[block] if name.startswith("up_blocks") else channels[block])
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * scale
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * scale
        key_id += 2
    from studio.engine.ip_adapter import FILES, FOLDER

    weight_name, encoder_folder = FILES[family]
    folder = models_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(dtype or v.dtype) for k, v in state.items()}, str(folder / weight_name))
    vision = CLIPVisionModelWithProjection(vision_config)
    vision.to(dtype or torch.float32).save_pretrained(folder / encoder_folder, safe_serialization=True)
    return folder
