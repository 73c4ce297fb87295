"""Telling what a weights file or diffusers folder holds from its tensor names and shapes.

Files are written with the real key names and tiny arrays; a dim is real only where detection reads it
(UNet in-channels, cross-attention widths, the style networks' layer shapes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_files import kind_of

from studio.core.errors import ModelError
from studio.core.model_kind import FAMILY_LABELS
from studio.core.model_kinds import detect_folder_kind, detect_kind
from studio.core.weight_files import check_weights_file

Shapes = dict[str, tuple[int, ...]]
UNET = "model.diffusion_model."


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


def test_diffusion_checkpoints_studio_cannot_use_are_unknown(tmp_path):
    pix2pix = kind_of(tmp_path, {**unet(8), **SD1_TEXT})
    flux = kind_of(tmp_path, {UNET + "double_blocks.0.img_attn.norm.key_norm.scale": (1,)})
    assert pix2pix.kind == flux.kind == "unknown"


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


def test_a_controlnet_bundled_with_its_model_is_a_controlnet_and_compact_upscalers_are_not_adapters(tmp_path):
    control = {"control_model.input_hint_block.0.weight": (16, 3, 3, 3),
               "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)}
    bundled = kind_of(tmp_path, {**unet(), **SD1_TEXT, **control})
    assert (bundled.kind, bundled.family) == ("controlnet", "sd1")
    assert kind_of(tmp_path, OTHERS["compact"][0]).kind == "upscaler"  # body.0.weight, but no T2I-Adapter block
