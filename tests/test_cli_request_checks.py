"""``studio generate``'s request checks that come before the engine starts: each option that could not be used is
said as bad input (exit 2, one sentence), not run past."""

from __future__ import annotations

from pathlib import Path


import pytest
from PIL import Image
from test_cli import assert_refused_without_torch, noise_picture

from studio.cli_exit import EXIT_BAD_INPUT


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "studio-home"


@pytest.mark.parametrize(("device", "sentence"), [
    ("cuda", "No CUDA GPU is available to PyTorch here; give --device cpu or auto."),
    ("mps", "Apple's MPS (Metal) is not available to PyTorch here; give --device cpu or auto."),
])
def test_a_device_pytorch_does_not_have_is_refused_before_the_job(tiny_model_dir, studio_home, tmp_path,
                                                                  monkeypatch, capsys, device, sentence):
    # It ran on the CPU, silently, exit 0, where studio bench --device cuda refused.
    import torch

    import studio.cli_generate
    from studio.cli import main

    jobs: list[str] = []
    monkeypatch.setattr(studio.cli_generate, "run_job", lambda request, env, *args, **kwargs: jobs.append(env.device)
                        or 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    argv = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert main([*argv, "--device", device]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"studio: {sentence}\n"
    assert jobs == []  # the model was never loaded
    assert main([*argv, "--device", "cpu"]) == 0
    monkeypatch.setattr(torch.cuda if device == "cuda" else torch.backends.mps, "is_available", lambda: True)
    assert main([*argv, "--device", device]) == 0  # where PyTorch has it, the job runs there
    assert jobs == ["cpu", device]


def test_an_inpainting_option_with_nothing_to_inpaint_is_refused_before_the_engine_starts(tiny_model_dir, home,
                                                                                           tmp_path):
    # Each was ignored: the job ran as image to image (or made a new picture) as if it had not been given.
    noise_picture(tmp_path / "picture.png")
    Image.new("L", (96, 72), 255).save(tmp_path / "white.png")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    pic = ["--init-image", str(tmp_path / "picture.png")]
    needs = "needs --mask or --outpaint (with --init-image)"
    assert_refused_without_torch(home, base, {
        "padding": ([*pic, "--padding", "32"],
                    f"--padding {needs}: it is how much of the picture around the masked area the model sees."),
        "fill": ([*pic, "--fill", "noise"], f"--fill {needs}: it says what the masked area starts from."),
        "feather": ([*pic, "--feather", "3"],
                    f"--feather {needs}: it softens the mask's edge where the new pixels meet the kept ones."),
        "masked only": ([*pic, "--masked-only"],
                        f"--masked-only {needs}: it works on the masked area only, at the model's own size."),
        "whole picture, no picture": (["--whole-picture"], f"--whole-picture {needs}: it inpaints the masked area "
                                                           "with the whole picture as the model's canvas."),
        "padding of the whole picture": ([*pic, "--mask", str(tmp_path / "white.png"), "--whole-picture",
                                          "--padding", "16"],
                                         "--padding applies to the masked area only, not --whole-picture: with that "
                                         "the model sees the whole picture."),
    })


def test_inpainting_options_with_a_mask_or_an_outpaint_are_taken(tiny_model_dir, studio_home, tmp_path):
    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.inpaint import InpaintOptions
    from studio.core.settings import load_settings

    noise_picture(tmp_path / "picture.png")
    Image.new("L", (96, 72), 255).save(tmp_path / "white.png")

    def options(*extra: str) -> InpaintOptions:
        args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--init-image",
                                          str(tmp_path / "picture.png"), "-o", str(tmp_path / "o.png"), *extra])
        return build_request(args, load_settings()).inpaint

    mask = ["--mask", str(tmp_path / "white.png")]
    assert options(*mask) == InpaintOptions()
    assert options(*mask, "--padding", "4", "--fill", "noise", "--feather", "2") == \
        InpaintOptions(padding=4, fill="noise", feather=2.0)
    assert options("--outpaint", "0,0,16,0", "--whole-picture") == InpaintOptions(masked_only=False)
