"""``studio generate`` end to end: in a subprocess, exactly as a person runs it, and (what each kind of job makes)
through ``studio.cli.main`` in this process, which spares a fresh Python's import of torch a job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from studio_testing import help_in_a_fresh_process, run_studio, studio_here

from studio.core.hashing import lora_hash, model_hash
from studio.core.images import read_recipe
from studio.core.inpaint import extend_canvas
from studio.core.mask import feather, mask_from_image
from studio.core.metadata import Recipe

PROMPT = 'a fox, in the snow: "winter"\nsecond line ü 狐'
NEGATIVE = "blurry, dark"


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "studio-home"


def studio(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_studio(home, "generate", *args, timeout=timeout)


def generate_here(capsys, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001 - pytest's capsys
    """``studio generate ARGS`` in this process, on the Studio of the studio_home fixture."""
    return studio_here(capsys, "generate", *args)


REFUSALS_SCRIPT = (
    "import contextlib, io, json, sys\n"
    "from studio.cli import main\n"
    "results = {}\n"
    "for name, args in json.loads(sys.argv[1]).items():\n"
    "    err, out = io.StringIO(), io.StringIO()\n"
    "    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):\n"
    "        code = main(args)\n"
    "    results[name] = [code, err.getvalue(), out.getvalue()]\n"
    "print(json.dumps({'results': results, 'heavy': [m for m in ('torch', 'diffusers') if m in sys.modules]}))\n"
)


def assert_refused_without_torch(home: Path, base: list[str], cases: dict[str, tuple[list[str], str]]) -> None:
    """Each case (extra args, sentence) exits 2 with exactly that sentence, in one process that never imports
    torch or diffusers: bad input is refused before the engine starts."""
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8")
    argv = {name: [*base, *args] for name, (args, _) in cases.items()}
    done = subprocess.run([sys.executable, "-c", REFUSALS_SCRIPT, json.dumps(argv)], env=env, cwd=home.parent,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name, (_, sentence) in cases.items():
        code, err, out = report["results"][name]
        assert (code, err, out) == (2, f"studio: {sentence}\n", ""), name
    assert report["heavy"] == []


def parameters_of(path: Path) -> Recipe:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return Recipe.from_parameters(img.info["parameters"])


def test_txt2img_batch_writes_pngs_whose_parameters_match_the_request(tiny_model_dir, home, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = studio(home, "--model", str(tiny_model_dir), "--prompt", PROMPT, "--negative", NEGATIVE,
                    "--seed", "1234", "--steps", "3", "--size", "70x64", "--cfg", "5.5",
                    "--scheduler", "DPM++ 2M", "--batch-count", "2", "-o", str(out / "fox.png"))
    assert result.returncode == 0, result.stderr
    # The width was rounded to a multiple of 8, and the person was told.
    assert "note: The width 70 is not a multiple of 8; using 72." in result.stderr
    # The progress bar gives the steps' own speed, and the end the job's time: in hundredths below 10 s (a job
    # that loaded its model on a busy machine takes longer, in tenths).
    assert re.search(r"\d it/s|\d s/it", result.stderr), result.stderr
    assert re.search(r"Done in (\d\.\d\d|\d\d\.\d) s\.", result.stderr), result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fox-1.png", "fox-2.png"]
    expected_hash = model_hash(tiny_model_dir)
    for index, seed in enumerate((1234, 1235), start=1):
        path = out / f"fox-{index}.png"
        recipe = parameters_of(path)
        assert recipe.prompt == PROMPT
        assert recipe.negative_prompt == NEGATIVE
        assert recipe.steps == 3
        assert recipe.sampler == "DPM++ 2M"
        assert recipe.cfg_scale == 5.5
        assert recipe.seed == seed
        assert (recipe.width, recipe.height) == (72, 64)
        assert recipe.model_name == tiny_model_dir.name
        assert recipe.model_hash == expected_hash
        assert recipe.strength is None
        assert read_recipe(path) == recipe  # the Studio JSON chunk says the same
        with Image.open(path) as img:
            assert img.size == (72, 64)
        assert f"Saved {path} (seed {seed}, 72x64)" in result.stdout
    # Everything Studio wrote went under STUDIO_HOME.
    assert (home / "cache" / "model-hashes.json").is_file()


def test_img2img_from_an_init_image_with_the_model_named_from_the_models_folder(tiny_model_dir, studio_home,
                                                                                tmp_path, capsys):
    models = studio_home / "data" / "models"
    models.mkdir(parents=True)
    (models / "tiny-sd").symlink_to(tiny_model_dir, target_is_directory=True)
    init = tmp_path / "init.png"
    picture = Image.new("RGB", (96, 72), (220, 40, 40))
    picture.paste((30, 30, 220), (0, 0, 48, 72))
    picture.save(init)
    output = tmp_path / "result.jpg"
    result = generate_here(capsys, "--model", "tiny-sd", "--prompt", "a watercolour", "--init-image", str(init),
                           "--strength", "0.5", "--steps", "4", "--seed", "7", "--scheduler", "euler", "-o",
                           str(output))
    assert result.returncode == 0, result.stderr
    with Image.open(output) as img:
        assert img.format == "JPEG"
        assert img.size == (96, 72)  # the init image's size, as no --size was given
    recipe = read_recipe(output)
    assert recipe is not None
    # The scheduler given in any case is recorded by its own name.
    assert (recipe.prompt, recipe.seed, recipe.steps, recipe.sampler) == ("a watercolour", 7, 4, "Euler")
    assert recipe.strength == 0.5
    assert (recipe.width, recipe.height) == (96, 72)
    assert recipe.model_name == "tiny-sd"


def test_bad_input_exits_2_with_one_sentence(tiny_model_dir, home, tmp_path):
    output = tmp_path / "never.png"
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("this is not a picture")
    Image.new("RGB", (53, 40)).save(tmp_path / "icon.png")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(output)]
    assert_refused_without_torch(home, base, {
        "missing model": (["--model", "no-such-model"],
                          "No model file or folder named 'no-such-model' was found (looked in "
                          f"{home.resolve() / 'data' / 'models'})."),
        "unreadable init image": (["--init-image", str(not_an_image)],
                                  "photo.png is not an image file Studio can read."),
        "zero steps": (["--steps", "0"], "Steps must be at least 1, not 0."),
        "bad size": (["--size", "big"], "The size 'big' is not WIDTHxHEIGHT, e.g. 512x768."),
        "small init image": (["--init-image", str(tmp_path / "icon.png")],
                             "The picture icon.png is 53x40, and Studio works at 64 to 4096 pixels a side; give "
                             "--size WxH to work at another size."),
        "hires option alone": (["--hires-strength", "0.3"],
                               "--hires-strength needs --hires SCALE, the hires fix it belongs to."),
        "hires too large": (["--size", "2048x2048", "--hires", "2.5"],
                            "Hires fix at 2.5x would make a 5120x5120 picture; Studio makes at most 4096 pixels a "
                            "side, so lower the upscale or the size."),
    })
    assert not output.exists()


def test_an_upscale_step_is_checked_without_torch(tiny_model_dir, home, tmp_path, monkeypatch):
    """Finding --post upscale's model imported torch (the engine's upscale module) before the rest was checked."""
    installed = tmp_path / "site" / "spandrel"  # found as installed (never imported: nothing runs so far)
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(installed.parent),
                                                                    os.environ.get("PYTHONPATH")])))
    upscalers = home / "data" / "models" / "upscalers"
    upscalers.mkdir(parents=True)
    (upscalers / "4x.safetensors").write_bytes(b"names are all that is read")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "no such upscaler": (["--post", "upscale:model=2x"],
                             f"No upscaler called '2x' is in {upscalers.resolve()}/ (it holds: 4x.safetensors)."),
        "bad size after it": (["--post", "upscale:model=4x", "--size", "big"],
                              "The size 'big' is not WIDTHxHEIGHT, e.g. 512x768."),
    })


def test_an_output_that_could_not_be_written_is_refused_before_the_engine_starts(tiny_model_dir, home, tmp_path):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p"]
    assert_refused_without_torch(home, base, {
        "a folder": (["-o", str(tmp_path / "folder.png")],
                     f"The output {tmp_path / 'folder.png'} is a folder; name a file in it."),
        # "The output 'out' must end in .png, .jpg or .webp.", of a folder: a name for a file was looked for in it
        "a folder without an extension": (["-o", str(tmp_path / "out")],
                                           f"The output {tmp_path / 'out'} is a folder; name a file in it."),
        "a file as folder": (["-o", str(tmp_path / "notes.txt" / "x.png")],
                             f"The output folder {tmp_path / 'notes.txt'} is a file, not a folder."),
    })


def test_a_file_that_is_not_a_model_is_bad_input_said_before_the_engine_starts(tiny_model_dir, home, tmp_path):
    notes = tmp_path / "notes.safetensors"
    notes.write_text("these are notes, not weights")
    lora = tmp_path / "detail.safetensors"
    from model_files import lora as lora_file

    lora_file(lora)
    base = ["generate", "--prompt", "p", "-o", str(tmp_path / "o.png")]
    assert_refused_without_torch(home, base, {
        "notes": (["--model", str(notes)], "notes.safetensors is a corrupt safetensors file: its header claims to be "
                                           f"{int.from_bytes(b'these ar', 'little'):,} bytes long, but a safetensors "
                                           "header holds at most 100,000,000 bytes (100 MB)."),
        "a LoRA": (["--model", str(lora)], "detail.safetensors is a LoRA file, not a full Stable Diffusion "
                                           "checkpoint; pick it where that kind is used."),
    })


def test_a_failed_job_says_one_sentence_and_keeps_the_traceback_in_the_log(tiny_model_dir, studio_home, tmp_path,
                                                                            capsys):
    import shutil

    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    # A config that reads fine but does not fit the weights: found out only when the engine loads them.
    config = json.loads((broken / "unet" / "config.json").read_text())
    (broken / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 7}))
    result = generate_here(capsys, "--model", str(broken), "--prompt", "p", "-o", str(tmp_path / "o.png"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("studio: ") and last.endswith(".")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "Traceback" in (studio_home / "data" / "studio.log").read_text(encoding="utf-8")


# -- inpainting and outpainting ------------------------------------------------------------------

def noise_picture(path: Path, size: tuple[int, int] = (96, 72)) -> Image.Image:
    picture = Image.fromarray(np.random.default_rng(5).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    picture.save(path)
    return picture


def test_inpaint_with_a_mask_file_changes_only_the_masked_area(tiny_model_dir, studio_home, tmp_path, capsys):
    picture = noise_picture(tmp_path / "picture.png")
    # A mask with alpha: transparent = keep, opaque = regenerate, whatever the colour.
    mask = Image.new("RGBA", picture.size, (255, 255, 255, 0))
    mask.paste((0, 0, 0, 255), (60, 8, 84, 28))
    mask.save(tmp_path / "mask.png")
    output = tmp_path / "inpainted.png"
    result = generate_here(capsys, "--model", str(tiny_model_dir), "--prompt", "a fox", "--init-image",
                           str(tmp_path / "picture.png"), "--mask", str(tmp_path / "mask.png"), "--size", "64x64",
                           "--padding", "12", "--feather", "4", "--fill", "noise", "--strength", "0.9", "--steps",
                           "3", "--seed", "3", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "note: --size is ignored when inpainting; the result has the picture's size, 96x72." in result.stderr
    assert f"Saved {output} (seed 3, 96x72)" in result.stdout
    with Image.open(output) as img:
        out = np.asarray(img.convert("RGB"))
    assert out.shape == (72, 96, 3)
    feathered = feather(mask_from_image(mask), 4)
    assert np.array_equal(out[feathered == 0], np.asarray(picture)[feathered == 0])
    assert (out != np.asarray(picture)).any(axis=2)[feathered == 255].mean() > 0.9
    recipe = read_recipe(output)
    assert (recipe.width, recipe.height, recipe.strength) == (96, 72, 0.9)
    assert (recipe.inpaint_area, recipe.masked_padding, recipe.mask_blur, recipe.masked_content) == \
        ("Only masked", 12, 4, "noise")


def test_outpaint_extends_the_picture_and_fills_the_new_area(tiny_inpaint_model_dir, studio_home, tmp_path, capsys):
    picture = noise_picture(tmp_path / "picture.png")
    output = tmp_path / "wider.png"
    result = generate_here(capsys, "--model", str(tiny_inpaint_model_dir), "--prompt", "more of the same",
                           "--init-image", str(tmp_path / "picture.png"), "--outpaint", "0,8,32,0", "--whole-picture",
                           "--feather", "4", "--strength", "1", "--steps", "2", "--seed", "9", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert f"Saved {output} (seed 9, 128x80)" in result.stdout
    with Image.open(output) as img:
        out = np.asarray(img.convert("RGB")).astype(np.int16)
    extended, mask = extend_canvas(picture, None, 0, 8, 32, 0)
    feathered = feather(mask, 4)
    assert np.array_equal(out[feathered == 0], np.asarray(extended, dtype=np.int16)[feathered == 0])
    assert (feathered[8:, :96] == 0).mean() > 0.5  # most of the old picture is kept, bit for bit
    assert np.abs(out - np.asarray(extended, dtype=np.int16))[:, 96:].mean() > 10  # the new strip was painted
    recipe = read_recipe(output)
    assert (recipe.width, recipe.height, recipe.inpaint_area) == (128, 80, "Whole picture")


def test_bad_inpaint_input_exits_2_with_one_sentence_before_loading_torch(tiny_model_dir, home, tmp_path):
    """Every case runs through ``studio.cli.main`` in one fresh interpreter, which must never import torch."""
    noise_picture(tmp_path / "picture.png")
    Image.new("L", (50, 40), 255).save(tmp_path / "small.png")
    Image.new("L", (96, 72), 0).save(tmp_path / "black.png")
    Image.new("L", (96, 72), 255).save(tmp_path / "white.png")
    Image.new("L", (15000, 8), 255).save(tmp_path / "long.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    pic = ["--init-image", str(tmp_path / "picture.png")]
    example = "e.g. 0,0,128,0 to extend 128 pixels to the right."
    cases = {
        "mask of another size": ([*pic, "--mask", str(tmp_path / "small.png")],
                                 "The mask small.png is 50x40 but the picture picture.png is 96x72; "
                                 "they must be the same size."),
        "unreadable mask": ([*pic, "--mask", str(tmp_path / "broken.png")],
                            "broken.png is not an image file Studio can read."),
        "missing mask": ([*pic, "--mask", str(tmp_path / "nowhere.png")],
                         f"The image {tmp_path / 'nowhere.png'} does not exist."),
        "empty mask": ([*pic, "--mask", str(tmp_path / "black.png")],  # the window's sentence asked to paint it
                       "The mask black.png is all black: it marks nothing to regenerate (white does)."),
        "mask without picture": (["--mask", str(tmp_path / "white.png")],
                                 "--mask needs --init-image, the picture to paint into."),
        "outpaint without picture": (["--outpaint", "0,0,64,0"],
                                     "--outpaint needs --init-image, the picture to paint into."),
        "unknown fill": ([*pic, "--mask", str(tmp_path / "white.png"), "--fill", "lava"],
                         "Unknown masked-content fill 'lava'; choose one of: original, noise, blurred."),
        "bad padding": ([*pic, "--mask", str(tmp_path / "white.png"), "--padding", "-4"],
                        "The inpaint padding must be between 0 and 1024 pixels, not -4."),
        "too few outpaint values": ([*pic, "--outpaint", "64,0"],
                                    f"--outpaint '64,0' is not four whole numbers LEFT,TOP,RIGHT,BOTTOM; {example}"),
        "outpaint words": ([*pic, "--outpaint", "a,b,c,d"],
                           f"--outpaint 'a,b,c,d' is not four whole numbers LEFT,TOP,RIGHT,BOTTOM; {example}"),
        "negative outpaint": ([*pic, "--outpaint=-8,0,0,0"],
                              f"--outpaint '-8,0,0,0' has a negative amount; give the pixels to add, {example}"),
        "zero outpaint": ([*pic, "--outpaint", "0,0,0,0"],
                          f"--outpaint '0,0,0,0' extends nothing; give at least one side in pixels, {example}"),
        "wide outpaint": ([*pic, "--outpaint", "0,0,5000,0"],  # it saved a 5096x72 picture
                          "--outpaint '0,0,5000,0' adds 5000 pixels on the right; Studio adds at most 2048 to a side "
                          "at a time (outpaint the result again to go further)."),
        "tall outpaint": ([*pic, "--outpaint", "8,2049,0,16"],
                          "--outpaint '8,2049,0,16' adds 2049 pixels on the top; Studio adds at most 2048 to a side "
                          "at a time (outpaint the result again to go further)."),
        "huge outpaint": (["--init-image", str(tmp_path / "long.png"), "--outpaint", "0,0,2000,0"],
                          "Outpainting by 0,0,2000,0 would make a 17000x8 picture; "
                          "Studio inpaints pictures of at most 16384 pixels a side."),
    }
    assert_refused_without_torch(home, base, cases)
    assert not (tmp_path / "never.png").exists()


def test_a_mask_file_uses_alpha_only_where_it_has_some(tmp_path):
    from studio.cli_option_values import read_mask

    picture = Image.new("RGB", (8, 4))
    opaque = Image.new("RGBA", (8, 4), (0, 0, 0, 255))
    opaque.paste((255, 255, 255, 255), (0, 0, 4, 4))
    opaque.save(tmp_path / "opaque.png")
    assert np.asarray(read_mask(tmp_path / "opaque.png", picture, "p.png"))[0].tolist() == [255] * 4 + [0] * 4
    with_alpha = Image.new("RGBA", (8, 4), (255, 255, 255, 0))
    with_alpha.paste((0, 0, 0, 200), (2, 0, 4, 4))
    with_alpha.save(tmp_path / "alpha.png")
    assert np.asarray(read_mask(tmp_path / "alpha.png", picture, "p.png"))[0].tolist() == [0, 0, 200, 200, 0, 0, 0, 0]
    Image.new("L", (8, 4), 128).save(tmp_path / "grey.png")
    mask = read_mask(tmp_path / "grey.png", picture, "p.png")
    assert mask.mode == "L" and set(np.asarray(mask).ravel()) == {128}


def test_outpaint_with_a_mask_extends_both_and_masks_the_new_border(tiny_model_dir, studio_home, tmp_path):
    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.settings import load_settings

    picture = noise_picture(tmp_path / "picture.png", (40, 30))
    mask = Image.new("L", (40, 30), 0)
    mask.paste(255, (18, 12, 22, 16))
    mask.save(tmp_path / "mask.png")
    args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--init-image",
                                      str(tmp_path / "picture.png"), "--mask", str(tmp_path / "mask.png"),
                                      "--outpaint", "8, 0, 0, 4", "--whole-picture", "-o", str(tmp_path / "o.png")])
    notes: list[str] = []
    request = build_request(args, load_settings(), notes)
    assert request.init_image.size == request.mask.size == (48, 34)
    assert (request.width, request.height) == (48, 34)
    assert request.is_inpaint and not request.inpaint.masked_only
    assert np.array_equal(np.asarray(request.init_image)[0:30, 8:48], np.asarray(picture))
    mask_array = np.asarray(request.mask)
    assert mask_array[:, :8].min() == 255 and mask_array[30:, :].min() == 255  # the new border
    assert mask_array[12:16, 26:30].min() == 255  # the painted square, moved with the picture
    assert mask_array[5:10, 30:40].max() == 0  # the rest of the old picture is kept
    assert notes == []


# -- LoRAs and the VAE override ------------------------------------------------------------------

def test_generate_with_a_hires_fix_makes_the_larger_picture(tiny_model_dir, studio_home, tmp_path, capsys):
    output = tmp_path / "big.png"
    result = generate_here(capsys, "--model", str(tiny_model_dir), "--prompt", "a fox", "--seed", "3", "--steps",
                           "2", "--size", "64x64", "--hires", "1.5", "--hires-steps", "4", "--hires-strength", "0.5",
                           "-o", str(output))
    assert result.returncode == 0, result.stderr
    with Image.open(output) as picture:
        assert picture.size == (96, 96)
    recipe = read_recipe(output)
    assert (recipe.width, recipe.height, recipe.steps) == (64, 64, 2)
    assert (recipe.hires_scale, recipe.hires_steps, recipe.hires_strength, recipe.hires_upscaler) == \
        (1.5, 4, 0.5, "Lanczos")


def test_generate_with_a_lora_and_a_vae_records_them(tiny_model_dir, studio_home, tmp_path, capsys):
    from tiny_loras import build_tiny_vae_folder, lora_state, save_lora, tiny_unet

    models = studio_home / "data" / "models"
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), models / "loras" / "detail.safetensors")
    vae = build_tiny_vae_folder(models / "vae" / "other-vae", tiny_model_dir)
    base = ["--model", str(tiny_model_dir), "--prompt", "a fox", "--seed", "3", "--steps", "2", "--size", "64x64"]
    result = generate_here(capsys, *base, "--lora", "detail:0.8", "--vae", "other-vae", "-o",
                           str(tmp_path / "fox.png"))
    assert result.returncode == 0, result.stderr
    recipe = read_recipe(tmp_path / "fox.png")
    assert [(r.name, r.hash, r.weight) for r in recipe.loras] == [("detail", lora_hash(lora), 0.8)]
    assert (recipe.vae_name, recipe.vae_hash) == ("other-vae", model_hash(vae))
    text = parameters_of(tmp_path / "fox.png")  # the A1111 text says the same
    assert (text.loras, text.vae_name, text.vae_hash) == (recipe.loras, recipe.vae_name, recipe.vae_hash)


def test_a_lora_given_by_a_relative_path_is_recorded_whole_and_one_in_the_models_folder_by_name(
        tiny_model_dir, tmp_path, monkeypatch):
    """The history keeps the request as given, and a rerun may start in another folder: a relative path would
    find nothing there."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    from model_files import controlnet

    from studio.cli_addon_files import find_files
    from studio.core.control import ControlGuide
    from studio.core.requests import LoraChoice
    from studio.core.settings import Settings

    state = lora_state(tiny_unet(tiny_model_dir))
    settings = Settings(models_dir=tmp_path / "models", outputs_dir=tmp_path / "outputs")
    save_lora(state, settings.models_dir / "loras" / "detail.safetensors")
    mine = save_lora(state, tmp_path / "work" / "mine" / "ink.safetensors")
    monkeypatch.chdir(tmp_path / "work")
    controlnet(settings.models_dir / "controlnet" / "canny.safetensors")
    lines = controlnet(tmp_path / "work" / "mine" / "lines.safetensors")
    guides = (ControlGuide("mine/lines.safetensors"), ControlGuide("canny"))
    loras, _vae, controls, _sources = find_files(
        (LoraChoice("mine/ink.safetensors", 0.5), LoraChoice("detail", 1.0)), "", guides, settings)
    assert loras == (LoraChoice(str(mine.resolve()), 0.5), LoraChoice("detail", 1.0))
    assert [guide.model for guide in controls] == [str(lines.resolve()), "canny"]  # ControlNets alike


def test_a_lora_in_a_linked_folder_is_found_by_name(tiny_model_dir, studio_home, tmp_path, capsys):
    from tiny_loras import lora_state, save_lora, tiny_unet

    a1111 = tmp_path / "stable-diffusion-webui"
    lora = save_lora(lora_state(tiny_unet(tiny_model_dir)), a1111 / "models" / "Lora" / "ink.safetensors")
    (a1111 / "models" / "Stable-diffusion").mkdir()
    assert studio_here(capsys, "models", "link", str(a1111)).returncode == 0
    result = generate_here(capsys, "--model", str(tiny_model_dir), "--prompt", "a fox", "--seed", "3", "--steps",
                           "2", "--size", "64x64", "--lora", "ink:0.5", "-o", str(tmp_path / "fox.png"))
    assert result.returncode == 0, result.stderr
    assert [(r.name, r.hash, r.weight) for r in read_recipe(tmp_path / "fox.png").loras] == [
        ("ink", lora_hash(lora), 0.5)]


def test_bad_lora_and_vae_input_exits_2_with_one_sentence_before_loading_torch(tiny_model_dir, home, tmp_path):
    """Every case runs through ``studio.cli.main`` in one fresh interpreter, which must never import torch."""
    models = (home / "data" / "models").resolve()
    (models / "loras").mkdir(parents=True)
    (models / "loras" / "detail.safetensors").write_bytes(b"never read: the request is refused first")
    (models / "loras" / "old.pt").write_bytes(b"\x80\x04 a pickle")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    cases = {
        "weight not a number": (["--lora", "detail:heavy"], "--lora 'detail:heavy' has the weight 'heavy', which is "
                                                             "not a number; write NAME:WEIGHT, e.g. detail:0.8."),
        "weight out of range": (["--lora", "detail:9"],
                                "The weight of the LoRA detail must be between -4 and 4, not 9."),
        "same lora twice": (["--lora", "detail", "--lora", "detail:0.5"],
                            "The LoRA detail is chosen twice; keep it once, with one weight."),
        "missing lora": (["--lora", "nowhere:0.5"],
                         "No LoRA named 'nowhere' was found: Studio looked for "
                         f"{models / 'loras' / 'nowhere.safetensors'} and for a file at nowhere."),
        "pickle lora": (["--lora", "old"], "old.pt is a pickle checkpoint, which can run code when it is loaded; "
                                           "Studio only loads safetensors. Convert it with `studio convert-weights "
                                           f"{models / 'loras' / 'old.pt'} {models / 'loras' / 'old.safetensors'}` "
                                           "(it reads tensors only, with torch.load(weights_only=True))."),
        "missing vae": (["--vae", "gone"], f"No VAE named 'gone' was found: Studio looked for the folder "
                                           f"{models / 'vae' / 'gone'} (with config.json), the file "
                                           f"{models / 'vae' / 'gone.safetensors'} and a file or folder at gone."),
    }
    assert_refused_without_torch(home, base, cases)


def test_lora_flags_are_parsed_as_name_and_weight():
    from studio.cli import build_parser
    from studio.cli_option_values import parse_lora
    from studio.core.requests import LoraChoice

    args = build_parser([]).parse_args(["generate", "--prompt", "p", "-o", "x.png", "--lora", "detail:0.8",
                                        "--lora", "styles/ink", "--vae", "mse"])
    assert [parse_lora(text) for text in args.lora] == [LoraChoice("detail", 0.8), LoraChoice("styles/ink", 1.0)]
    assert args.vae == "mse"
    assert parse_lora(r"C:\loras\ink.safetensors") == LoraChoice(r"C:\loras\ink.safetensors", 1.0)
    assert parse_lora(r"C:\loras\ink.safetensors:-0.5") == LoraChoice(r"C:\loras\ink.safetensors", -0.5)


def _generate_ending_with(end: object, tmp_path, monkeypatch) -> int:  # noqa: ANN001
    """``studio generate``'s own loop over a service whose job ends at once with ``end``; its exit code."""
    import asyncio

    import studio.cli_job as cli_job
    from studio.core.environment import GeneratorEnvironment
    from studio.core.requests import GenerationRequest

    from studio.services.jobs import EventStream

    class OneEvent:
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            pass

        def start(self) -> None:
            pass

        def shutdown(self) -> None:
            pass

        def subscribe(self) -> EventStream:
            stream = EventStream()
            stream.put(end)
            return stream

        def submit(self, request) -> int:  # noqa: ANN001
            return end.job_id

        def unsubscribe(self, stream: EventStream) -> None:
            pass

    monkeypatch.setattr(cli_job, "JobService", OneEvent)
    env = GeneratorEnvironment("cpu", tmp_path, tmp_path)
    return asyncio.run(cli_job._generate(GenerationRequest(model="m", prompt="p"), env, [tmp_path / "a.png"]))


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_the_notes_of_a_failed_or_cancelled_job_are_printed(ending, tmp_path, monkeypatch, capsys):
    # "Cancelled during <filter>: the picture was kept without ..." never reached the command line.
    from studio.cli_exit import EXIT_CANCELLED, EXIT_FAILED
    from studio.core.events import JobCancelled, JobFailed

    end = JobFailed(1, "The model is damaged.", notes=("A note.",)) if ending == "failed" else \
        JobCancelled(1, was_running=True, notes=("A note.",))
    code = _generate_ending_with(end, tmp_path, monkeypatch)
    assert code == (EXIT_FAILED if ending == "failed" else EXIT_CANCELLED)
    assert "note: A note." in capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("message", ["", "Cancelled during Blur: the picture was kept without Blur."])
def test_a_cancelled_job_says_its_own_sentence_before_its_notes(message, tmp_path, monkeypatch, capsys):
    # A cancel during a filter said only its notes; the sentence saying which filter was left out is the cancel's.
    from studio.cli_exit import EXIT_CANCELLED
    from studio.core.events import JobCancelled

    end = JobCancelled(1, was_running=True, notes=("Everything fits on the GPU.",), message=message)
    assert _generate_ending_with(end, tmp_path, monkeypatch) == EXIT_CANCELLED
    lines = capsys.readouterr().err.splitlines()
    said = f"studio: {message or 'cancelled.'}"
    assert said in lines and lines.index(said) < lines.index("note: Everything fits on the GPU.")


def test_a_filter_that_failed_is_said_before_the_finished_job_s_notes(tmp_path, monkeypatch, capsys):
    from studio.core.events import JobFinished

    failed = "The plugin Boom failed (RuntimeError: kaput). The picture was kept without Boom."
    _generate_ending_with(JobFinished(1, (), 0.5, notes=("A note.",), warnings=(failed,)), tmp_path, monkeypatch)
    lines = capsys.readouterr().err.splitlines()
    assert lines.index(f"note: {failed}") < lines.index("note: A note.")  # not stopped by it: a notice, said first


def test_an_unknown_hires_upscaler_is_bad_input_said_before_the_engine_starts(tiny_model_dir, home, tmp_path):
    # It was refused by the engine once started (exit 1), without the names there are.
    from model_files import esrgan

    upscalers = (home / "data" / "models" / "upscalers").resolve()
    esrgan(upscalers / "4x-Sharp.safetensors")
    (upscalers / "old.pth").write_bytes(b"\x80\x04 a pickle")
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png"),
            "--hires", "2"]
    assert_refused_without_torch(home, base, {
        "unknown": (["--hires-upscaler", "Nope"],
                    "No upscaler called 'Nope' is installed; --hires-upscaler takes Lanczos, Latent, "
                    "Latent (antialiased), Latent (bicubic), Latent (bicubic antialiased), Latent (nearest), "
                    f"Latent (nearest-exact), 4x-Sharp, or the name of an upscaler model put in {upscalers}."),
        "a pickle": (["--hires-upscaler", "old"],
                     f"old.pth is a pickle checkpoint, which can run code when it is loaded; Studio only loads "
                     f"safetensors. Convert it with `studio convert-weights {upscalers / 'old.pth'} "
                     f"{upscalers / 'old.safetensors'}` (it reads tensors only, with torch.load(weights_only=True))."),
    })


def test_a_hires_upscaler_is_taken_by_the_name_the_engine_finds(tiny_model_dir, studio_home, tmp_path, monkeypatch):
    """A built-in one in any case, one in the upscalers folder by its name in any case, one in a linked folder
    (an A1111 ESRGAN folder) by its path."""
    from model_files import esrgan
    from studio_testing import spandrel_installed

    spandrel_installed(monkeypatch, True)  # the library that loads them, where this machine has it or not

    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.settings import load_settings
    from studio.core.settings_writing import save_settings

    settings = load_settings()
    esrgan(settings.models_dir / "upscalers" / "4x-Sharp.safetensors")
    linked = esrgan(tmp_path / "webui" / "models" / "ESRGAN" / "4x-Remacri.safetensors")
    settings.extra_model_paths = [linked.parent]
    save_settings(settings)

    def upscaler(name: str) -> str:
        args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--hires",
                                          "2", "--hires-upscaler", name, "-o", str(tmp_path / "o.png")])
        return build_request(args, load_settings()).hires.upscaler

    assert upscaler("latent (BICUBIC)") == "Latent (bicubic)"
    assert upscaler("4x-Sharp") == "4x-Sharp"
    assert upscaler("4x-sharp") == "4x-Sharp"
    assert upscaler("4x-remacri") == str(linked)


def test_a_hires_upscaler_model_without_spandrel_is_refused_before_the_engine_starts(tiny_model_dir, studio_home,
                                                                                    tmp_path, capsys, monkeypatch):
    """The engine said so once started, with the model loaded (exit 1); now the command line says the same sentence
    before (exit 2). A built-in upscaler needs no spandrel."""
    import torch
    from model_files import esrgan
    from studio_testing import spandrel_installed

    esrgan(studio_home / "data" / "models" / "upscalers" / "4x-Sharp.safetensors")
    spandrel_installed(monkeypatch, False)
    output = tmp_path / "o.png"
    base = ["--model", str(tiny_model_dir), "--prompt", "p", "--steps", "1", "--size", "64x64", "--hires", "1.5",
            "--hires-steps", "2", "--hires-strength", "0.5", "-o", str(output)]
    refused = generate_here(capsys, *base, "--hires-upscaler", "4x-Sharp")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"studio: Upscaling needs the spandrel library and a torchvision build matching the installed torch "
        f'{torch.__version__}: install them with pip install "studio[upscale]" (or pip install spandrel) and restart '
        "Studio (importing spandrel failed: No module named 'spandrel').\n")
    assert not output.exists()
    assert generate_here(capsys, *base, "--hires-upscaler", "Lanczos").returncode == 0 and output.exists()


def test_strength_without_a_picture_is_refused_before_the_engine_starts(tiny_model_dir, home, tmp_path):
    # It was ignored: a new picture starts from noise, so nothing said how much of it may change.
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    sentence = "--strength needs --init-image: it says how much of that picture may change"
    assert_refused_without_torch(home, base, {
        "alone": (["--strength", "0.5"], f"{sentence}."),
        "with a hires fix": (["--hires", "2", "--strength", "0.3"],
                             f"{sentence} (the hires fix's second pass takes --hires-strength)."),
    })


def test_an_init_image_without_strength_takes_the_default(tiny_model_dir, studio_home, tmp_path):
    from studio.cli import build_parser
    from studio.cli_request import build_request
    from studio.core.requests import GenerationRequest
    from studio.core.settings import load_settings

    noise_picture(tmp_path / "picture.png")
    args = build_parser().parse_args(["generate", "--model", str(tiny_model_dir), "--prompt", "p", "--init-image",
                                      str(tmp_path / "picture.png"), "-o", str(tmp_path / "o.png")])
    assert build_request(args, load_settings()).strength == GenerationRequest.strength == 0.75


def test_an_unknown_generator_is_refused_with_the_ones_there_are_before_the_engine_starts(home, tmp_path):
    # It was said only once the engine had started (torch loaded), without what --generator takes; with
    # --init-image it was even refused as a generator that "does not start from a picture".
    noise_picture(tmp_path / "picture.png")
    generate = ["generate", "--generator", "dream", "--prompt", "p", "-o", str(tmp_path / "never.png")]
    unknown = ("No generator called 'dream' is installed and enabled; --generator takes one of: diffusers for "
               "Stable Diffusion (diffusers).")
    assert_refused_without_torch(home, [], {
        "unknown": (generate, unknown),
        "from a picture": ([*generate, "--init-image", str(tmp_path / "picture.png")], unknown),
        "safe mode": (["--safe-mode", *generate], f"{unknown} Studio was started in safe mode, which loads no plugin."),
    })


def test_an_unknown_generator_is_refused_with_the_enabled_plugins_generators_too(studio_home, tmp_path,
                                                                                  monkeypatch, capsys):
    import studio.cli_generate
    from studio.cli import main
    from studio.plugin_host.registry import GENERATOR, Contribution, builtin_registry

    registry = builtin_registry()
    registry.add(Contribution(GENERATOR, "cli-gen", "Test generator", "studio_tp_cli.generator:Generator"))
    host = SimpleNamespace(registry=registry, records=[], taken_contributions=dict)
    monkeypatch.setattr(studio.cli_generate, "open_host", lambda safe_mode=False: host)
    assert main(["generate", "--generator", "cli-gen2", "--prompt", "p", "-o", str(tmp_path / "o.png")]) == 2
    assert capsys.readouterr().err == ("studio: No generator called 'cli-gen2' is installed and enabled; --generator "
                                       "takes one of: diffusers for Stable Diffusion (diffusers), cli-gen for Test "
                                       "generator.\n")


def test_an_unknown_post_processor_is_refused_with_the_ones_there_are(tiny_model_dir, home, tmp_path):
    # The sentence named only what was wrong, once the engine had started: not what --post takes.
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "unknown": (["--post", "upscale", "--post", "sharpen:amount=2"],
                    "No post-processor called 'sharpen' is installed and enabled; --post takes one of: color for "
                    "Colour Transfer, histogram for Colour Transfer (Histogram), neural for Neural Style Transfer, "
                    "adain for Fast Style Transfer (AdaIN), restyle for Diffusion Restyle, upscale for Upscale."),
    })


def test_an_unknown_post_processor_is_refused_before_the_request_is_built(studio_home, monkeypatch, capsys,
                                                                         tmp_path):
    # Building the request may run a guide's preprocessor (a depth map on the CPU) before the typo was said.
    import studio.cli_generate
    from studio.cli import main

    def never(*_args: object) -> None:
        raise AssertionError("the request was built before --post was checked")

    monkeypatch.setattr(studio.cli_generate, "prepare_generation", never)
    assert main(["generate", "--prompt", "p", "--post", "sharpen", "-o", str(tmp_path / "o.png")]) == 2
    assert "No post-processor called 'sharpen'" in capsys.readouterr().err


def generate_help(capsys, option: str, following: str) -> str:  # noqa: ANN001
    """What ``studio generate --help`` says for ``option``, on one line (up to the option after it)."""
    from studio.cli import main

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    return text[text.rindex(f"{option} "):text.rindex(f"{following} ")]


def test_the_post_and_generator_help_name_those_there_are(studio_home, monkeypatch, capsys):
    # --post said "this post-processor" with no list (studio postprocess --method listed them): a person had to
    # find the ids in an error message.
    from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution, Registry

    registry = Registry()
    registry.add(Contribution(GENERATOR, "diffusers", "Stable Diffusion", "studio.engine.diffusion:DiffusersGenerator"))
    registry.add(Contribution(GENERATOR, "noise", "Noise", "studio_tp_cli.generator:Noise"))
    registry.add(Contribution(POSTPROCESSOR, "color", "Colour Transfer", "studio.engine.color_filters:ColorTransfer"))
    registry.add(Contribution(POSTPROCESSOR, "darken", "Darken", "studio_tp_cli.generator:Darken"))
    monkeypatch.setattr("studio.cli_plugins.open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    assert generate_help(capsys, "--post ID[:NAME=VALUE,...]", "-o OUTPUT, --output OUTPUT").endswith(
        "(repeat for a chain, in order); NAME=VALUE gives one of its options (studio postprocess --method ID --help "
        "lists them; NAME is an option without its leading --) or strength=S, its blend with the picture before it "
        "(0 to 1); one of: color, darken ")
    assert generate_help(capsys, "--generator ID", "--model MODEL").endswith(
        "--generator ID --help; one of: diffusers, noise ")


def test_the_post_help_lists_studio_s_own_without_loading_torch(tmp_path):
    from studio.plugin_host.builtins import BUILTIN_CONTRIBUTIONS
    from studio.plugin_host.registry import POSTPROCESSOR

    said, stderr = help_in_a_fresh_process(tmp_path / "home", "--safe-mode", "generate", "-h")
    own = ", ".join(c.id for c in BUILTIN_CONTRIBUTIONS if c.kind == POSTPROCESSOR)
    assert f"(0 to 1); one of: {own} " in said, stderr
    assert said.endswith(" False")


@pytest.mark.parametrize("args, usage", [
    (["models", "list", "--bogus"], "studio models list"),
    (["plugins", "uninstall", "boom", "--bogus"], "studio plugins uninstall"),
    (["history", "show", "1", "--bogus"], "studio history show"),
    (["inspect", "x.png", "--bogus"], "studio inspect"),
    (["--bogus"], "studio"),
])
def test_an_unknown_option_is_refused_with_its_own_command_s_usage(args, usage, studio_home, capsys):
    # argparse's subparsers passed what they did not know up to the top: every command's misspelt option was
    # refused with `studio`'s own usage ("usage: studio [-h] [--version] …"), which shows none of that command's.
    from studio.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith(f"usage: {usage} [-h]")
    assert err.endswith(f"\n{usage}: error: unrecognized arguments: --bogus\n")
