"""Hires fix as a request, a recipe and another tool's metadata: sizes, checks, A1111's words both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio.core.errors import InvalidRequest
from studio.core.hires import LANCZOS, HiresFix, hires_from_settings, hires_summary, upscaler_or_lanczos
from studio.core.image_info import recipe_fields
from studio.core.image_inspection import inspect_image
from studio.core.metadata import Recipe, parse_settings_line
from studio.core.requests import GenerationRequest, prepare_request


def ask(**kwargs) -> GenerationRequest:  # noqa: ANN003
    values = dict(model="m", prompt="a lighthouse", width=512, height=768, steps=20, seed=1)
    values.update(kwargs)
    return GenerationRequest(**values)


def test_the_final_size_is_the_first_times_the_scale_in_multiples_of_8():
    assert HiresFix(2.0).size(512, 768) == (1024, 1536)
    assert HiresFix(1.5).size(512, 680) == (768, 1024)
    assert HiresFix(1.33).size(500, 504) == (664, 672)
    assert ask(hires=HiresFix(2.0)).output_size == (1024, 1536)
    assert ask().output_size == (512, 768)


def test_prepare_checks_the_hires_fix_with_one_sentence_each():
    prepared = prepare_request(ask(hires=HiresFix(2, 10, 0.45, " 4x-UltraSharp ")), check_model_exists=False)
    assert prepared.request.hires == HiresFix(2.0, 10, 0.45, "4x-UltraSharp")
    assert prepare_request(ask(hires=HiresFix(4.0)), check_model_exists=False).request.hires.size(512, 768) == \
        (2048, 3072)
    cases = [
        (HiresFix(1.0), "upscale must be above 1 and at most 4, not 1.0"),
        (HiresFix(4.5), "at most 4, not 4.5"),
        (HiresFix(float("nan")), "upscale must be above 1"),
        (HiresFix(2.0, steps=-1), "hires steps must be between 0"),
        (HiresFix(2.0, strength=0.0), "denoising strength must be above 0"),
        (HiresFix(2.0, steps=3, strength=0.2), r"second pass would run no step \(3 steps at a strength of 0.2\)"),
        (HiresFix(2.0, upscaler=" "), "has no upscaler"),
    ]
    for hires, sentence in cases:
        with pytest.raises(InvalidRequest, match=sentence):
            prepare_request(ask(hires=hires), check_model_exists=False)
    with pytest.raises(InvalidRequest, match="would make a 4608x4608 picture; Studio makes at most 4096"):
        prepare_request(ask(width=1536, height=1536, hires=HiresFix(3.0)), check_model_exists=False)


def test_hires_is_left_out_with_a_note_where_it_does_not_apply():
    picture = Image.new("RGB", (64, 64))
    for request, what in ((ask(init_image=picture, hires=HiresFix()), "image to image"),
                          (ask(init_image=picture, mask=Image.new("L", (64, 64), 255), hires=HiresFix()), "inpainting"),
                          (ask(generator="procedural", hires=HiresFix()), "Studio's own generator")):
        prepared = prepare_request(request, check_model_exists=False)
        assert prepared.request.hires is None
        assert any(what in note for note in prepared.notes), prepared.notes


def test_a_recipe_writes_and_reads_the_hires_fix_as_a1111_does():
    recipe = Recipe(prompt="p", negative_prompt="", steps=20, sampler="Euler a", cfg_scale=7, seed=5, width=512,
                    height=512, model_name="m").with_hires(HiresFix(2.0, 10, 0.45, "4x-UltraSharp"))
    text = recipe.to_parameters()
    settings = parse_settings_line(text.splitlines()[-1])
    assert settings["Size"] == "512x512" and settings["Steps"] == "20"
    assert (settings["Denoising strength"], settings["Hires upscale"], settings["Hires steps"],
            settings["Hires upscaler"]) == ("0.45", "2", "10", "4x-UltraSharp")
    back = Recipe.from_parameters(text)
    assert back.hires == recipe.hires and back.strength is None
    assert Recipe.from_json(recipe.to_json()).hires == recipe.hires
    # Steps as the first pass's are not written, as A1111 leaves "Hires steps" out for 0.
    assert "Hires steps" not in recipe.with_hires(HiresFix(2.0)).to_parameters()


def test_an_img2img_recipe_keeps_its_strength_and_has_no_hires():
    recipe = Recipe.from_parameters("p\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, "
                                    "Denoising strength: 0.6")
    assert recipe.strength == 0.6 and recipe.hires is None


def test_hostile_recorded_hires_values_are_dropped():
    for value in (None, [], {"scale": "2"}, {"scale": True}, {"scale": 2, "steps": 1.5},
                  {"scale": 2, "upscaler": 3}, {"scale": float("nan")}, {"scale": 2, "strength": 1.5},
                  {"scale": 2, "steps": -3}):
        assert HiresFix.from_record(value) is None, value
    assert HiresFix.from_record({"scale": 2}) == HiresFix(2.0)
    data = json.loads(Recipe(prompt="p", negative_prompt="", steps=1, sampler="", cfg_scale=1, seed=1, width=64,
                             height=64, model_name="m").to_json())
    data.update(hires_scale="big", hires_strength=None)
    assert Recipe.from_json(json.dumps(data)).hires is None


def test_other_tools_upscalers_are_matched_or_fall_back_to_lanczos():
    assert upscaler_or_lanczos("4x-ultrasharp", ["4x-UltraSharp"]) == ("4x-UltraSharp", None)
    assert upscaler_or_lanczos("lanczos", []) == (LANCZOS, None)
    assert upscaler_or_lanczos("latent (nearest-exact)", []) == ("Latent (nearest-exact)", None)
    name, note = upscaler_or_lanczos("R-ESRGAN 4x+", ["4x-UltraSharp"])
    assert name == LANCZOS and "No upscaler called 'R-ESRGAN 4x+'" in note
    assert hires_from_settings({"Hires upscale": "1"}) is None
    assert hires_from_settings({"Hires upscale": "2", "Hires upscaler": "Latent"}) == HiresFix(2.0, 0, 0.5, "Latent")
    assert hires_summary(HiresFix(2.0, 10, 0.45), 512, 768) == \
        "2× with Lanczos → 1024×1536, 10 steps, strength 0.45"


def test_an_a1111_hires_picture_loads_its_first_size_and_the_hires_fix(tmp_path: Path):
    text = ("castle\nNegative prompt: fog\nSteps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 9, "
            "Size: 512x640, Model hash: abcdef1234, Model: dream, Denoising strength: 0.35, Hires upscale: 1.5, "
            "Hires steps: 12, Hires upscaler: 4x-UltraSharp, Version: v1.10.1")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (768, 960)).save(path, pnginfo=info)
    read = inspect_image(path)
    assert (read.tool, read.width, read.height) == ("AUTOMATIC1111", 512, 640)
    assert read.hires == HiresFix(1.5, 12, 0.35, "4x-UltraSharp")
    fields = recipe_fields(read)
    assert (fields["width"], fields["height"], fields["hires"]) == (512, 640, read.hires)
    plain = tmp_path / "plain.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "castle\nSteps: 25, Sampler: Euler, CFG scale: 6, Seed: 9, Size: 512x640")
    Image.new("RGB", (512, 640)).save(plain, pnginfo=info)
    assert recipe_fields(inspect_image(plain))["hires"] is False  # made without one: loading it turns it off


def test_a1111_resize_to_a_size_and_out_of_range_scales_are_read_sensibly():
    base = {"Size": "512x768", "Denoising strength": "0.7"}
    assert hires_from_settings({**base, "Hires resize": "1024x1536"}) == HiresFix(2.0, 0, 0.7)
    assert hires_from_settings({**base, "Hires resize-1": "0", "Hires resize-2": "1152"}) == HiresFix(1.5, 0, 0.7)
    recipe = Recipe.from_parameters("p\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x768, "
                                    "Denoising strength: 0.7, Hires resize: 1024x1536, Hires upscaler: Latent")
    assert recipe.hires == HiresFix(2.0, 0, 0.7, "Latent") and recipe.strength is None
    for scale in ("1e308", "1e30", "8", "0", "nan", "-2"):
        assert hires_from_settings({**base, "Hires upscale": scale}) is None, scale
        assert HiresFix.from_record({"scale": float(scale)}) is None, scale


def test_built_in_upscaler_names_are_taken_in_any_case():
    for typed, name in (("lanczos", "Lanczos"), ("LATENT (bicubic)", "Latent (bicubic)")):
        request = prepare_request(ask(hires=HiresFix(upscaler=typed)), check_model_exists=False).request
        assert request.hires.upscaler == name
