"""A job that would run no denoising step is refused in words that say which values came from the settings'
generation defaults (the person never typed them) and where to change them."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.core.errors import InvalidRequest


def save_defaults(**values: object) -> None:
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    for name, value in values.items():
        setattr(settings.generation, name, value)
    save_settings(settings)


def refusal(tiny_model_dir, tmp_path, *extra: str) -> str:  # noqa: ANN001
    from studio.cli import build_parser
    from studio.cli_request import prepare_generation
    from studio.core.settings import load_settings

    args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--size", "64x64",
                                      "-o", str(tmp_path / "o.png"), *extra])
    with pytest.raises(InvalidRequest) as refused:
        prepare_generation(args, load_settings(), [])
    return str(refused.value)


def test_img2img_steps_and_strength_from_the_settings_are_said_as_the_settings(tiny_model_dir, studio_home,
                                                                                tmp_path):
    # "With 2 steps and a strength of 0.4 no denoising step would run; raise the steps or the strength." blamed
    # values the person never typed.
    Image.new("RGB", (64, 64), "white").save(tmp_path / "in.png")
    Image.new("L", (64, 64), 255).save(tmp_path / "mask.png")
    save_defaults(steps=2, strength=0.4)
    picture = ("--init-image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"))
    assert refusal(tiny_model_dir, tmp_path, *picture) == (
        "With 2 steps and a strength of 0.4 no denoising step would run (2 steps and strength 0.4 from the settings' "
        "generation defaults); give --steps/--strength or change the defaults in Settings.")
    assert refusal(tiny_model_dir, tmp_path, *picture, "--strength", "0.3") == (
        "With 2 steps and a strength of 0.3 no denoising step would run (2 steps from the settings' generation "
        "defaults); give more --steps or a higher --strength or change the defaults in Settings.")
    assert refusal(tiny_model_dir, tmp_path, *picture, "--steps", "1") == (
        "With 1 step and a strength of 0.4 no denoising step would run (strength 0.4 from the settings' generation "
        "defaults); give a higher --strength or more --steps or change the defaults in Settings.")
    assert refusal(tiny_model_dir, tmp_path, *picture, "--steps", "1", "--strength", "0.5") == (
        "With 1 step and a strength of 0.5 no denoising step would run; raise the steps or the strength.")  # typed


def test_the_hires_fix_steps_and_strength_from_the_settings_are_said_as_the_settings(tiny_model_dir, studio_home,
                                                                                      tmp_path):
    # "The hires fix's second pass would run no step (1 steps at a strength of 0.3)": settings' values, and "1 steps".
    save_defaults(hires_steps=1, hires_strength=0.3)
    assert refusal(tiny_model_dir, tmp_path, "--hires", "1.5") == (
        "With 1 step and a strength of 0.3 the hires fix's second pass would run no step (1 step and strength 0.3 "
        "from the settings' generation defaults); give --hires-steps/--hires-strength or change the defaults in "
        "Settings.")
    save_defaults(hires_steps=0)  # as many as the first pass: the first pass's steps, given here
    assert refusal(tiny_model_dir, tmp_path, "--hires", "1.5", "--steps", "3") == (
        "With 3 steps and a strength of 0.3 the hires fix's second pass would run no step (strength 0.3 from the "
        "settings' generation defaults); give a higher --hires-strength or more --hires-steps or change the defaults "
        "in Settings.")
    assert refusal(tiny_model_dir, tmp_path, "--hires", "1.5", "--hires-steps", "1", "--hires-strength", "0.5") == (
        "The hires fix's second pass would run no step (1 step at a strength of 0.5); raise its steps or its "
        "strength.")  # typed: said as before, in good grammar


def test_a_value_out_of_range_is_said_before_the_steps_it_leaves(tiny_model_dir, studio_home, tmp_path):
    # "--steps 1 --hires 1" and "--size 8x8" were said as "With 1 step and a strength of 0.5 the hires fix's second
    # pass would run no step …": the upscale and the size were what was wrong.
    assert refusal(tiny_model_dir, tmp_path, "--steps", "1", "--hires", "1") == (
        "The hires fix's upscale must be above 1 and at most 4, not 1.0.")
    assert refusal(tiny_model_dir, tmp_path, "--steps", "1", "--hires", "2", "--size", "8x8") == (
        "The width must be between 64 and 4096 pixels, not 8.")
    picture = tmp_path / "in.png"
    Image.new("RGB", (64, 64), "white").save(picture)
    assert refusal(tiny_model_dir, tmp_path, "--init-image", str(picture), "--steps", "1", "--seed", "-5") == (
        "The seed must be between 0 and 4294967295 (or -1 for random), not -5.")
    # In range, the steps they leave are said as before.
    assert refusal(tiny_model_dir, tmp_path, "--steps", "1", "--hires", "2").startswith(
        "With 1 step and a strength of 0.5 the hires fix's second pass would run no step (strength 0.5 from the "
        "settings'")


@pytest.mark.parametrize(("extra", "sentence"), [
    (("--hires", "1", "--size", "64x64"), "The hires fix's upscale must be above 1 and at most 4, not 1.0."),
    (("--hires", "2", "--size", "8x8"), "The width must be between 64 and 4096 pixels, not 8."),
])
def test_studio_generate_says_the_value_out_of_range(tiny_model_dir, studio_home, tmp_path, capsys, extra, sentence):
    from studio.cli import main

    assert main(["generate", "--model", str(tiny_model_dir), "--prompt", "x", "--steps", "1", *extra,
                 "-o", str(tmp_path / "o.png")]) == 2
    assert sentence in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(("extra", "sentence"), [
    (("--steps", "0"), "Steps must be at least 1, not 0."),
    (("--init-image", "{picture}", "--strength", "0"), "The img2img strength must be above 0 and at most 1, not 0.0."),
    (("--hires", "2", "--hires-steps", "-1"),
     "The hires steps must be between 0 (as many as the first pass) and 1000, not -1."),
    (("--hires", "2", "--hires-strength", "0"),
     "The hires fix's denoising strength must be above 0 and at most 1, not 0.0."),
])
def test_steps_and_strengths_out_of_range_are_said_before_the_steps_they_leave(tiny_model_dir, studio_home, tmp_path,
                                                                             extra, sentence):
    """check_denoising_steps takes them in range only (prepare_request checks them first): its own range guards,
    never reached, are gone. A strength of 0 is said as out of range, not as running no step."""
    picture = tmp_path / "in.png"
    Image.new("RGB", (64, 64), "white").save(picture)
    save_defaults(steps=20)
    assert refusal(tiny_model_dir, tmp_path, *(arg.format(picture=picture) for arg in extra)) == sentence
