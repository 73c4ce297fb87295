"""``studio inspect IMAGE [--json]``: what Studio reads from an image, shown safely, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio.cli import main
from studio.core.images import save_image
from studio.core.metadata import Recipe

RECIPE = Recipe(prompt='a fox, in the snow: "winter"\nsecond line ü 狐', negative_prompt="blurry", steps=31,
                sampler="DPM++ 2M Karras", cfg_scale=6.5, seed=987654321, width=512, height=768,
                model_name="tiny-sd", model_hash="0123456789")
KEYS = ["tool", "prompt", "negative_prompt", "seed", "steps", "cfg_scale", "sampler", "width", "height", "model"]


def png_with(path: Path, texts: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (48, 32)).save(path, pnginfo=info)
    return path


def test_human_output_of_a_studio_image(tmp_path, capsys):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "fox.png", RECIPE)
    assert main(["inspect", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        "Tool:      Studio",
        'Prompt:    a fox, in the snow: "winter"\\nsecond line ü 狐',
        "Negative:  blurry",
        "Seed:      987654321",
        "Steps:     31",
        "CFG scale: 6.5",
        "Sampler:   DPM++ 2M Karras",
        "Size:      512x768",
        "Model:     tiny-sd [0123456789]",
    ]


def test_human_output_of_another_tool_s_image_with_notes(tmp_path, capsys):
    text = ("a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 5, Size: 512x512, "
            "Model: sd15")
    path = png_with(tmp_path / "a.png", {"parameters": text, "prompt": "{broken"})
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Tool:      AUTOMATIC1111" in lines
    assert "Sampler:   DPM++ 2M (Studio: DPM++ 2M Karras)" in lines
    assert "Note:      The ComfyUI 'prompt' text in this image is not valid JSON; it was ignored." in lines


def test_an_image_without_metadata(tmp_path, capsys):
    path = tmp_path / "plain.jpg"
    Image.new("RGB", (30, 20)).save(path)
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Tool:      none (no generation settings found)"
    assert "Prompt:    -" in lines and "Size:      30x20" in lines


@pytest.mark.parametrize(("name", "said"), [
    ("multi.tif", "its first page of 3"), ("moving.gif", "its first frame of 3"),
    ("moving.webp", "its first frame of 3"),
])
def test_a_file_of_several_pictures_says_only_the_first_is_read(tmp_path, capsys, name, said):
    """A multi-page TIFF or an animated GIF or WebP was read as its first picture, with no word of the others."""
    path = tmp_path / name
    pages = [Image.new("RGB", (60, 50), (value, 0, 0)) for value in (0, 100, 200)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Size:      60x50" in lines
    assert f"Note:      This file holds more than one picture; Studio opens and reads {said}." in lines


def test_one_picture_says_no_more(tmp_path, capsys):
    path = tmp_path / "one.tif"
    Image.new("RGB", (60, 50)).save(path)
    assert main(["inspect", str(path)]) == 0
    assert "more than one picture" not in capsys.readouterr().out


def test_terminal_escape_sequences_are_shown_escaped(tmp_path, capsys):
    evil = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202eevil\x9b6n"
    text = f"{evil}\nNegative prompt: \x1b[1mbold\nSteps: 2, Sampler: Euler\x1b[0m, CFG scale: 7, Seed: 1, Model: m\x08"
    path = png_with(tmp_path / "evil.png", {"parameters": text, "key\x1b[2J": "x"})
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(ch.isprintable() or ch == "\n" for ch in out), repr(out)
    assert "Prompt:    \\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\u202eevil\\x9b6n" in out
    assert "Negative:  \\x1b[1mbold" in out
    assert "Sampler:   Euler\\x1b[0m" in out
    assert "Model:     m\\x08" in out


def test_human_output_says_the_hires_fix(tmp_path, capsys):
    from studio.core.hires import HiresFix

    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "big.png", RECIPE.with_hires(HiresFix(2.0, 10, 0.4)))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Size:      512x768" in out
    assert "Hires fix: 2× with Lanczos → 1024×1536, 10 steps, strength 0.4" in out


def test_json_has_exactly_the_issue_s_keys(tmp_path, capsys):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "fox.webp", RECIPE)
    assert main(["inspect", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.isascii()
    data = json.loads(out)
    assert list(data) == KEYS
    assert data == {"tool": "Studio", "prompt": RECIPE.prompt, "negative_prompt": "blurry", "seed": 987654321,
                    "steps": 31, "cfg_scale": 6.5, "sampler": "DPM++ 2M Karras", "width": 512, "height": 768,
                    "model": "tiny-sd"}


def test_json_absent_values_are_null_and_escapes_stay_escaped(tmp_path, capsys):
    path = png_with(tmp_path / "p.png", {"parameters": "\x1b[2Jhi\nSteps: 3, Sampler: LMS, Seed: 9"})
    assert main(["inspect", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\u001b[2Jhi" in out
    data = json.loads(out)
    assert list(data) == KEYS
    assert data == {"tool": "AUTOMATIC1111", "prompt": "\x1b[2Jhi", "negative_prompt": None, "seed": 9, "steps": 3,
                    "cfg_scale": None, "sampler": "LMS", "width": 48, "height": 32, "model": None}


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not an image"), "is not an image file Studio can read."),
    (lambda p: None, "does not exist."),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0"), "is truncated"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, make, message):
    path = tmp_path / "in\x1b[2J.png"
    make(path)
    assert main(["inspect", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("studio: ") and message in err
    assert "\x1b" not in err  # the file name is escaped too


NO_TORCH = textwrap.dedent("""
    import json, sys
    from studio.cli import main
    rc = main(["inspect", "--json", sys.argv[1]])
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "diffusers", "transformers", "PySide6", "qasync"})
    print(json.dumps({"rc": rc, "heavy": heavy}))
""")


def test_inspect_does_not_import_torch_or_qt(tmp_path):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "fox.jpg", RECIPE)
    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(path)], check=False, capture_output=True, text=True,
                            encoding="utf-8", timeout=120, env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0, result.stderr
    *printed, report = result.stdout.strip().splitlines()
    assert json.loads(report) == {"rc": 0, "heavy": []}
    assert json.loads("\n".join(printed))["prompt"] == RECIPE.prompt


def test_python_m_studio_inspect(tmp_path):
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "fox.png", RECIPE)
    result = subprocess.run([sys.executable, "-m", "studio", "inspect", str(path), "--json"], check=False,
                            capture_output=True, text=True, encoding="utf-8", timeout=120,
                            env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["seed"] == 987654321
    bad = subprocess.run([sys.executable, "-m", "studio", "inspect", str(tmp_path / "missing.png")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == f"studio: The image {tmp_path / 'missing.png'} does not exist."


def test_the_control_guides_are_shown_and_in_the_json(tmp_path, capsys):
    from dataclasses import replace

    from studio.core.control import ControlGuide

    guides = (ControlGuide("canny-sd15", preprocessor="canny", weight=0.8, end=0.6,
                           image_path="/out/sources/101010-0123456789-control.png").to_record("c0ffee"),
              ControlGuide("lineart", preprocessor="invert").to_record())
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "fox.png", replace(RECIPE, controls=guides))
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        "ControlNet 1: canny-sd15 [c0ffee], preprocessor canny (thresholds 100 and 200), weight 0.8, steps 0 to 0.6, "
        "picture /out/sources/101010-0123456789-control.png",
        "ControlNet 2: lineart, preprocessor invert, weight 1, steps 0 to 1, picture (not kept)"]
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == [*KEYS, "controls"]
    assert data["controls"] == [dict(record) for record in guides]


def test_another_tool_s_control_guides_are_read_from_its_settings_line(tmp_path, capsys):
    text = ('a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, '
            'ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.5, '
            'Guidance Start: 0, Guidance End: 0.8, Threshold A: 64, Threshold B: 128"')
    path = png_with(tmp_path / "a1111.png", {"parameters": text})
    assert main(["inspect", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "ControlNet: control_v11p_sd15_canny [d14c016b], preprocessor canny (thresholds 64 and 128), weight 0.5, "
        "steps 0 to 0.8, picture (not kept)")


def test_a_guide_made_with_a_preprocessor_studio_lacks_is_shown_by_its_name(tmp_path, capsys):
    text = ('a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, '
            'ControlNet 0: "Module: depth_midas, Model: control_v11f1p_sd15_depth [cfd03158], Weight: 0.8, '
            'Guidance Start: 0, Guidance End: 1", ControlNet 1: "preprocessor: canny, model: control_sd15_canny '
            '[fef5e48e], weight: 1, starting/ending: (0, 0.5), preprocessor params: (512, 50, 150)"')
    path = png_with(tmp_path / "a1111.png", {"parameters": text})
    assert main(["inspect", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "ControlNet 1: control_v11f1p_sd15_depth [cfd03158], preprocessor depth_midas (Studio has no such "
        "preprocessor: it would use the picture as it is), weight 0.8, steps 0 to 1, picture (not kept)",
        "ControlNet 2: control_sd15_canny [fef5e48e], preprocessor canny (thresholds 50 and 150), weight 1, steps 0 "
        "to 0.5, picture (not kept)"]
    assert main(["inspect", str(path), "--json"]) == 0
    assert [(c["preprocessor"], c.get("module")) for c in json.loads(capsys.readouterr().out)["controls"]] == [
        ("none", "depth_midas"), ("canny", None)]


def test_values_studio_cannot_take_are_said_as_a_dropped_picture_says_them(tmp_path, capsys):
    """Loading this picture's parameters keeps the sampler and the values set: inspect says so too."""
    path = png_with(tmp_path / "a1111.png", {"parameters": "a castle\nSteps: 100000, Sampler: DPM++ SDE, "
                                                           "Schedule type: Karras, CFG scale: 6, Seed: 5, Size: 64x64"})
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Sampler:   DPM++ SDE" in out
    assert out[-2:] == ["Note:      Steps 100000 is more than 1000 (the most).",
                        "Note:      Studio has no DPM++ SDE Karras sampler."]


def test_the_loras_vae_and_post_processing_are_shown_and_in_the_json(tmp_path, capsys):
    # Only the raw PNG text said them ("Lora hashes: "ink: 51333a97cda7"…); the lines and the JSON had none.
    from studio.core.metadata import LoraRecord

    recipe = replace(RECIPE, loras=(LoraRecord("ink", "51333a97cda7", 1.0), LoraRecord("paper\x1b[2J", "", -0.5)),
                     vae_name="tiny-vae", vae_hash="642f4f647f",
                     post=({"processor": "film-look", "version": "1.0.0", "params": {"grain": 0.4}, "strength": 0.5,
                            "masked": True}, {"processor": "color", "params": {}, "strength": 1.0}))
    path = save_image(Image.new("RGB", (64, 40)), tmp_path / "ink.png", recipe)
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4:] == ["LoRA 1:          ink [51333a97cda7], weight 1",
                          "LoRA 2:          paper\\x1b[2J, weight -0.5",
                          "VAE:             tiny-vae [642f4f647f]",
                          "Post-processing: film-look (grain 0.4), strength 0.5, masked > color"]
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loras"] == [{"name": "ink", "weight": 1.0, "hash": "51333a97cda7"},
                             {"name": "paper\x1b[2J", "weight": -0.5}]
    assert (data["vae"], data["vae_hash"], [step["processor"] for step in data["post"]]) == \
        ("tiny-vae", "642f4f647f", ["film-look", "color"])


def test_another_tool_s_lora_hashes_are_shown(tmp_path, capsys):
    text = ('a fox <lora:ink:0.7>\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, '
            'Lora hashes: "ink: 51333a97cda7"')
    assert main(["inspect", str(png_with(tmp_path / "a.png", {"parameters": text}))]) == 0
    assert "LoRA:      ink [51333a97cda7], weight 0.7" in capsys.readouterr().out.splitlines()


def test_an_a1111_picture_s_vae_and_the_settings_studio_lacks_are_shown(tmp_path, capsys):
    path = png_with(tmp_path / "a1111.png", {"parameters": (
        "a cat AND a dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, VAE hash: 1eddc4b4f9, "
        "VAE: vae-ft-mse.safetensors, Tiling: True, ADetailer model: face_yolov8n.pt, Version: v1.9.4")})
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "VAE:       vae-ft-mse [1eddc4b4f9]" in lines
    assert "Note:      Studio did not carry over its tiling and ADetailer." in lines
    assert "Note:      Its prompt uses A1111's AND (composable diffusion); Studio reads it as plain words." in lines
