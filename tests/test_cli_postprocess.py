"""``studio postprocess`` with Studio's own methods, in a subprocess: colour transfer with strength and a
mask, a chain on ``studio generate --post``, and the sentence when a method's weights are missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image
from studio_testing import run_studio

from studio.core.color_transfer import lab_statistics
from studio.core.images import read_recipe


def studio(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_studio(home, *args, timeout=timeout)


def test_colour_transfer_strength_and_mask_from_the_command_line(tmp_path):
    rng = np.random.default_rng(1)
    source, style, mask = tmp_path / "blue.png", tmp_path / "orange.png", tmp_path / "mask.png"
    Image.fromarray(np.clip(rng.normal((60, 110, 200), 25, (48, 64, 3)), 0, 255).astype(np.uint8)).save(source)
    Image.fromarray(np.clip(rng.normal((230, 120, 40), 15, (32, 32, 3)), 0, 255).astype(np.uint8)).save(style)
    half = np.zeros((48, 64), np.uint8)
    half[:, 32:] = 255
    Image.fromarray(half).save(mask)
    home = tmp_path / "home"

    full = tmp_path / "full.png"
    done = studio(home, "postprocess", str(source), "-o", str(full), "--method", "color", "--style", str(style))
    assert done.returncode == 0, done.stderr
    assert np.abs(lab_statistics(Image.open(full))[0] - lab_statistics(Image.open(style))[0]).max() < 1.5

    masked = tmp_path / "masked.png"
    done = studio(home, "postprocess", str(source), "-o", str(masked), "--method", "histogram", "--style",
                  str(style), "--strength", "0.5", "--mask", str(mask))
    assert done.returncode == 0, done.stderr
    result, original = np.asarray(Image.open(masked)), np.asarray(Image.open(source))
    assert np.array_equal(result[:, :32], original[:, :32]) and not np.array_equal(result[:, 32:], original[:, 32:])
    (step,) = read_recipe(masked).post
    assert (step["processor"], step["strength"], step["masked"]) == ("histogram", 0.5, True)

    for args, message in (
            (("--method", "color"), "Colour Transfer: Style picture needs a picture."),
            (("--method", "color", "--style", str(style), "--strength", "2"), "Colour Transfer: the strength must be between 0 and 1, not 2."),
            (("--method", "sparkle"), "No postprocessor called 'sparkle' is installed and enabled."),
            (("--method", "color", "--style", str(style), "--mask", str(style)), "The mask orange.png is 32x32 but the picture blue.png is 64x48")):
        refused = studio(home, "postprocess", str(source), "-o", str(tmp_path / "x.png"), *args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_upscale_fails_cleanly_without_a_model_with_a_bad_tile_and_without_spandrel(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    source, output, home = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "home"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(source)
    upscalers = home / "data" / "models" / "upscalers"

    no_model = studio(home, "postprocess", str(source), "-o", str(output), "--method", "upscale")
    assert no_model.returncode == 1 and not output.exists()
    assert "studio: Upscaling needs an upscaler model: put a Real-ESRGAN x4plus" in no_model.stderr
    assert f"in {upscalers}{os.sep} (convert a .pth download with: studio convert-weights IN.pth" in no_model.stderr

    bad_tile = studio(home, "postprocess", str(source), "-o", str(output), "--method", "upscale", "--tile", "10")
    assert bad_tile.returncode == 2 and not output.exists()
    assert "studio: Upscale: Tile size must be between 64 and 2048, not 10." in bad_tile.stderr

    # spandrel made unimportable in the subprocess, so this means the same where it is installed.
    blocker = tmp_path / "blocker" / "spandrel"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("spandrel is blocked for this test")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(blocker.parent),
                                                                    os.environ.get("PYTHONPATH")])))
    upscalers.mkdir(parents=True)
    save_file({"body.0.weight": torch.zeros(4, 3, 3, 3)}, str(upscalers / "x4.safetensors"))
    no_spandrel = studio(home, "postprocess", str(source), "-o", str(output), "--method", "upscale",
                         "--model", "x4", "--tile", "256")
    assert no_spandrel.returncode == 1 and not output.exists()
    assert ('Upscaling needs the spandrel library and a torchvision build matching the installed torch '
            f'{torch.__version__}: install them with pip install "studio[upscale]" (or pip install spandrel) and '
            "restart Studio (importing spandrel failed: spandrel is blocked for this test).") in no_spandrel.stderr
