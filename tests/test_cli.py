"""``studio generate`` end to end, in a subprocess, exactly as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from studio.core.hashing import model_hash
from studio.core.images import read_recipe
from studio.core.metadata import Recipe

PROMPT = 'a fox, in the snow: "winter"\nsecond line ü 狐'
NEGATIVE = "blurry, dark"


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "studio-home"


def studio(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STUDIO_HOME=str(home), STUDIO_DEVICE="cpu", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "studio", "generate", *args], env=env, cwd=home.parent,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)


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


def test_img2img_from_an_init_image_with_the_model_named_from_the_models_folder(tiny_model_dir, home, tmp_path):
    models = home / "data" / "models"
    models.mkdir(parents=True)
    (models / "tiny-sd").symlink_to(tiny_model_dir, target_is_directory=True)
    init = tmp_path / "init.png"
    picture = Image.new("RGB", (96, 72), (220, 40, 40))
    picture.paste((30, 30, 220), (0, 0, 48, 72))
    picture.save(init)
    output = tmp_path / "result.jpg"
    result = studio(home, "--model", "tiny-sd", "--prompt", "a watercolour", "--init-image", str(init),
                    "--strength", "0.5", "--steps", "4", "--seed", "7", "--scheduler", "Euler", "-o", str(output))
    assert result.returncode == 0, result.stderr
    with Image.open(output) as img:
        assert img.format == "JPEG"
        assert img.size == (96, 72)  # the init image's size, as no --size was given
    recipe = read_recipe(output)
    assert recipe is not None
    assert (recipe.prompt, recipe.seed, recipe.steps, recipe.sampler) == ("a watercolour", 7, 4, "Euler")
    assert recipe.strength == 0.5
    assert (recipe.width, recipe.height) == (96, 72)
    assert recipe.model_name == "tiny-sd"


@pytest.mark.parametrize("case", ["missing model", "unreadable init image", "zero steps", "bad size"])
def test_bad_input_exits_2_with_one_sentence(tiny_model_dir, home, tmp_path, case):
    output = tmp_path / "never.png"
    args = ["--model", str(tiny_model_dir), "--prompt", "p", "-o", str(output)]
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("this is not a picture")
    expected = {
        "missing model": "studio: No model folder or model named 'no-such-model' was found (looked in "
                         f"{home.resolve() / 'data' / 'models'}).",
        "unreadable init image": "studio: photo.png is not an image file Studio can read.",
        "zero steps": "studio: Steps must be at least 1, not 0.",
        "bad size": "studio: The size 'big' is not WIDTHxHEIGHT, e.g. 512x768.",
    }[case]
    extra = {
        "missing model": ["--model", "no-such-model"],
        "unreadable init image": ["--init-image", str(not_an_image)],
        "zero steps": ["--steps", "0"],
        "bad size": ["--size", "big"],
    }[case]
    result = studio(home, *args, *extra, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == expected
    assert result.stdout == ""
    assert not output.exists()
