"""Writes the diffusers configs Studio uses to load single-file checkpoints and to build benchmark models.

Run from the repository root: ``python resources/model-configs/build_configs.py``. The hyperparameters are
those of the released SD 1.5, SD 2.1, SDXL base and their inpainting models, and of the ControlNets made for them
(lllyasviel's ControlNet 1.1 for SD 1.5, thibaud's for SD 2.1, diffusers/controlnet-canny-sdxl-1.0); the CLIP
tokenizer files in ``clip-tokenizer/`` are made from OpenAI's BPE merges (``bpe_simple_vocab_16e6.txt.gz``,
shipped in the open_clip_torch wheel) exactly as transformers' CLIP conversion does. Nothing here downloads anything.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
             timestep_spacing="leading")

SD1_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                cross_attention_dim=768, attention_head_dim=8)
SD2_UNET = dict(SD1_UNET, sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                use_linear_projection=True)
SDXL_UNET = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                 cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                 addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
           down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
           block_out_channels=(128, 256, 512, 512))
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
              bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
OPEN_CLIP_H = dict(CLIP_L, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                   hidden_act="gelu", projection_dim=512)
OPEN_CLIP_BIGG = dict(CLIP_L, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                      num_attention_heads=20, hidden_act="gelu", projection_dim=1280)

# name: (pipeline class, unet, vae extras, scheduler extras, text encoders [(folder, class, config, pad)])
FAMILIES = {
    "sd1": ("StableDiffusionPipeline", SD1_UNET, dict(sample_size=512), {},
            [("", "CLIPTextModel", CLIP_L, "<|endoftext|>")]),
    "sd1-inpaint": ("StableDiffusionInpaintPipeline", dict(SD1_UNET, in_channels=9), dict(sample_size=512), {},
                    [("", "CLIPTextModel", CLIP_L, "<|endoftext|>")]),
    "sd2": ("StableDiffusionPipeline", SD2_UNET, dict(sample_size=768), dict(prediction_type="v_prediction"),
            [("", "CLIPTextModel", OPEN_CLIP_H, "!")]),
    # 2.x-base (512 px) and SD-Turbo predict the noise (epsilon), unlike 2.x at 768; Turbo spaces its 1-4 steps
    # "trailing" (as stabilityai/sd-turbo's scheduler config), so its first step starts from pure noise.
    "sd2-base": ("StableDiffusionPipeline", dict(SD2_UNET, sample_size=64), dict(sample_size=512), {},
                 [("", "CLIPTextModel", OPEN_CLIP_H, "!")]),
    "sd2-turbo": ("StableDiffusionPipeline", dict(SD2_UNET, sample_size=64), dict(sample_size=512),
                  dict(timestep_spacing="trailing"), [("", "CLIPTextModel", OPEN_CLIP_H, "!")]),
    "sd2-inpaint": ("StableDiffusionInpaintPipeline", dict(SD2_UNET, in_channels=9, sample_size=64),
                    dict(sample_size=512), {}, [("", "CLIPTextModel", OPEN_CLIP_H, "!")]),
    "sdxl": ("StableDiffusionXLPipeline", SDXL_UNET, dict(sample_size=1024, scaling_factor=0.13025, force_upcast=True),
             {}, [("", "CLIPTextModel", CLIP_L, "<|endoftext|>"),
                  ("_2", "CLIPTextModelWithProjection", OPEN_CLIP_BIGG, "!")]),
    # SDXL-Turbo spaces its 1-4 steps "trailing" too (stabilityai/sdxl-turbo's scheduler config); at 512 px.
    "sdxl-turbo": ("StableDiffusionXLPipeline", dict(SDXL_UNET, sample_size=64),
                   dict(sample_size=1024, scaling_factor=0.13025, force_upcast=True), dict(timestep_spacing="trailing"),
                   [("", "CLIPTextModel", CLIP_L, "<|endoftext|>"),
                    ("_2", "CLIPTextModelWithProjection", OPEN_CLIP_BIGG, "!")]),
    "sdxl-inpaint": ("StableDiffusionXLInpaintPipeline", dict(SDXL_UNET, in_channels=9),
                     dict(sample_size=1024, scaling_factor=0.13025, force_upcast=True), {},
                     [("", "CLIPTextModel", CLIP_L, "<|endoftext|>"),
                      ("_2", "CLIPTextModelWithProjection", OPEN_CLIP_BIGG, "!")]),
}

# ControlNets: the UNet's encoder half with the hint encoder (lllyasviel's 16/32/96/256 channels) in front.
CONTROLNET = dict(conditioning_embedding_out_channels=(16, 32, 96, 256), controlnet_conditioning_channel_order="rgb")
CONTROLNETS = {
    "controlnet-sd1": dict(CONTROLNET, **{k: SD1_UNET[k] for k in (
        "in_channels", "layers_per_block", "block_out_channels", "down_block_types", "cross_attention_dim",
        "attention_head_dim")}),
    "controlnet-sd2": dict(CONTROLNET, **{k: SD2_UNET[k] for k in (
        "in_channels", "layers_per_block", "block_out_channels", "down_block_types", "cross_attention_dim",
        "attention_head_dim", "use_linear_projection")}),
    "controlnet-sdxl": dict(CONTROLNET, **{k: SDXL_UNET[k] for k in (
        "in_channels", "layers_per_block", "block_out_channels", "down_block_types", "cross_attention_dim",
        "attention_head_dim", "use_linear_projection", "transformer_layers_per_block", "addition_embed_type",
        "addition_time_embed_dim", "projection_class_embeddings_input_dim")}),
}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_tokenizer(bpe_gz: Path) -> None:
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())  # CLIP's byte-to-unicode alphabet, in byte order
    tokens = chars + [c + "</w>" for c in chars] + ["".join(line.split()) for line in lines]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    out = HERE / "clip-tokenizer"
    out.mkdir(exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False),
                                    encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")


def build_family(name: str, spec: tuple) -> None:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig

    pipeline, unet, vae_extra, scheduler_extra, encoders = spec
    root = HERE / name
    with torch.device("meta"):
        UNet2DConditionModel(**unet).save_config(root / "unet")
        AutoencoderKL(**VAE, **vae_extra).save_config(root / "vae")
    EulerDiscreteScheduler(**{**BETAS, **scheduler_extra}).save_config(root / "scheduler")
    index: dict = {"_class_name": pipeline, "_diffusers_version": "0.42.1",
                   "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    for suffix, cls, config, pad in encoders:
        CLIPTextConfig(**config).save_pretrained(root / f"text_encoder{suffix}")
        write_json(root / f"tokenizer{suffix}" / "tokenizer_config.json", {
            "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
            "pad_token": pad, "errors": "replace", "add_prefix_space": False})
        index[f"text_encoder{suffix}"] = ["transformers", cls]
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
    if pipeline.startswith("StableDiffusionXL"):
        index.update(force_zeros_for_empty_prompt=True, image_encoder=[None, None], feature_extractor=[None, None])
        if "Inpaint" in pipeline:
            index["requires_aesthetics_score"] = False
    else:
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False,
                     image_encoder=[None, None])
    write_json(root / "model_index.json", index)


def build_controlnet(name: str, params: dict) -> None:
    """A ControlNet's config.json alone: ``ControlNetModel.from_single_file(config=folder)`` reads just that."""
    import torch
    from diffusers import ControlNetModel

    with torch.device("meta"):
        ControlNetModel(**params).save_config(HERE / name)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        build_tokenizer(Path(sys.argv[1]))
    for family, spec in FAMILIES.items():
        build_family(family, spec)
    for name, params in CONTROLNETS.items():
        build_controlnet(name, params)
