"""``studio generate --control MODEL IMAGE`` and the per-guide options after it: parsed into the request's guides,
bad input refused in one sentence before the engine starts, and a guided picture made again by ``studio history
rerun`` with the real engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from model_files import controlnet, sd1, write
from test_cli import assert_refused_without_torch

from studio.core.control import CANNY, DEFAULT_HIGH, DEFAULT_LOW, INVERT, NONE, ControlGuide

GUIDE_OPTIONS = {"--control-preprocessor": ["canny"], "--control-weight": ["0.5"], "--control-range": ["0", "0.5"],
                 "--canny": ["50", "150"]}


def controlnets(home: Path, *names: str, width: int = 32) -> None:
    """ControlNets by these names in the models folder of the Studio at ``home`` (headers only: never run), made
    for the tiny model (its text encoder is 32 wide) unless ``width`` says otherwise."""
    for name in names:
        controlnet(home / "data" / "models" / "controlnet" / f"{name}.safetensors", width)


def picture(path: Path, seed: int, size: tuple[int, int] = (40, 32)) -> Image.Image:
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return image


def requested(monkeypatch: pytest.MonkeyPatch, args: list[str]):  # noqa: ANN201
    """The prepared request ``studio generate ARGS`` hands to the job service (the engine is not started)."""
    import studio.cli_job
    from studio.cli import main

    ran: list = []

    async def generate(request, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(request)
        return 0

    monkeypatch.setattr(studio.cli_job, "_generate", generate)
    assert main(["generate", *args]) == 0
    (request,) = ran
    return request


def test_each_guide_takes_the_options_given_after_its_control(studio_home, tiny_model_dir, tmp_path, monkeypatch):
    photo = picture(tmp_path / "work" / "photo.png", 1)
    sketch = picture(tmp_path / "work" / "sketches" / "tower.png", 2, (24, 24))
    monkeypatch.chdir(tmp_path / "work")
    controlnets(studio_home, "canny-sd15", "lineart")
    request = requested(monkeypatch, [
        "--model", str(tiny_model_dir), "--prompt", "a tower", "-o", str(tmp_path / "o.png"),
        "--control", "canny-sd15", "photo.png", "--control-weight", "0.8", "--canny", "50", "150",
        "--control-range", "0", "0.6",
        "--control", "lineart.safetensors", "sketches/tower.png", "--control-preprocessor", "invert",
        "--steps", "3",  # the generation's own options may come between
        "--control-range", "0.2", "1"])
    # Relative paths are recorded whole: a rerun from another folder finds the pictures.
    assert request.controls == (
        ControlGuide("canny-sd15", preprocessor=CANNY, weight=0.8, start=0.0, end=0.6, low_threshold=50,
                     high_threshold=150, image_path=str(tmp_path / "work" / "photo.png")),
        ControlGuide("lineart.safetensors", preprocessor=INVERT, start=0.2, end=1.0,
                     image_path=str(tmp_path / "work" / "sketches" / "tower.png")))
    assert np.array_equal(np.asarray(request.controls[0].image), np.asarray(photo))
    assert np.array_equal(np.asarray(request.controls[1].image), np.asarray(sketch))
    assert request.steps == 3


def test_a_guide_without_options_takes_the_defaults_and_canny_thresholds_imply_canny(
        studio_home, tiny_model_dir, tmp_path, monkeypatch):
    picture(tmp_path / "edges.png", 3)
    controlnets(studio_home, "canny-sd15")
    base = ["--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png")]
    (plain,) = requested(monkeypatch, [*base, "--control", "canny-sd15", str(tmp_path / "edges.png")]).controls
    assert (plain.preprocessor, plain.weight, plain.start, plain.end) == (NONE, 1.0, 0.0, 1.0)
    assert (plain.low_threshold, plain.high_threshold) == (DEFAULT_LOW, DEFAULT_HIGH)
    (canny,) = requested(monkeypatch, [*base, "--control", "canny-sd15", str(tmp_path / "edges.png"),
                                       "--canny", "10", "90"]).controls
    assert (canny.preprocessor, canny.low_threshold, canny.high_threshold) == (CANNY, 10, 90)
    assert requested(monkeypatch, base).controls == ()


def test_outpainting_extends_a_guide_made_for_the_picture_with_it(studio_home, tiny_inpaint_model_dir, tmp_path,
                                                                 monkeypatch):
    """``--outpaint 8,0,24,0``: a guide whose picture has the picture's size is extended by the same amounts, as its
    ControlNet sees it (Canny's edges) in black margins, so its lines stay on the picture's; one of another size is
    fitted as ever."""
    from studio.core.control import preprocess

    photo = picture(tmp_path / "photo.png", 5)
    other = picture(tmp_path / "other.png", 6, (24, 24))
    controlnets(studio_home, "canny-sd15")
    request = requested(monkeypatch, [
        "--model", str(tiny_inpaint_model_dir), "--prompt", "p", "-o", str(tmp_path / "o.png"),
        "--init-image", str(tmp_path / "photo.png"), "--outpaint", "8,0,24,0",
        "--control", "canny-sd15", str(tmp_path / "photo.png"), "--canny", "50", "150",
        "--control", "canny-sd15", str(tmp_path / "other.png")])
    extended, untouched = request.controls
    assert request.init_image.size == extended.image.size == (72, 32)
    assert (extended.preprocessor, extended.image_path) == (NONE, "")  # what was used; kept as a new picture
    seen = np.asarray(extended.image)
    assert np.array_equal(seen[:, 8:48], np.asarray(preprocess(photo, CANNY, 50, 150)))
    assert seen[:, :8].max() == 0 and seen[:, 48:].max() == 0  # nothing to follow in the new area
    assert untouched.image.size == other.size and untouched.image_path == str(tmp_path / "other.png")


@pytest.mark.parametrize("option", GUIDE_OPTIONS)
def test_a_guide_option_with_no_control_before_it_is_an_argparse_error(option, capsys):
    from studio.cli import build_parser

    parser = build_parser([])
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["generate", "--prompt", "p", "-o", "o.png", option, *GUIDE_OPTIONS[option],
                           "--control", "canny", "edges.png"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"studio generate: error: argument {option}: it sets an option of a control guide, so it must come after "
        "the --control MODEL IMAGE it applies to")


def test_the_help_says_what_each_control_option_does(capsys):
    from studio.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser([]).parse_args(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for said in ("--control MODEL IMAGE guide the picture with the ControlNet MODEL",
                 "--control-preprocessor {none,canny,invert,depth} what is done to the control picture first",
                 "--control-weight W how strongly the guide steers, 0 to 2",
                 "--control-range START END the part of the steps it steers",
                 "--canny LOW HIGH the Canny edge thresholds"):
        assert said in text


def test_bad_control_input_exits_2_with_one_sentence_before_loading_torch(tiny_model_dir, tmp_path):
    home = tmp_path / "studio-home"
    controlnets(home, "canny-sd15", "depth", "lines")
    picture(tmp_path / "edges.png", 1)
    (tmp_path / "notes.png").write_text("not a picture")
    edges = ["--control", "canny-sd15", str(tmp_path / "edges.png")]
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "missing picture": (["--control", "canny-sd15", str(tmp_path / "gone.png")],
                            f"The control picture {tmp_path / 'gone.png'} of the control guide does not exist."),
        "not a picture": ([*edges, "--control", "depth", str(tmp_path / "notes.png")],
                          "notes.png is not an image file Studio can read."),
        "canny with invert": ([*edges, "--control", "lines", str(tmp_path / "edges.png"), "--canny", "1", "2",
                               "--control-preprocessor", "invert"],
                              "--canny sets the Canny edge thresholds, but control guide 2 uses the invert "
                              "preprocessor; leave --canny out or give --control-preprocessor canny."),
        "weight": ([*edges, "--control-weight", "3"], "The control guide's weight must be between 0 and 2, not 3.0."),
        "range": ([*edges, "--control-range", "0.8", "0.2"],
                  "The control guide must start before it ends, both between 0 and 1 of the steps (not 0.8 to 0.2)."),
        "thresholds": ([*edges, "--canny", "200", "100"],
                       "The control guide's Canny thresholds must be 0 to 255 with the low one at most the high one, "
                       "not 200 and 100."),
        "four guides": (edges * 4, "A job takes at most 3 control guides, not 4."),
        "no such ControlNet": (["--control", "gone", str(tmp_path / "edges.png")],
                               f"No ControlNet named 'gone' was found: Studio looked for the folder "
                               f"{home / 'data' / 'models' / 'controlnet' / 'gone'} (with config.json), the file "
                               f"{home / 'data' / 'models' / 'controlnet' / 'gone.safetensors'} and a file or "
                               "folder at gone."),
    })
    assert not (tmp_path / "never.png").exists()


def test_a_plugin_generator_is_refused_control_guides(studio_home, tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import studio.cli_generate
    from studio.cli import main
    from studio.plugin_host.registry import GENERATOR, Contribution, builtin_registry

    registry = builtin_registry()
    registry.add(Contribution(GENERATOR, "quick-gen", "Quick generator", "studio_tp_quick:Generator"))
    monkeypatch.setattr(studio.cli_generate, "open_host", lambda safe_mode=False: SimpleNamespace(registry=registry))
    picture(tmp_path / "edges.png", 1)
    assert main(["generate", "--generator", "quick-gen", "--prompt", "p", "--control", "canny-sd15",
                 str(tmp_path / "edges.png"), "-o", str(tmp_path / "never.png")]) == 2
    assert capsys.readouterr().err == ("studio: The generator 'quick-gen' takes no control guides; they steer "
                                       "Studio's own generator only, so leave out --control.\n")
    assert not (tmp_path / "never.png").exists()


def test_a_guided_picture_made_by_generate_is_made_again_the_same_by_history_rerun(tiny_model_dir, tmp_path,
                                                                                   monkeypatch, capsys):
    """End to end with the real engine, in subprocesses: the guide's picture is kept under outputs/…/sources, the
    history names it, and ``studio history rerun`` opens it and makes the same pixels. (What the history shows,
    and the unguided picture to compare with, are asked for in this process.)"""
    import json

    from studio_testing import run_studio, studio_here
    from tiny_controlnets import build_tiny_controlnet

    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    build_tiny_controlnet(home / "data" / "models" / "controlnet" / "tiny-edges", tiny_model_dir)
    photo = picture(tmp_path / "photo.png", 4, (48, 40))
    made = run_studio(home, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "11",
                      "--steps", "2", "--size", "64x64", "--control", "tiny-edges", str(tmp_path / "photo.png"),
                      "--canny", "60", "140", "--control-weight", "1.5", "-o", str(tmp_path / "made.png"))
    assert made.returncode == 0, made.stderr
    (tmp_path / "photo.png").unlink()  # the person's file may go: the rerun reads the kept copy
    entry = json.loads(studio_here(capsys, "history", "show", "1", "--json").stdout)
    (record,) = entry["params"]["controls"]
    kept = Path(record["image"])
    assert (record["model"], record["preprocessor"], record["weight"], record["low"]) == ("tiny-edges", CANNY, 1.5, 60)
    assert kept.parent.name == "sources" and kept.is_relative_to(home / "data" / "outputs")
    assert np.array_equal(np.asarray(Image.open(kept).convert("RGB")), np.asarray(photo))
    again = run_studio(home, "history", "rerun", "1", "-o", str(tmp_path / "again.png"))
    assert again.returncode == 0, again.stderr
    with Image.open(tmp_path / "made.png") as first, Image.open(tmp_path / "again.png") as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))
    unguided = studio_here(capsys, "generate", "--model", str(tiny_model_dir), "--prompt", "a tower", "--seed", "11",
                           "--steps", "2", "--size", "64x64", "-o", str(tmp_path / "plain.png"))
    assert unguided.returncode == 0, unguided.stderr
    with Image.open(tmp_path / "made.png") as first, Image.open(tmp_path / "plain.png") as plain:
        assert not np.array_equal(np.asarray(first), np.asarray(plain))  # the guide is what was made again


def test_a_controlnet_the_engine_would_refuse_after_loading_the_model_is_refused_before(tiny_model_dir, tmp_path):
    """A Control-LoRA in controlnet/ (listed in the library with why it cannot be used), or a ControlNet of another
    family than the model, would fail the job seconds later, once the model is loaded: refused at once instead."""
    home = tmp_path / "studio-home"
    nets = home / "data" / "models" / "controlnet"
    write(nets / "control-lora-canny.safetensors", {"lora_controlnet": (1,), "input_hint_block.0.weight": (16, 3, 3, 3),
                                                    "label_emb.0.0.weight": (1, 2816)})
    controlnets(home, "canny-xl", width=2048)
    controlnets(home, "canny-sd15", width=768)
    checkpoint = sd1(tmp_path / "dreamshaper.safetensors")
    picture(tmp_path / "edges.png", 1)
    edges = str(tmp_path / "edges.png")
    base = ["generate", "--prompt", "p", "-o", str(tmp_path / "never.png")]
    assert_refused_without_torch(home, base, {
        "Control-LoRA": (["--model", str(tiny_model_dir), "--control", "control-lora-canny", edges],
                         "control-lora-canny.safetensors is a Control-LoRA, which Studio cannot use as a "
                         "control guide yet; it runs ControlNet models (ControlNetModel in diffusers' layout, or "
                         "lllyasviel's original control_model layout)."),
        "SDXL net, SD 1.5 file": (["--model", str(checkpoint), "--control", "canny-xl", edges],
                                  "The ControlNet canny-xl is made for SDXL models, and dreamshaper is an SD 1.x "
                                  "model; choose a ControlNet made for SD 1.x models."),
        "SD 1.5 net, diffusers folder": (["--model", str(tiny_model_dir), "--control", "canny-sd15", edges],
                                         "The ControlNet canny-sd15 is made for SD 1.x models, and tiny-sd is a "
                                         "32-wide text encoder model; choose a ControlNet made for 32-wide text "
                                         "encoder models."),
    })
    assert not (tmp_path / "never.png").exists()


def test_a_model_or_a_vae_given_as_a_controlnet_is_said_to_be_what_it_is(studio_home, tiny_model_dir, tmp_path,
                                                                        capsys):
    """`--control m/tiny-sd in.png` (a Stable Diffusion model folder) said "No ControlNet named 'm/tiny-sd' was
    found: …", as if there were nothing there."""
    from studio_testing import studio_here

    picture(tmp_path / "edges.png", 1)
    base = ["generate", "--model", str(tiny_model_dir), "--prompt", "p", "-o", str(tmp_path / "never.png")]
    as_control = studio_here(capsys, *base, "--control", str(tiny_model_dir), str(tmp_path / "edges.png"))
    assert (as_control.returncode, as_control.stderr) == (
        2, f"studio: {tiny_model_dir} is a Stable Diffusion model (SD 1.x), not a ControlNet.\n")
    as_vae = studio_here(capsys, *base, "--vae", str(tiny_model_dir))
    assert (as_vae.returncode, as_vae.stderr) == (
        2, f"studio: {tiny_model_dir} is a Stable Diffusion model (SD 1.x), not a VAE.\n")
    assert not (tmp_path / "never.png").exists()


def test_a_missing_vae_or_controlnet_names_the_linked_folders_searched_too(tmp_path):
    # "No VAE named 'gone' was found: Studio looked for the folder …, the file … and a file or folder at gone." left
    # out the linked folders studio generate had searched as well (the LoRA sentence names them).
    from studio.cli_addon_files import find_files
    from studio.core.control import ControlGuide
    from studio.core.errors import InvalidRequest, ModelError
    from studio.core.settings import Settings

    models = tmp_path / "models"
    webui, comfy = tmp_path / "stable-diffusion-webui", tmp_path / "ComfyUI"
    (webui / "models" / "VAE").mkdir(parents=True)
    (comfy / "models" / "controlnet").mkdir(parents=True)
    settings = Settings(models_dir=models, outputs_dir=tmp_path / "outputs", extra_model_paths=[webui])
    with pytest.raises(ModelError) as vae:
        find_files((), "gone", (), settings)
    assert str(vae.value) == (f"No VAE named 'gone' was found: Studio looked for the folder {models / 'vae' / 'gone'} "
                              f"(with config.json), the file {models / 'vae' / 'gone.safetensors'} and a file or "
                              f"folder at gone, and for a VAE of that name in the linked folder {webui}.")
    settings.extra_model_paths = [webui, comfy]
    with pytest.raises(InvalidRequest) as control:
        find_files((), "", (ControlGuide(model="gone"),), settings)
    assert str(control.value) == (
        f"No ControlNet named 'gone' was found: Studio looked for the folder {models / 'controlnet' / 'gone'} (with "
        f"config.json), the file {models / 'controlnet' / 'gone.safetensors'} and a file or folder at gone, and for "
        f"a ControlNet of that name in the linked folders {webui}, {comfy}.")
