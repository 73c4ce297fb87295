"""Telling what a weights file or diffusers folder holds from its tensor names and shapes.

Files are written with the real key names and tiny arrays; a dim is real only where detection reads it
(UNet in-channels, cross-attention widths, the style networks' layer shapes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from studio.core.errors import ModelError
from studio.core.model_kinds import (
    FAMILY_LABELS,
    ModelKind,
    detect_folder_kind,
    detect_kind,
)
from studio.core.weight_files import check_weights_file

Shapes = dict[str, tuple[int, ...]]
UNET = "model.diffusion_model."


def kind_of(tmp_path: Path, shapes: Shapes, name: str = "model.safetensors",
            metadata: dict[str, str] | None = None) -> ModelKind:
    path = tmp_path / name
    save_file({key: np.zeros(shape, np.uint8) for key, shape in shapes.items()}, str(path), metadata=metadata)
    return detect_kind(check_weights_file(path), name)


def unet(in_channels: int = 4, width: int = 768, block: str = "input_blocks.1.1") -> Shapes:
    return {UNET + "input_blocks.0.0.weight": (1, in_channels, 1, 1),
            UNET + f"{block}.transformer_blocks.0.attn2.to_k.weight": (1, width),
            UNET + "output_blocks.11.0.skip_connection.weight": (1, 1, 1, 1),
            "first_stage_model.decoder.conv_in.weight": (1, 4, 1, 1)}


SD1_TEXT = {"cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": (1, 1)}
SD2_TEXT = {"cond_stage_model.model.token_embedding.weight": (1, 1),
            "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (1, 1)}
SDXL_TEXT = {"conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": (1, 1),
             "conditioner.embedders.1.model.positional_embedding": (1, 1),
             "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": (1,)}
REFINER_TEXT = {"conditioner.embedders.0.model.text_projection": (1, 1),
                "conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": (1,)}
SDXL_UNET = {**unet(width=2048, block="input_blocks.4.1"), UNET + "label_emb.0.0.weight": (1, 2816)}

CHECKPOINTS = {
    "sd1": ({**unet(), **SD1_TEXT}, ("sd1", False, "SD 1.x")),
    "sd1 inpainting": ({**unet(9), **SD1_TEXT}, ("sd1", True, "SD 1.x inpainting")),
    "sd1 unet only": (unet(), ("sd1", False, "SD 1.x")),
    "sd2": ({**unet(width=1024), **SD2_TEXT}, ("sd2", False, "SD 2.x (768, v)")),
    "sd2 inpainting": ({**unet(9, 1024), **SD2_TEXT}, ("sd2", True, "SD 2.x inpainting")),
    "sdxl": ({**SDXL_UNET, **SDXL_TEXT}, ("sdxl", False, "SDXL")),
    "sdxl inpainting": ({**SDXL_UNET, **unet(9, 2048, "input_blocks.4.1"), **SDXL_TEXT},
                        ("sdxl", True, "SDXL inpainting")),
    "sdxl unet only": (SDXL_UNET, ("sdxl", False, "SDXL")),
    "sdxl refiner": ({**unet(width=1280, block="input_blocks.4.1"), **REFINER_TEXT},
                     ("sdxl-refiner", False, "SDXL refiner")),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_checkpoints(tmp_path, case):
    shapes, (family, inpainting, label) = CHECKPOINTS[case]
    kind = kind_of(tmp_path, shapes)
    assert (kind.kind, kind.family, kind.inpainting, kind.turbo, kind.label) == (
        "checkpoint", family, inpainting, False, label)


def test_turbo_from_metadata_or_filename(tmp_path):
    sdxl = {**SDXL_UNET, **SDXL_TEXT}
    by_meta = kind_of(tmp_path, sdxl, "fast.safetensors", {"modelspec.title": "SDXL Turbo"})
    assert (by_meta.family, by_meta.turbo, by_meta.label) == ("sdxl", True, "SDXL-Turbo")
    by_name = kind_of(tmp_path, {**unet(width=1024), **SD2_TEXT}, "sd_turbo.safetensors")
    assert (by_name.family, by_name.turbo, by_name.label) == ("sd2", True, "SD-Turbo")
    plain = kind_of(tmp_path, sdxl, "base.safetensors", {"modelspec.title": "SDXL 1.0"})
    assert not plain.turbo and plain.label == "SDXL"


def sd2_file(path: Path, bias: np.ndarray | None = None, metadata: dict[str, str] | None = None) -> Path:
    tensors = {key: np.zeros(shape, np.uint8) for key, shape in {**unet(width=1024), **SD2_TEXT}.items()}
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


def test_lycoris_loha_and_lokr_files_are_told_from_loras(tmp_path):
    """They showed as "LoRA (kohya)" and then failed inside diffusers."""
    from studio.core.model_kinds import lycoris_problem

    block = "lora_unet_input_blocks_4_1_proj_in"
    loha = kind_of(tmp_path, {f"{block}.hada_w1_a": (4, 4), f"{block}.hada_w2_b": (4, 4)}, "a.safetensors")
    lokr = kind_of(tmp_path, {f"{block}.lokr_w1": (2, 2), f"{block}.lokr_w2": (4, 4)}, "b.safetensors")
    assert (loha.kind, loha.label, loha.detail) == ("lora", "LyCORIS LoHa (SDXL)", "LyCORIS LoHa")
    assert (lokr.kind, lokr.label) == ("lora", "LyCORIS LoKr (SDXL)")
    assert lycoris_problem(loha, "a.safetensors") == (
        "a.safetensors is a LyCORIS LoHa file; Studio applies LoRA and LoCon files, not LyCORIS LoHa or LoKr ones.")
    locon = kind_of(tmp_path, {"lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": (4, 8, 3, 3)})
    assert locon.label == "LoRA" and not lycoris_problem(locon, "c.safetensors")


def test_diffusion_checkpoints_studio_cannot_use_are_unknown(tmp_path):
    pix2pix = kind_of(tmp_path, {**unet(8), **SD1_TEXT})
    flux = kind_of(tmp_path, {UNET + "double_blocks.0.img_attn.norm.key_norm.scale": (1,)})
    assert pix2pix.kind == flux.kind == "unknown"


KOHYA_SD1 = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (1, 4),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": (),
             "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1)}
KOHYA_SDXL = {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 2048),
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": (1, 4),
              "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1),
              "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 1)}
PEFT_SD1 = {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (4, 768),
            "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (1, 4)}
OLD_DIFFUSERS_SDXL = {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": (4, 1),
                      "text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight":
                          (4, 1)}

LORAS = {
    "kohya sd1": (KOHYA_SD1, None, ("sd1", "LoRA (SD 1.x)", "kohya")),
    "kohya sdxl": (KOHYA_SDXL, None, ("sdxl", "LoRA (SDXL)", "kohya")),
    "kohya sdxl unet only, by block names": (
        {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": (4, 1)}, None,
        ("sdxl", "LoRA (SDXL)", "kohya")),
    "kohya sd2 by metadata": ({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": (4, 1)},
                              {"ss_base_model_version": "sd_v2"}, ("sd2", "LoRA (SD 2.x)", "kohya")),
    "peft sd1": (PEFT_SD1, None, ("sd1", "LoRA (SD 1.x)", "diffusers")),
    "old diffusers sdxl": (OLD_DIFFUSERS_SDXL, None, ("sdxl", "LoRA (SDXL)", "diffusers")),
}


@pytest.mark.parametrize("case", list(LORAS))
def test_loras(tmp_path, case):
    shapes, metadata, (family, label, detail) = LORAS[case]
    kind = kind_of(tmp_path, shapes, metadata=metadata)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("lora", family, label, detail)


VAE_LDM = {"encoder.conv_in.weight": (1, 3, 1, 1), "encoder.down.0.block.0.conv1.weight": (1,),
           "decoder.conv_in.weight": (1, 4, 1, 1), "decoder.up.0.block.0.conv1.weight": (1,),
           "quant_conv.weight": (1,), "post_quant_conv.weight": (1,)}
VAE_DIFFUSERS = {"encoder.down_blocks.0.resnets.0.conv1.weight": (1,), "decoder.conv_in.weight": (1, 4, 1, 1),
                 "decoder.up_blocks.0.resnets.0.conv1.weight": (1,), "post_quant_conv.weight": (1,)}

OTHERS = {
    "vae, original names": (VAE_LDM, ("vae", "VAE", "")),
    "vae, diffusers names": (VAE_DIFFUSERS, ("vae", "VAE", "")),
    "vae, checkpoint prefix": ({f"first_stage_model.{k}": v for k, v in VAE_LDM.items()}, ("vae", "VAE", "")),
    "vae with ema bookkeeping": ({**VAE_LDM, "model_ema.decay": ()}, ("vae", "VAE", "")),
    "16-channel vae": ({**VAE_LDM, "decoder.conv_in.weight": (1, 16, 1, 1)}, ("unknown", "Unknown", None)),
    "esrgan old": ({"model.0.weight": (1, 3, 1, 1), "model.1.sub.0.RDB1.conv1.0.weight": (1,),
                    "model.1.sub.23.weight": (1,), "model.3.weight": (1,), "model.10.weight": (1,)},
                   ("upscaler", "Upscaler (ESRGAN)", "ESRGAN")),
    "esrgan new": ({"conv_first.weight": (1,), "body.0.rdb1.conv1.weight": (1,), "conv_body.weight": (1,),
                    "conv_up1.weight": (1,), "conv_hr.weight": (1,), "conv_last.weight": (1,)},
                   ("upscaler", "Upscaler (ESRGAN)", "ESRGAN (new layout)")),
    "bsrgan": ({"conv_first.weight": (1,), "RRDB_trunk.0.RDB1.conv1.weight": (1,), "trunk_conv.weight": (1,),
                "conv_last.weight": (1,)}, ("upscaler", "Upscaler (ESRGAN)", "ESRGAN (new layout)")),
    "compact": ({"body.0.weight": (1, 3, 1, 1), "body.0.bias": (1,), "body.1.weight": (1,),
                 "body.2.weight": (1, 1, 1, 1), "body.3.weight": (1,), "body.4.weight": (1, 1, 1, 1)},
                ("upscaler", "Upscaler (Real-ESRGAN Compact)", "Real-ESRGAN Compact")),
    "vgg-19": ({"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,), "features.2.weight": (64, 64, 3, 3),
                "classifier.0.weight": (1, 1)}, ("style", "Style-transfer weights", "VGG-19")),
    "vgg-19 features only": ({"0.weight": (64, 3, 3, 3), "2.weight": (64, 64, 3, 3), "5.weight": (1,)},
                             ("style", "Style-transfer weights", "VGG-19")),
    "adain encoder": ({"0.weight": (3, 3, 1, 1), "2.weight": (64, 3, 3, 3), "5.weight": (1,)},
                      ("style", "Style-transfer weights", "AdaIN encoder")),
    "adain decoder": ({"1.weight": (256, 512, 3, 3), "5.weight": (1,), "28.weight": (3, 64, 3, 3)},
                      ("style", "Style-transfer weights", "AdaIN decoder")),
    "ip-adapter": ({"image_proj.proj.weight": (1, 1), "image_proj.norm.weight": (1,),
                    "ip_adapter.1.to_k_ip.weight": (1, 768), "ip_adapter.1.to_v_ip.weight": (1, 768)},
                   ("ip-adapter", "IP-Adapter", "")),
    "textual inversion": ({"emb_params": (2, 768)}, ("embedding", "Textual inversion", "")),
    "sdxl textual inversion": ({"clip_l": (2, 768), "clip_g": (2, 1280)}, ("embedding", "Textual inversion", "")),
    "diffusers textual inversion": ({"<cat-toy>": (768,)}, ("embedding", "Textual inversion", "")),
    "unknown": ({"foo.bar": (2, 2), "baz": (3,)}, ("unknown", "Unknown", "")),
    "empty": ({}, ("unknown", "Unknown", "")),
}


@pytest.mark.parametrize("case", list(OTHERS))
def test_other_kinds(tmp_path, case):
    shapes, (kind_name, label, detail) = OTHERS[case]
    kind = kind_of(tmp_path, shapes)
    assert (kind.kind, kind.label) == (kind_name, label)
    if detail is not None:
        assert kind.detail == detail


def test_families_of_adapters_and_embeddings(tmp_path):
    assert kind_of(tmp_path, OTHERS["ip-adapter"][0]).family == "sd1"
    assert kind_of(tmp_path, {"emb_params": (2, 1024)}).family == "sd2"
    assert kind_of(tmp_path, {"clip_l": (2, 768), "clip_g": (2, 1280)}).family == "sdxl"
    assert set(FAMILY_LABELS) == {"sd1", "sd2", "sdxl", "sdxl-refiner"}


def test_style_files_written_by_the_engine_are_style(tmp_path):
    """The layouts the style filters really load, built by the engine's own modules."""
    pytest.importorskip("torch")
    from style_weights import write_adain, write_vgg19

    vgg = write_vgg19(tmp_path, last=3)  # the first layers are what detection reads; the rest only costs time
    encoder, decoder = write_adain(tmp_path)
    details = [detect_kind(check_weights_file(p)).detail for p in (vgg, encoder, decoder)]
    assert details == ["VGG-19", "AdaIN encoder", "AdaIN decoder"]
    unprefixed = write_vgg19(tmp_path / "bare", prefix="", last=3)
    assert detect_kind(check_weights_file(unprefixed)).kind == "style"


# -- diffusers folders ---------------------------------------------------------------------------

def folder(tmp_path: Path, name: str, pipeline: str, unet_config: dict[str, object] | None = None,
           **index: object) -> Path:
    path = tmp_path / name
    (path / "unet").mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": pipeline, **index}))
    if unet_config is not None:
        (path / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel",
                                                                **unet_config}))
    return path


FOLDERS = {
    "sd1": ("sd15", "StableDiffusionPipeline", {"in_channels": 4, "cross_attention_dim": 768}, {},
            ("checkpoint", "sd1", False, "SD 1.x")),
    "sd2": ("sd21", "StableDiffusionPipeline", {"in_channels": 4, "cross_attention_dim": 1024}, {},
            ("checkpoint", "sd2", False, "SD 2.x")),
    "sd1 inpainting by class": ("inp", "StableDiffusionInpaintPipeline", None, {},
                                ("checkpoint", "sd1", True, "SD 1.x inpainting")),
    "sd1 inpainting by unet": ("inp2", "StableDiffusionPipeline", {"in_channels": 9}, {},
                               ("checkpoint", "sd1", True, "SD 1.x inpainting")),
    "sdxl": ("xl", "StableDiffusionXLPipeline", {"in_channels": 4, "cross_attention_dim": 2048}, {},
             ("checkpoint", "sdxl", False, "SDXL")),
    "sdxl inpainting": ("xl-inp", "StableDiffusionXLInpaintPipeline", {"in_channels": 9}, {},
                        ("checkpoint", "sdxl", True, "SDXL inpainting")),
    "sdxl refiner": ("refiner", "StableDiffusionXLImg2ImgPipeline", {"cross_attention_dim": 1280},
                     {"text_encoder": [None, None], "requires_aesthetics_score": True},
                     ("checkpoint", "sdxl-refiner", False, "SDXL refiner")),
    "sdxl base as img2img": ("xl-i2i", "StableDiffusionXLImg2ImgPipeline", {"cross_attention_dim": 2048},
                             {"text_encoder": ["transformers", "CLIPTextModel"]},
                             ("checkpoint", "sdxl", False, "SDXL")),
    "sdxl turbo": ("sdxl-turbo", "StableDiffusionXLPipeline", {"cross_attention_dim": 2048}, {},
                   ("checkpoint", "sdxl", False, "SDXL-Turbo")),
    "flux": ("flux", "FluxPipeline", None, {}, ("unknown", "", False, "Unknown")),
}


@pytest.mark.parametrize("case", list(FOLDERS))
def test_diffusers_folders(tmp_path, case):
    name, pipeline, unet_config, index, expected = FOLDERS[case]
    kind = detect_folder_kind(folder(tmp_path, name, pipeline, unet_config, **index))
    assert (kind.kind, kind.family, kind.inpainting, kind.label) == expected
    assert kind.turbo == ("turbo" in name)


def test_vae_folder_and_plain_folders(tmp_path):
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4}))
    assert detect_folder_kind(vae).label == "VAE"
    (tmp_path / "empty").mkdir()
    assert detect_folder_kind(tmp_path / "empty").kind == "unknown"


def test_broken_model_index_is_a_sentence(tmp_path):
    path = tmp_path / "broken"
    path.mkdir()
    (path / "model_index.json").write_text("{ not json")
    with pytest.raises(ModelError, match=r"^broken/model_index\.json could not be read as JSON\.$"):
        detect_folder_kind(path)


# -- ControlNets -----------------------------------------------------------------------------------

CN = "control_model."
CONTROLNETS = {
    # lllyasviel's ControlNet 1.1 for SD 1.5, as A1111 and ComfyUI people have them
    "sd1 original": ({CN + "input_hint_block.0.weight": (16, 3, 3, 3), CN + "zero_convs.0.0.weight": (1, 1, 1, 1),
                      CN + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)},
                     ("sd1", "ControlNet (SD 1.x)", "original")),
    # thibaud's SD 2.1 ControlNets: the same layout without the prefix
    "sd2 original, bare": ({"input_hint_block.0.weight": (16, 3, 3, 3), "time_embed.0.weight": (1, 1),
                            "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024)},
                           ("sd2", "ControlNet (SD 2.x)", "original")),
    # SDXL's first cross-attention is in input block 4 (block 0 has none), and it keeps SDXL's size conditioning
    "sdxl original": ({CN + "input_hint_block.0.weight": (16, 3, 3, 3), CN + "label_emb.0.0.weight": (1, 2816),
                       CN + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048)},
                      ("sdxl", "ControlNet (SDXL)", "original")),
    "sd1 diffusers": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                       "controlnet_down_blocks.0.weight": (1, 1, 1, 1),
                       "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (320, 768)},
                      ("sd1", "ControlNet (SD 1.x)", "diffusers")),
    # diffusers/controlnet-canny-sdxl-1.0 as one file
    "sdxl diffusers": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                        "add_embedding.linear_1.weight": (1280, 2816),
                        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": (640, 2048)},
                       ("sdxl", "ControlNet (SDXL)", "diffusers")),
    "sdxl diffusers small": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
                              "add_embedding.linear_1.weight": (1280, 2816)},
                             ("sdxl", "ControlNet (SDXL)", "diffusers")),
    "control-lora": ({"lora_controlnet": (1,), "input_hint_block.0.weight": (16, 3, 3, 3),
                      "label_emb.0.0.weight": (1, 2816)}, ("sdxl", "Control-LoRA (SDXL)", "Control-LoRA")),
    "t2i-adapter original": ({"conv_in.weight": (1, 1, 1, 1), "body.0.block1.weight": (1, 1, 1, 1)},
                             ("", "T2I-Adapter", "T2I-Adapter")),
    "t2i-adapter diffusers": ({"adapter.conv_in.weight": (1, 1, 1, 1),
                               "adapter.body.0.resnets.0.block1.weight": (1, 1, 1, 1)},
                              ("", "T2I-Adapter", "T2I-Adapter")),
    "controlnet union": ({"controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3), "task_embedding": (8, 320)},
                         ("sdxl", "ControlNet Union (SDXL)", "ControlNet Union")),
}


@pytest.mark.parametrize("case", list(CONTROLNETS))
def test_controlnets(tmp_path, case):
    shapes, (family, label, detail) = CONTROLNETS[case]
    kind = kind_of(tmp_path, shapes)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("controlnet", family, label, detail)


def test_a_controlnet_bundled_with_its_model_is_a_controlnet_and_compact_upscalers_are_not_adapters(tmp_path):
    bundled = kind_of(tmp_path, {**unet(), **SD1_TEXT, **CONTROLNETS["sd1 original"][0]})
    assert (bundled.kind, bundled.family) == ("controlnet", "sd1")
    assert kind_of(tmp_path, OTHERS["compact"][0]).kind == "upscaler"  # body.0.weight, but no T2I-Adapter block


def test_what_cannot_guide_says_why(tmp_path):
    from studio.core.model_kinds import control_problem

    lora = kind_of(tmp_path, CONTROLNETS["control-lora"][0])
    assert control_problem(lora, "control-lora-canny-rank256.safetensors") == (
        "control-lora-canny-rank256.safetensors is a Control-LoRA, which Studio cannot use as a control guide yet; "
        "it runs ControlNet models (ControlNetModel in diffusers' layout, or lllyasviel's original control_model "
        "layout).")
    assert control_problem(kind_of(tmp_path, CONTROLNETS["sd1 original"][0]), "x") == ""


@pytest.mark.parametrize("config, expected", [
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 768}, ("sd1", "ControlNet (SD 1.x)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 1024}, ("sd2", "ControlNet (SD 2.x)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 2048,
      "addition_embed_type": "text_time"}, ("sdxl", "ControlNet (SDXL)", "diffusers")),
    ({"_class_name": "ControlNetModel", "cross_attention_dim": 32}, ("", "ControlNet", "diffusers")),
    ({"_class_name": "T2IAdapter", "in_channels": 3}, ("", "T2I-Adapter", "T2I-Adapter")),
    ({"_class_name": "ControlNetUnionModel", "cross_attention_dim": 2048},
     ("sdxl", "ControlNet Union (SDXL)", "ControlNet Union")),
])
def test_controlnet_folders(tmp_path, config, expected):
    (tmp_path / "config.json").write_text(json.dumps(config))
    kind = detect_folder_kind(tmp_path)
    assert (kind.kind, kind.family, kind.label, kind.detail) == ("controlnet", *expected)
