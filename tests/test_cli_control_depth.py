"""``studio generate --control-preprocessor depth``: the depth model fetched with ``studio models download`` into the
models folder's annotators/, a guided picture made from a photo's depth map with the real engine, an outpainted
depth guide, and a missing depth model refused in one sentence before torch loads."""

from __future__ import annotations

import json

import numpy as np
from hub_server import FakeHub, FakeRepo
from PIL import Image
from studio_testing import run_studio, studio_here
from test_cli import assert_refused_without_torch, parameters_of
from test_cli_control import controlnets, picture, requested
from tiny_depth import build_tiny_depth, depth_model_in

from studio.core.annotators import DEPTH_FOLDER, DEPTH_REPO, DOWNLOAD_COMMAND, depth_model_missing
from studio.core.control import DEPTH, NONE


def test_a_missing_depth_model_exits_2_with_how_to_get_it_before_loading_torch(tiny_model_dir, tmp_path):
    home = tmp_path / "studio-home"
    controlnets(home, "depth-sd15")
    picture(tmp_path / "photo.png", 1)
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "no depth model": (["--control", "depth-sd15", str(tmp_path / "photo.png"), "--control-preprocessor", "depth"],
                           depth_model_missing(home / "data" / "models", DOWNLOAD_COMMAND))})
    assert not (tmp_path / "never.png").exists()


def test_an_outpainted_depth_guide_is_the_photo_s_depth_map_in_black_margins(studio_home, tiny_inpaint_model_dir,
                                                                               tmp_path, monkeypatch):
    from studio.engine import depth_maps

    models = studio_home / "data" / "models"
    depth_model_in(models)
    photo = picture(tmp_path / "photo.png", 5)
    controlnets(studio_home, "depth-sd15")
    request = requested(monkeypatch, [
        "--model", str(tiny_inpaint_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png"),
        "--init-image", str(tmp_path / "photo.png"), "--outpaint", "8,0,24,0",
        "--control", "depth-sd15", str(tmp_path / "photo.png"), "--control-preprocessor", "depth"])
    (extended,) = request.controls
    seen = np.asarray(extended.image)
    assert (extended.preprocessor, extended.image.size) == (NONE, (72, 32))
    assert np.array_equal(seen[:, 8:48], np.asarray(depth_maps.depth_map(photo, models)))
    assert seen[:, :8].max() == 0 and seen[:, 48:].max() == 0


def test_download_the_depth_model_then_generate_from_a_photo_s_depth_map(tiny_model_dir, tmp_path, monkeypatch,
                                                                          capsys):
    """End to end in subprocesses, as a person types it: the download lands where the preprocessor looks, and a
    depth-guided picture differs from one guided by the photo as it is, its recipe saying depth_anything_v2. (The
    listing, the picture to compare with and what the history shows are asked for in this process.)"""
    from tiny_controlnets import build_tiny_controlnet

    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    served = build_tiny_depth(tmp_path / "served")
    files = {path.name: path.read_bytes() for path in served.iterdir()}
    with FakeHub({DEPTH_REPO: FakeRepo({**files, "README.md": b"# Depth Anything V2"})}) as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "NO_PROXY": "127.0.0.1"}
        got = run_studio(home, "models", "download", DEPTH_REPO, "--endpoint", hub.url, "-y", env=env)
    assert got.returncode == 0, got.stderr
    folder = home / "data" / "models" / DEPTH_FOLDER
    assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} == set(files)
    listed = json.loads(studio_here(capsys, "models", "list", "--json", "--kind", "annotator").stdout)
    assert [(m["label"], m["source"]) for m in listed] == [("Depth map model (Depth Anything)",
                                                           f"Hugging Face: {DEPTH_REPO}")]
    build_tiny_controlnet(home / "data" / "models" / "controlnet" / "tiny-depth", tiny_model_dir)
    picture(tmp_path / "photo.png", 4, (48, 40))
    made = {}
    for preprocessor, run in ((DEPTH, run_studio), (NONE, lambda _home, *args: studio_here(capsys, *args))):
        out = tmp_path / f"{preprocessor}.png"
        done = run(home, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "3", "--steps",
                   "2", "--size", "64x64", "--control", "tiny-depth", str(tmp_path / "photo.png"),
                   "--control-preprocessor", preprocessor, "-o", str(out))
        assert done.returncode == 0, done.stderr
        with Image.open(out) as image:
            made[preprocessor] = np.asarray(image.convert("RGB"))
    assert not np.array_equal(made[DEPTH], made[NONE])
    assert 'ControlNet 0: "Module: depth_anything_v2, Model: tiny-depth' in parameters_of(
        tmp_path / "depth.png").to_parameters()
    entry = json.loads(studio_here(capsys, "history", "show", "1", "--json").stdout)  # the first job: depth
    assert entry["params"]["controls"][0]["preprocessor"] == DEPTH
