"""Single-file checkpoints: the tiny pipeline in the original layout loads through Studio's loader and
makes the same picture as its diffusers folder; the shipped configs are complete and need no network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from single_file import write_original_checkpoint
from studio.core.errors import ModelError
from studio.core.model_kinds import detect_kind
from studio.core.models import checkpoint_kind
from studio.core.paths import resources_dir
from studio.core.weight_files import read_safetensors_header
from studio.engine.device import select_device
from studio.engine.loader import load_model
from studio.engine.single_file import config_folder, config_key


@pytest.fixture(scope="module")
def library(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the tiny model as one original-layout checkpoint and its config under configs/sd1."""
    models = tmp_path_factory.mktemp("models")
    write_original_checkpoint(tiny_model_dir, models / "checkpoints" / "tiny-original.safetensors")
    shutil.copytree(tiny_model_dir, models / "configs" / "sd1",
                    ignore=shutil.ignore_patterns("*.safetensors"))  # the configs, not the weights
    return models


def picture(pipe, seed: int = 3) -> np.ndarray:  # noqa: ANN001
    with torch.inference_mode():
        image = pipe("a red fox", num_inference_steps=2, width=64, height=64, guidance_scale=7.0,
                     generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images[0]
    return image


def test_the_original_layout_is_detected_as_sd1(library):
    info = read_safetensors_header(library / "checkpoints" / "tiny-original.safetensors")
    kind = detect_kind(info, "tiny-original.safetensors")
    assert (kind.kind, kind.family, kind.inpainting) == ("checkpoint", "sd1", False)


def test_a_single_file_checkpoint_makes_the_same_picture_as_its_folder(library, tiny_model_dir, tmp_path,
                                                                        monkeypatch):
    cpu = select_device("cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any attempt to reach the hub fails instead of waiting
    checkpoint = library / "checkpoints" / "tiny-original.safetensors"
    single = load_model(checkpoint, cpu, tmp_path / "hashes.json", models_dir=library, cache_dir=tmp_path)
    folder = load_model(tiny_model_dir, cpu)
    assert single.name == "tiny-original" and single.path == checkpoint.resolve()
    assert len(single.hash) == 10 and single.family == "sd"
    assert type(single.text2img).__name__ == "StableDiffusionPipeline"
    np.testing.assert_allclose(picture(single.text2img), picture(folder.text2img), atol=1e-5)


def test_shipped_configs_are_complete_for_every_family(tmp_path):
    for key in ("sd1", "sd1-inpaint", "sd2", "sd2-base", "sd2-turbo", "sd2-inpaint", "sdxl", "sdxl-turbo",
                "sdxl-inpaint"):
        folder = config_folder(key, None, tmp_path)
        index = json.loads((folder / "model_index.json").read_text())
        for component, spec in index.items():
            if isinstance(spec, list) and spec[0] is not None:
                assert (folder / component).is_dir(), f"{key}: {component}"
        for tokenizer in folder.glob("tokenizer*"):
            assert len(json.loads((tokenizer / "vocab.json").read_text(encoding="utf-8"))) == 49408
            assert (tokenizer / "merges.txt").is_file()
    unet = json.loads((tmp_path / "model-configs" / "sdxl-inpaint" / "unet" / "config.json").read_text())
    assert unet["in_channels"] == 9 and unet["cross_attention_dim"] == 2048


SD2_SHAPES = {"model.diffusion_model.input_blocks.0.0.weight": (1, 4, 1, 1),
              "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (1, 1024),
              "cond_stage_model.model.positional_embedding": (1, 1)}


@pytest.mark.parametrize(("name", "metadata", "expected"), [
    ("sd_turbo.safetensors", {"modelspec.architecture": "stable-diffusion-v2-1-turbo"}, ("epsilon", 512, "trailing")),
    ("v2-1_512-ema-pruned.safetensors", {}, ("epsilon", 512, "leading")),
    ("v2-1_768-ema-pruned.safetensors", {}, ("v_prediction", 768, "leading")),
])
def test_sd2_files_load_with_the_config_of_what_they_are(tmp_path, name, metadata, expected):
    """SD-Turbo and 2.x-base files were loaded as 768 v-prediction models, and made noise."""
    from safetensors.numpy import save_file

    path = tmp_path / name
    save_file({k: np.zeros(s, np.uint8) for k, s in SD2_SHAPES.items()}, str(path), metadata=metadata)
    folder = config_folder(config_key(checkpoint_kind(path)), None, tmp_path / "cache")
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    unet = json.loads((folder / "unet" / "config.json").read_text())
    assert (scheduler["prediction_type"], unet["sample_size"] * 8, scheduler["timestep_spacing"]) == expected


def test_an_sdxl_turbo_file_takes_its_trailing_steps_at_512(tmp_path):
    """SDXL-Turbo's 1-4 steps are spaced "trailing" (its own scheduler config): "leading" started the first step
    short of pure noise."""
    from safetensors.numpy import save_file

    unet = "model.diffusion_model."
    shapes = {unet + "input_blocks.0.0.weight": (1, 4, 1, 1), unet + "label_emb.0.0.weight": (1, 2816),
              unet + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (1, 2048),
              "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight": (1, 1),
              "conditioner.embedders.1.model.positional_embedding": (1, 1)}
    for name, expected in (("sd_xl_turbo_1.0_fp16.safetensors", ("epsilon", 512, "trailing")),
                           ("sd_xl_base_1.0.safetensors", ("epsilon", 1024, "leading"))):
        path = tmp_path / name
        save_file({k: np.zeros(s, np.uint8) for k, s in shapes.items()}, str(path))
        folder = config_folder(config_key(checkpoint_kind(path)), None, tmp_path / "cache")
        scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        size = json.loads((folder / "unet" / "config.json").read_text())["sample_size"] * 8
        assert (scheduler["prediction_type"], size, scheduler["timestep_spacing"]) == expected, name


def test_the_shipped_tokenizer_is_clips():
    from transformers import CLIPTokenizer

    folder = resources_dir() / "model-configs" / "clip-tokenizer"
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    # The ids OpenAI's CLIP gives "a photo of a cat": the BPE merges are the released ones.
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_the_config_copy_is_reused_until_the_shipped_one_changes(tmp_path):
    first = config_folder("sd1", None, tmp_path)
    marker = first / "unet" / "marker"
    marker.write_text("kept")
    assert config_folder("sd1", None, tmp_path) == first and marker.exists()


def test_a_lora_file_is_not_taken_for_a_checkpoint(tmp_path):
    from safetensors.numpy import save_file

    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": np.zeros((4, 8), np.float16),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": np.zeros((8, 4), np.float16)},
              str(lora))
    with pytest.raises(ModelError, match="not a full Stable Diffusion checkpoint"):
        load_model(lora, select_device("cpu"))


@pytest.mark.parametrize(("key", "unet_params"), [("sd1", 859_520_964), ("sdxl", 2_567_463_684)])
def test_shipped_configs_build_the_released_architectures(key, unet_params, tmp_path):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    folder = config_folder(key, None, tmp_path)
    with torch.device("meta"):  # shapes only: no memory for billions of weights
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    assert sum(p.numel() for p in unet.parameters()) == unet_params  # the parameter counts of the releases
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863


def test_an_sdxl_single_file_checkpoint_makes_the_same_picture_as_its_folder(tmp_path, monkeypatch):
    from tiny_models import build_tiny_sdxl

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cpu = select_device("cpu")
    folder = build_tiny_sdxl(tmp_path / "tiny-xl")
    models = tmp_path / "models"
    checkpoint = write_original_checkpoint(folder, models / "checkpoints" / "tiny-xl.safetensors")
    kind = detect_kind(read_safetensors_header(checkpoint), checkpoint.name)
    assert (kind.kind, kind.family, kind.label) == ("checkpoint", "sdxl", "SDXL")
    shutil.copytree(folder, models / "configs" / "sdxl", ignore=shutil.ignore_patterns("*.safetensors"))
    single = load_model(checkpoint, cpu, models_dir=models, cache_dir=tmp_path)
    assert single.family == "sdxl" and type(single.text2img).__name__ == "StableDiffusionXLPipeline"
    np.testing.assert_allclose(picture(single.text2img), picture(load_model(folder, cpu).text2img), atol=1e-5)


def test_an_inpainting_single_file_checkpoint_loads_as_an_inpainting_model(tiny_inpaint_model_dir, tmp_path):
    models = tmp_path / "models"
    checkpoint = write_original_checkpoint(tiny_inpaint_model_dir, models / "checkpoints" / "tiny-inpaint.safetensors")
    kind = detect_kind(read_safetensors_header(checkpoint), checkpoint.name)
    assert (kind.family, kind.inpainting, kind.label) == ("sd1", True, "SD 1.x inpainting")
    shutil.copytree(tiny_inpaint_model_dir, models / "configs" / "sd1-inpaint",
                    ignore=shutil.ignore_patterns("*.safetensors"))
    model = load_model(checkpoint, select_device("cpu"), models_dir=models, cache_dir=tmp_path)
    assert model.is_inpainting and type(model.text2img).__name__ == "StableDiffusionPipeline"
    assert type(model.pipeline(inpaint=True)).__name__ == "StableDiffusionInpaintPipeline"


def test_a_file_of_another_size_than_its_configs_is_one_sentence_before_any_loading(library, tmp_path):
    # diffusers said "Cannot load  because embeddings.position_embedding.weight expected shape … pass both
    # low_cpu_mem_usage=False and ignore_mismatched_sizes=True … github issue" after seconds of loading.
    from studio.engine.single_file import _mismatch_sentence, check_single_file

    checkpoint = library / "checkpoints" / "tiny-original.safetensors"
    check_single_file(checkpoint, library)  # the tiny model's own configs: it fits
    elsewhere = tmp_path / "models"  # no configs/sd1: Studio's own SD 1.x configs
    with pytest.raises(ModelError) as refusal:
        load_model(checkpoint, select_device("cpu"), models_dir=elsewhere, cache_dir=tmp_path)
    # No configs/sd1 there: the sentence says where to put some, not that they were used from there.
    assert str(refusal.value) == (
        "tiny-original.safetensors does not fit the SD 1.x layout Studio loads it with: its UNet's first layer "
        "(model.diffusion_model.input_blocks.0.0.weight) is 8×4×3×3, where SD 1.x has 320×4×3×3. It may be a model "
        "of another size, or a damaged file; to load it with other diffusers configs, put them in "
        f"{elsewhere / 'configs' / 'sd1'}.")
    with pytest.raises(ModelError, match=r"^tiny-original\.safetensors does not fit the SD 1\.x layout"):
        check_single_file(checkpoint, elsewhere)
    own = tmp_path / "own-configs"  # the person's configs/sd1 (here SD 1.x's full size) are there and used
    shutil.copytree(resources_dir() / "model-configs" / "sd1", own / "configs" / "sd1")
    with pytest.raises(ModelError) as refusal:
        check_single_file(checkpoint, own)
    assert str(refusal.value).endswith(
        f"It may be a model of another size (its diffusers configs in {own / 'configs' / 'sd1'} are used instead "
        "of Studio's), or a damaged file.")
    raw = ValueError("Cannot load  because embeddings.position_embedding.weight expected shape tensor(..., "
                     "device='meta', size=(77, 768)), but got torch.Size([77, 32]). If you want to instead overwrite "
                     "randomly initialized weights, please make sure to pass both `low_cpu_mem_usage=False` and "
                     "`ignore_mismatched_sizes=True`. For more information, see also: https://github.com/huggingface/"
                     "diffusers/issues/1619#issuecomment-1345604389 as an example.")
    assert _mismatch_sentence(raw, checkpoint, checkpoint_kind(checkpoint)) == (
        "tiny-original.safetensors does not fit the SD 1.x layout Studio loads it with: its "
        "embeddings.position_embedding.weight is 77×32, where SD 1.x has 77×768. It may be a model of another size, "
        "or a damaged file.")
