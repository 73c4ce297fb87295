"""Recipes: A1111 ``parameters`` text written exactly, read back losslessly, and read by sd-parsers."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from studio.core.images import read_recipe, save_image
from studio.core.metadata import LoraRecord, Recipe, parse_loras, parse_settings_line

BASE = Recipe(prompt="a red fox in the snow", negative_prompt="blurry", steps=20, sampler="Euler a",
              cfg_scale=7.0, seed=1234, width=512, height=768, model_name="tiny-sd", model_hash="0123456789")

PROMPTS = [
    "masterpiece, best quality, 1girl, (red hair:1.2), [blue eyes]",
    "ratio 16:9, time 12:30: noon",
    'a sign that says "open, 24/7", and \'quotes\'',
    "first line\nsecond line\n\nfourth line after a blank",
    "ünïcödé, 日本語のプロンプト, emoji 🦊🔥, Ελληνικά",
    "Steps: 5, Sampler: fake, Seed: 1",  # looks like a settings line, but it is the prompt
    "back\\slash and tab\there",
    "",  # an empty prompt (a negative prompt only)
]


def test_parameters_text_is_a1111_s_layout():
    assert BASE.to_parameters() == (
        "a red fox in the snow\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 0123456789, "
        "Model: tiny-sd, Version: Studio 0.1.0"
    )


def test_img2img_strength_and_empty_parts():
    recipe = replace(BASE, negative_prompt="", model_hash="", strength=0.55, cfg_scale=6.5)
    text = recipe.to_parameters()
    assert "Negative prompt" not in text
    assert "Model hash" not in text
    assert "CFG scale: 6.5" in text
    assert "Denoising strength: 0.55" in text
    assert Recipe.from_parameters(text) == recipe


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("negative", ["", "lowres, bad anatomy: 2", "neg line 1\nneg line 2 ü"])
def test_parameters_round_trip(prompt, negative):
    recipe = replace(BASE, prompt=prompt, negative_prompt=negative)
    assert Recipe.from_parameters(recipe.to_parameters()) == recipe


@pytest.mark.parametrize("model_name", ["tiny, sd", "model: v2", 'my "best" model', "ünï-model"])
def test_settings_values_that_need_quoting_round_trip(model_name):
    recipe = replace(BASE, model_name=model_name, sampler="DPM++ 2M SDE Karras")
    text = recipe.to_parameters()
    if any(c in model_name for c in ',:"'):
        assert "Model: \"" in text  # quoted the way A1111 quotes
    assert Recipe.from_parameters(text) == recipe


def test_json_round_trip_and_unknown_keys_are_ignored():
    recipe = replace(BASE, prompt=PROMPTS[4], strength=0.3, generator="plugin-gen")
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert "日本語" in recipe.to_json()  # stored readable, not escaped
    newer = recipe.to_json()[:-1] + ', "field_from_the_future": 1}'
    assert Recipe.from_json(newer) == recipe


def test_reads_another_tool_s_parameters():
    text = (
        "portrait of a knight, (armor:1.3)\n"
        "Negative prompt: cartoon, lowres\n"
        "Steps: 28, Sampler: DPM++ 2M Karras, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
        "Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
        'Lora hashes: "detail: 0a1b2c3d4e5f, style: 99ff", Clip skip: 2, Version: v1.10.1'
    )
    recipe = Recipe.from_parameters(text)
    assert recipe.prompt == "portrait of a knight, (armor:1.3)"
    assert recipe.negative_prompt == "cartoon, lowres"
    assert (recipe.steps, recipe.sampler, recipe.cfg_scale, recipe.seed) == (28, "DPM++ 2M Karras", 6.5, 3141592653)
    assert (recipe.width, recipe.height) == (832, 1216)
    assert (recipe.model_name, recipe.model_hash, recipe.version) == ("sd_xl_base_1.0", "31e35c80fc", "v1.10.1")
    assert recipe.strength is None


def test_parameters_without_a_settings_line_are_all_prompt():
    recipe = Recipe.from_parameters("just a prompt\nNegative prompt: nope")
    assert (recipe.prompt, recipe.negative_prompt, recipe.steps, recipe.seed) == ("just a prompt", "nope", 0, -1)


def test_parse_settings_line_honours_quotes():
    line = 'Steps: 20, Model: "a, b: \\"c\\"", Seed: 7, Empty: , Last: x'
    assert parse_settings_line(line) == {"Steps": "20", "Model": 'a, b: "c"', "Seed": "7", "Empty": "", "Last": "x"}


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_sd_parsers_reads_studio_images_as_automatic1111(tmp_path, suffix):
    recipe = replace(BASE, prompt="a cat, sitting: on a mat\n\"quoted\" ü 猫", negative_prompt="dog, ugly",
                     sampler="DPM++ 2M Karras", cfg_scale=6.5, seed=987654321, steps=31)
    path = save_image(Image.new("RGB", (64, 64), (40, 90, 200)), tmp_path / f"image{suffix}", recipe)
    info = ParserManager().parse(path)
    assert info is not None
    assert info.generator == Generators.AUTOMATIC1111
    assert info.full_prompt == recipe.prompt
    assert info.full_negative_prompt == recipe.negative_prompt
    (sampler,) = info.samplers
    assert sampler.name == "DPM++ 2M Karras"
    assert sampler.parameters["seed"] == "987654321"
    assert sampler.parameters["steps"] == "31"
    assert float(sampler.parameters["cfg_scale"]) == 6.5
    assert sampler.model.name == "tiny-sd"
    assert sampler.model.hash == "0123456789"
    assert info.metadata["Size"] == "512x768"


INPAINT = replace(BASE, strength=0.6, mask_blur=4.0, inpaint_area="Only masked", masked_padding=32,
                  masked_content="original")


def test_inpaint_fields_are_written_with_a1111_s_names():
    text = INPAINT.to_parameters()
    assert text.endswith(
        "Model: tiny-sd, Denoising strength: 0.6, Mask blur: 4, Inpaint area: Only masked, "
        "Masked area padding: 32, Masked content: original, Version: Studio 0.1.0")


def test_inpaint_fields_are_left_out_when_not_set():
    for recipe in (BASE, replace(BASE, strength=0.5)):
        text = recipe.to_parameters()
        for name in ("Mask blur", "Inpaint area", "Masked area padding", "Masked content"):
            assert name not in text
    only_area = replace(BASE, inpaint_area="Whole picture").to_parameters()
    assert "Inpaint area: Whole picture" in only_area and "Mask blur" not in only_area
    assert "Masked area padding" not in only_area and "Masked content" not in only_area


@pytest.mark.parametrize("recipe", [
    INPAINT,
    replace(INPAINT, mask_blur=0.0, masked_padding=0),  # zeros are values, written and read back
    replace(INPAINT, mask_blur=2.5, inpaint_area="Whole picture", masked_content="blurred"),
    replace(INPAINT, masked_content="noise", prompt=PROMPTS[1], negative_prompt="a: b, c"),
    replace(BASE, mask_blur=8.0),
])
def test_inpaint_recipes_round_trip(recipe):
    text = recipe.to_parameters()
    back = Recipe.from_parameters(text)
    assert back == recipe
    assert isinstance(back.masked_padding, (int, type(None))) and isinstance(back.mask_blur, (float, type(None)))
    assert Recipe.from_json(recipe.to_json()) == recipe


def test_zero_padding_and_blur_are_written():
    text = replace(INPAINT, mask_blur=0.0, masked_padding=0).to_parameters()
    assert "Mask blur: 0," in text and "Masked area padding: 0," in text


def test_reads_a1111_inpaint_parameters():
    text = (
        "a castle on a hill\n"
        "Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 768x512, Model hash: abcdef1234, "
        "Model: sd15-inpainting, Denoising strength: 0.75, Mask blur: 4, Inpaint area: Only masked, "
        "Masked area padding: 32, Version: v1.10.1"
    )
    recipe = Recipe.from_parameters(text)
    assert (recipe.strength, recipe.mask_blur, recipe.inpaint_area, recipe.masked_padding) == (
        0.75, 4.0, "Only masked", 32)
    assert recipe.masked_content is None and (recipe.width, recipe.height) == (768, 512)


def test_json_without_inpaint_fields_reads_as_not_inpainted():
    old = BASE.to_json()
    for name in ("mask_blur", "inpaint_area", "masked_padding", "masked_content"):
        assert f'"{name}": null' in old
        old = old.replace(f', "{name}": null', "")
    assert "mask_blur" not in old
    recipe = Recipe.from_json(old)
    assert recipe == BASE and recipe.mask_blur is None and recipe.inpaint_area is None


# -- LoRAs and the VAE ----------------------------------------------------------------------------

WITH_LORAS = replace(BASE, loras=(LoraRecord("detail", "abcdef0123", 0.8),
                                  LoraRecord("styles/ink", "9876543210", -1.5)),
                     vae_name="vae-ft-mse", vae_hash="735e4c3a44")


def test_loras_and_vae_are_written_as_a1111_writes_them():
    assert WITH_LORAS.to_parameters() == (
        "a red fox in the snow <lora:detail:0.8> <lora:styles/ink:-1.5>\n"  # A1111 finds its LoRAs here
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 0123456789, "
        "Model: tiny-sd, VAE hash: 735e4c3a44, VAE: vae-ft-mse, "
        'Lora hashes: "detail: abcdef0123, styles/ink: 9876543210", Lora weights: "detail: 0.8, styles/ink: -1.5", '
        "Version: Studio 0.1.0"
    )


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_loras_and_vae_round_trip_through_both_chunks(tmp_path, suffix):
    assert Recipe.from_parameters(WITH_LORAS.to_parameters()) == WITH_LORAS
    assert Recipe.from_json(WITH_LORAS.to_json()) == WITH_LORAS
    path = save_image(Image.new("RGB", (64, 64)), tmp_path / f"image{suffix}", WITH_LORAS)
    assert read_recipe(path) == WITH_LORAS  # PNG: Studio's JSON; JPEG: the parameters text only


def _without_studio_json(path):
    """The picture as another tool leaves it after taking Studio's JSON out: A1111's text only."""
    from PIL.PngImagePlugin import PngInfo

    with Image.open(path) as image:
        texts = {key: value for key, value in image.info.items() if isinstance(value, str) and key != "studio"}
        kept = PngInfo()
        for key, value in texts.items():
            kept.add_itxt(key, value)
        image.save(path, pnginfo=kept)
    return path


# A prompt's own trailing comma and a name A1111's hash list cannot hold whole ("," and ":" go there), at a weight
# only the shortest exact text gives back.
TAGGED = replace(BASE, prompt="a red fox,\nin the snow,", loras=(LoraRecord("detail", "abcdef0123", 1.0),
                                                                 LoraRecord("ink, wet", "9876543210", 0.1234567),
                                                                 LoraRecord("grain", "", -0.5)))


def test_loras_are_tags_in_the_prompt_as_a1111_writes_them():
    prompt, settings = TAGGED.to_parameters().split("\nNegative prompt: blurry\n")
    assert prompt == "a red fox,\nin the snow, <lora:detail:1> <lora:ink, wet:0.1234567> <lora:grain:-0.5>"
    assert 'Lora hashes: "detail: abcdef0123, ink wet: 9876543210, grain: "' in settings
    assert replace(BASE, prompt="", loras=TAGGED.loras[:1]).to_parameters().startswith("<lora:detail:1>\n")
    # A1111 splits a tag at ":" and ends it at ">": a name cannot keep them there.
    assert "<lora:ab:2>" in replace(BASE, loras=(LoraRecord("a:b>", "", 2.0),)).to_parameters()


def test_a_studio_picture_gives_each_lora_once_with_or_without_its_json(tmp_path):
    path = save_image(Image.new("RGB", (64, 64)), tmp_path / "image.png", TAGGED)
    assert read_recipe(path) == TAGGED  # Studio's JSON
    assert read_recipe(_without_studio_json(path)) == TAGGED  # A1111's text only: the tags come off exactly
    assert Recipe.from_parameters(TAGGED.to_parameters()) == TAGGED


def test_a1111_s_tag_and_hash_list_name_one_lora():
    # A1111 takes "," out of a name in its hash list, not out of the tag, which names the file.
    text = ('a fox <lora:ink, wet:0.6>, snow\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, '
            'Lora hashes: "ink wet: 0123456789ab", Version: v1.10.1')
    recipe = Recipe.from_parameters(text)
    assert recipe.loras == (LoraRecord("ink, wet", "0123456789ab", 0.6),)
    assert recipe.prompt == "a fox, snow"


def test_reads_a1111_loras_from_the_prompt_tags_and_the_hash_list():
    text = ("a fox <lora:detail:0.6>, snow <lora:ink> <lora:blocks:0.5:0.7>\n"
            "Negative prompt: blurry\n"
            'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 0123456789, '
            'Model: dreamshaper, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, '
            'Lora hashes: "detail: abcdef0123, ink: 1111111111", Version: v1.10.1')
    recipe = Recipe.from_parameters(text)
    # <lora:blocks:0.5:0.7>: A1111's text-encoder and UNet weights; Studio applies one, the UNet's.
    assert recipe.loras == (LoraRecord("detail", "abcdef0123", 0.6), LoraRecord("ink", "1111111111", 1.0),
                            LoraRecord("blocks", "", 0.7))
    assert (recipe.vae_name, recipe.vae_hash) == ("vae-ft-mse-840000-ema-pruned.safetensors", "735e4c3a44")
    assert recipe.prompt == "a fox, snow"  # as A1111 encoded it: the tags are the LoRAs, given back once
    assert parse_loras("<lora:x:oops>", {}) == (LoraRecord("x", "", 1.0),)


def test_untrusted_lora_entries_in_the_json_are_dropped():
    data = json.loads(WITH_LORAS.to_json())
    data["loras"] = [{"name": "ok", "hash": "12", "weight": 2}, {"name": 5}, "detail", {"name": "w", "weight": "x"},
                     {"name": "nan", "weight": float("nan")}, {"name": "h", "hash": 7}]
    assert Recipe.from_json(json.dumps(data)).loras == (LoraRecord("ok", "12", 2.0), LoraRecord("h", "", 1.0))
    data["loras"] = {"not": "a list"}
    assert Recipe.from_json(json.dumps(data)).loras == ()


def test_sd_parsers_still_reads_studio_images_with_loras(tmp_path):
    path = save_image(Image.new("RGB", (64, 64)), tmp_path / "image.png", WITH_LORAS)
    info = ParserManager().parse(path)
    assert info.generator == Generators.AUTOMATIC1111
    assert info.full_prompt == "a red fox in the snow <lora:detail:0.8> <lora:styles/ink:-1.5>"  # as Civitai reads it
    assert info.samplers[0].model.name == "tiny-sd"
    assert info.samplers[0].parameters["seed"] == "1234"
    # sd-parsers splits the line on every comma, so quoted values (A1111's Lora hashes too) do not reach it;
    # the LoRAs come back through Recipe.from_parameters on the raw text.
    assert (info.metadata["VAE"], info.metadata["VAE hash"]) == ("vae-ft-mse", "735e4c3a44")


def test_a_plugin_picture_s_text_has_its_settings_and_no_sd_fields_it_did_not_use():
    recipe = Recipe(prompt="stripes", negative_prompt="", steps=0, sampler="", cfg_scale=0, seed=991608711,
                    width=64, height=64, model_name="Tester maker", generator="tp-maker", plugin="tp-gen",
                    generator_version="1.0.0",
                    params={"stripes": 5, "delay": 0.0, "mode": "normal", "source": "<picture 100x80>",
                            "caption": "C1, big"})
    text = recipe.to_parameters()
    settings = text.split("\n")[-1]
    assert "Steps" not in settings and "CFG scale" not in settings and "Sampler" not in settings
    assert ('Generator settings: "stripes: 5, delay: 0, mode: normal, source: picture 100×80, caption: C1, big"'
            in settings)
    read = Recipe.from_parameters(text)  # a JPEG's only recipe: the settings line is still found
    assert (read.prompt, read.seed, read.width, read.height, read.model_name) == ("stripes", 991608711, 64, 64,
                                                                                  "Tester maker")
    assert replace(recipe, steps=30, cfg_scale=4.5).to_parameters().split("\n")[-1].startswith(
        "Steps: 30, CFG scale: 4.5, Seed")  # a plugin's recipe that says it took steps keeps them
