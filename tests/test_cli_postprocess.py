"""``studio postprocess`` with Studio's own methods: colour transfer with strength and a mask, and the sentence
when a method's weights or library are missing. Most commands run in this process (studio_here); one success and
one failure run as a person runs them, in a fresh ``python -m studio``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from studio_testing import help_in_a_fresh_process, run_studio, spandrel_installed, studio_here

from studio.core.color_transfer import lab_statistics
from studio.core.image_inspection import inspect_image
from studio.core.images import read_recipe


def test_colour_transfer_strength_and_mask_from_the_command_line(tmp_path, studio_home, capsys):
    rng = np.random.default_rng(1)
    source, style, mask = tmp_path / "blue.png", tmp_path / "orange.png", tmp_path / "mask.png"
    Image.fromarray(np.clip(rng.normal((60, 110, 200), 25, (48, 64, 3)), 0, 255).astype(np.uint8)).save(source)
    Image.fromarray(np.clip(rng.normal((230, 120, 40), 15, (32, 32, 3)), 0, 255).astype(np.uint8)).save(style)
    half = np.zeros((48, 64), np.uint8)
    half[:, 32:] = 255
    Image.fromarray(half).save(mask)

    full = tmp_path / "full.png"  # as a person runs it
    done = run_studio(studio_home, "postprocess", str(source), "-o", str(full), "--method", "color", "--style",
                      str(style))
    assert done.returncode == 0, done.stderr
    assert np.abs(lab_statistics(Image.open(full))[0] - lab_statistics(Image.open(style))[0]).max() < 1.5

    masked = tmp_path / "masked.png"
    done = studio_here(capsys, "postprocess", str(source), "-o", str(masked), "--method", "histogram", "--style",
                  str(style), "--strength", "0.5", "--mask", str(mask))
    assert done.returncode == 0, done.stderr
    result, original = np.asarray(Image.open(masked)), np.asarray(Image.open(source))
    assert np.array_equal(result[:, :32], original[:, :32]) and not np.array_equal(result[:, 32:], original[:, 32:])
    (step,) = read_recipe(masked).post
    assert (step["processor"], step["strength"], step["masked"]) == ("histogram", 0.5, True)
    # The source had no settings: none are made up (A1111's text said "Steps: 0, CFG scale: 0, Seed: -1").
    assert "parameters" not in Image.open(masked).info
    unmade = inspect_image(masked)
    assert unmade.prompt is None and unmade.steps is None
    assert unmade.notes == ("Studio post-processed this picture (histogram); Studio did not make it.",)

    # Another tool's metadata is carried over, and still says what made the picture.
    comfy = tmp_path / "comfy.png"
    graph = {"3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a comfy red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}}}
    text = PngImagePlugin.PngInfo()
    text.add_text("prompt", json.dumps(graph))
    Image.open(source).save(comfy, pnginfo=text)
    restyled = tmp_path / "comfy-color.png"
    done = studio_here(capsys, "postprocess", str(comfy), "-o", str(restyled), "--method", "color", "--style",
                       str(style))
    assert done.returncode == 0, done.stderr
    carried = inspect_image(restyled)
    assert (carried.tool, carried.prompt, carried.seed) == ("ComfyUI", "a comfy red fox", 42)
    assert "Studio post-processed this picture (color); Studio did not make it." in carried.notes

    for args, message in (
            (("--method", "color"), "--method color needs its style picture: give --style FILE, a picture file."),
            (("--method", "color", "--style", str(style), "--strength", "2"),
             "Colour Transfer: the strength must be between 0 and 1, not 2."),
            (("--method", "sparkle"), "No post-processor called 'sparkle' is installed and enabled; --method takes "
                                      "one of: color for Colour Transfer, histogram for Colour Transfer (Histogram), "
                                      "neural for Neural Style Transfer, adain for Fast Style Transfer (AdaIN), "
                                      "restyle for Diffusion Restyle, upscale for Upscale."),
            (("--method", "color", "--style", str(style), "--mask", str(style)),
             "The mask orange.png is 32x32 but the picture blue.png is 64x48")):
        refused = studio_here(capsys, "postprocess", str(source), "-o", str(tmp_path / "x.png"), *args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_upscale_fails_cleanly_without_a_model_with_a_bad_tile_and_without_spandrel(tmp_path, monkeypatch, capsys):
    import torch
    from safetensors.torch import save_file

    source, output, home = tmp_path / "in.png", tmp_path / "out.png", tmp_path / "home"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(source)
    upscalers = home / "data" / "models" / "upscalers"

    monkeypatch.setenv("STUDIO_HOME", str(home))
    # No upscaler installed was said by the job once the engine had started (exit 1): a missing model is bad input,
    # refused before, as a style transfer without its weights is.
    no_model = studio_here(capsys, "postprocess", str(source), "-o", str(output), "--method", "upscale")
    assert no_model.returncode == 2 and not output.exists()
    assert "studio: Upscaling needs an upscaler model: put a Real-ESRGAN x4plus" in no_model.stderr
    assert f"in {upscalers}{os.sep} (convert a .pth download with: studio convert-weights IN.pth" in no_model.stderr
    assert "Starting" not in no_model.stderr + no_model.stdout
    unknown = studio_here(capsys, "postprocess", str(source), "-o", str(output), "--method", "upscale", "--model", "x2")
    assert unknown.returncode == 2 and "Starting" not in unknown.stderr + unknown.stdout
    assert f"studio: No upscaler called 'x2' is in {upscalers}{os.sep} (it holds: nothing yet)." in unknown.stderr

    bad_tile = studio_here(capsys, "postprocess", str(source), "-o", str(output), "--method", "upscale", "--tile", "10")
    assert bad_tile.returncode == 2 and not output.exists()
    assert "studio: Upscale: Tile size must be between 64 and 2048, not 10." in bad_tile.stderr

    upscalers.mkdir(parents=True)
    save_file({"body.0.weight": torch.zeros(4, 3, 3, 3)}, str(upscalers / "x4.safetensors"))
    # spandrel not installed was said by the job once the engine had started (exit 1): now before, in its words.
    with monkeypatch.context() as patch:
        spandrel_installed(patch, False)
        not_installed = studio_here(capsys, "postprocess", str(source), "-o", str(output), "--method", "upscale",
                                    "--model", "x4")
    assert (not_installed.returncode, not_installed.stdout) == (2, "") and not output.exists()
    assert not_installed.stderr == (
        "studio: Upscaling needs the spandrel library and a torchvision build matching the installed torch "
        f'{torch.__version__}: install them with pip install "studio[upscale]" (or pip install spandrel) and '
        "restart Studio (importing spandrel failed: No module named 'spandrel').\n")

    # One installed but broken (a torchvision for another torch) is found only by importing it, by the engine:
    # spandrel made unimportable in a fresh python -m studio (as a person runs it), so this means the same where it
    # is installed.
    blocker = tmp_path / "blocker" / "spandrel"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("spandrel is blocked for this test")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(blocker.parent),
                                                                    os.environ.get("PYTHONPATH")])))
    no_spandrel = run_studio(home, "postprocess", str(source), "-o", str(output), "--method", "upscale",
                         "--model", "x4", "--tile", "256")
    assert no_spandrel.returncode == 1 and not output.exists()
    assert ('Upscaling needs the spandrel library and a torchvision build matching the installed torch '
            f'{torch.__version__}: install them with pip install "studio[upscale]" (or pip install spandrel) and '
            "restart Studio (importing spandrel failed: spandrel is blocked for this test).") in no_spandrel.stderr


def method_help(capsys, argv: list[str]) -> str:  # noqa: ANN001
    """The text ``studio ARGV`` (a --help) prints for --method, on one line."""
    from studio.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    text = " ".join(capsys.readouterr().out.split())
    return text[text.rindex("--method ID "):text.rindex("--strength STRENGTH ")]


def test_the_method_help_names_the_post_processors_there_are(studio_home, monkeypatch, capsys):
    # The help listed Studio's filters by hand: one renamed or removed stayed in it, a new one was left out.
    from studio.plugin_host.registry import POSTPROCESSOR, Contribution, Registry

    registry = Registry()
    registry.add(Contribution(POSTPROCESSOR, "color", "Colour Transfer", "studio.engine.color_filters:ColorTransfer"))
    registry.add(Contribution(POSTPROCESSOR, "darken", "Darken", "studio_tp_cli.generator:Darken"))
    monkeypatch.setattr("studio.cli_plugins.open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    said = method_help(capsys, ["postprocess", "--help"])
    assert said.endswith("(studio plugins list); one of: color, darken ")
    assert "histogram" not in said


def test_the_method_help_lists_studio_s_own_without_loading_torch(tmp_path):
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS
    from studio.plugin_host.registry import POSTPROCESSOR

    said, stderr = help_in_a_fresh_process(tmp_path / "home", "--safe-mode", "postprocess", "-h")
    own = ", ".join(c.id for c in BUILTIN_CONTRIBUTIONS if c.kind == POSTPROCESSOR)
    assert f"(studio plugins list); one of: {own} " in said, stderr
    assert said.endswith(" False")


def a_png_said_to_be(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width`` x ``height`` (its pixels are never there): a huge picture in a few bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def test_a_picture_given_to_a_parameter_that_cannot_be_opened_is_bad_input(tmp_path, studio_home, capsys):
    # `--style huge.png` (30000x30000) started the engine and exited 1; the same picture as IN exits 2.
    source = tmp_path / "in.png"
    Image.new("RGB", (64, 48), "blue").save(source)
    huge = a_png_said_to_be(tmp_path / "huge.png", 30000, 30000)
    (tmp_path / "notes.png").write_text("not a picture")
    for style, said in ((huge, "studio: Colour Transfer (Histogram): Style picture: the image huge.png is too large "
                                "to open safely (over 268,435,456 pixels)."),
                        (tmp_path / "notes.png", "studio: Colour Transfer (Histogram): Style picture: notes.png is "
                                                 "not an image file Studio can read.")):
        refused = studio_here(capsys, "postprocess", str(source), "-o", str(tmp_path / "x.png"), "--method",
                              "histogram", "--style", str(style))
        assert (refused.returncode, refused.stderr.splitlines()[-1:]) == (2, [said])
        assert not (tmp_path / "x.png").exists()
    as_input = studio_here(capsys, "postprocess", str(huge), "-o", str(tmp_path / "x.png"), "--method", "histogram",
                           "--style", str(source))
    assert as_input.returncode == 2


def test_what_is_wrong_with_the_request_is_said_before_an_existing_output(tmp_path, studio_home, capsys):
    # With out.png there, each of these said "out.png already exists" (and --overwrite only then showed the fault).
    source, style, taken = tmp_path / "in.png", tmp_path / "style.png", tmp_path / "out.png"
    Image.new("RGB", (64, 48), "blue").save(source)
    Image.new("RGB", (32, 32), "orange").save(style)
    Image.new("RGB", (8, 8), "red").save(taken)
    unreadable = tmp_path / "notes.png"
    unreadable.write_text("not a picture")
    for args, said in (
            ((str(tmp_path / "nonexist.png"), "--style", str(style)), "nonexist.png does not exist."),
            ((str(unreadable), "--style", str(style)), "notes.png is not an image file Studio can read."),
            ((str(source), "--style", str(style), "--strength", "5"),
             "Colour Transfer: the strength must be between 0 and 1, not 5."),
            ((str(source), "--style", str(style), "--mask", str(tmp_path / "nonexist.png")),
             "nonexist.png does not exist.")):
        refused = studio_here(capsys, "postprocess", *args, "--method", "color", "-o", str(taken))
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert "already exists" not in refused.stderr
    assert Image.open(taken).size == (8, 8)


def test_style_transfer_without_its_weights_is_bad_input_refused_before_the_job(tmp_path, studio_home, capsys):
    # "Neural style transfer needs VGG-19 ImageNet weights…" came from the job once the engine had started: exit 1,
    # where a missing model is bad input (exit 2), as generate refuses one.
    from studio.core.environment import GeneratorEnvironment
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.core.style_weights import style_weights_dir

    source, style = tmp_path / "in.png", tmp_path / "style.png"
    Image.new("RGB", (64, 48), "blue").save(source)
    Image.new("RGB", (32, 32), "orange").save(style)
    folder = style_weights_dir(GeneratorEnvironment.from_settings(load_settings(), studio_paths()))
    for method, said in (("neural", "Neural Style Transfer needs VGG-19 ImageNet weights: put vgg19.safetensors in "
                                    f"{folder}{os.sep} (convert torchvision's vgg19-dcbb9e9d.pth with: studio "
                                    f"convert-weights vgg19-dcbb9e9d.pth {folder / 'vgg19.safetensors'})."),
                         ("adain", "Fast Style Transfer (AdaIN) needs the AdaIN encoder and decoder weights: put "
                                   "adain-vgg.safetensors and adain-decoder.safetensors in")):
        refused = studio_here(capsys, "postprocess", str(source), "-o", str(tmp_path / "x.png"), "--method", method,
                              "--style", str(style))
        assert refused.returncode == 2 and f"studio: {said}" in refused.stderr, refused.stderr
        assert "Starting" not in refused.stderr + refused.stdout and not (tmp_path / "x.png").exists()


def test_style_weights_are_found_by_the_filter_s_id_whatever_its_title(tmp_path, studio_home):
    # The weights were matched to a filter by its title: a reworded title let the filter through unchecked.
    from dataclasses import replace

    from studio.cli_generate import check_style_weights
    from studio.core.environment import GeneratorEnvironment
    from studio.core.errors import InvalidRequest
    from studio.core.paths import studio_paths
    from studio.core.settings import load_settings
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS
    from studio.plugin_host.registry import Registry

    registry = Registry()
    for contribution in BUILTIN_CONTRIBUTIONS:
        renamed = contribution.id in ("neural", "adain")
        registry.add(replace(contribution, title=f"Painterly ({contribution.id})") if renamed else contribution)
    env = GeneratorEnvironment.from_settings(load_settings(), studio_paths())
    for method, said in (("neural", "Painterly (neural) needs VGG-19 ImageNet weights: put vgg19.safetensors in"),
                         ("adain", "Painterly (adain) needs the AdaIN encoder and decoder weights")):
        with pytest.raises(InvalidRequest) as refused:
            check_style_weights(method, registry, env)
        assert str(refused.value).startswith(said), refused.value
    check_style_weights("color", registry, env)  # no weights to find: nothing to say
