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
    from studio.cli_request import build_request
    from studio.core.requests import prepare_request
    from studio.core.settings import load_settings

    args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--size", "64x64",
                                      "-o", str(tmp_path / "o.png"), *extra])
    with pytest.raises(InvalidRequest) as refused:
        prepare_request(build_request(args, load_settings()))
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
