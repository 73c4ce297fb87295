"""Control guides (ControlNet) on the real engine: the tiny models loaded through Studio's loader, with tiny random
ControlNets made from their UNets (``ControlNetModel.from_unet``) in ``<models>/controlnet``."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from studio_testing import DirectContext, ReplayOnCpu, make_env, tiny_request
from tiny_controlnets import build_tiny_controlnet, original_layout, tiny_controlnet
from tiny_models import build_tiny_sdxl

from studio.core.control import ControlGuide, extend_guide
from studio.core.errors import InvalidRequest, JobCancelledError, ModelError
from studio.core.held_memory import CACHED
from studio.core.hires import HiresFix
from studio.core.inpaint import InpaintOptions, extend_canvas
from studio.core.model_library import scan_library
from studio.core.requests import GenerationRequest, LoraChoice
from studio.engine import control_nets, fast_path, fast_path_state
from studio.engine.control_nets import ControlSource, check_fits, control_pictures, find_controlnet
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.inpainting import plan_inpaint



def old_hash(folder: Path) -> str:
    """A1111's old ``model_hash``, which sd-webui-controlnet writes: SHA-256 of the 64 KiB at 1 MiB, 8 digits."""
    data = (folder / "diffusion_pytorch_model.safetensors").read_bytes()
    return hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]



def lines(size: tuple[int, int] = (64, 64), box: tuple[int, int, int, int] = (12, 12, 50, 40)) -> Image.Image:
    """A control picture as edge ControlNets take them: white lines on black."""
    picture = Image.new("RGB", size)
    ImageDraw.Draw(picture).rectangle(box, outline="white", width=3)
    return picture


EDGES = ControlGuide("edges", lines())


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("control-sdxl") / "tiny-xl")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir, tiny_sdxl_dir) -> Path:
    root = tmp_path_factory.mktemp("control-models")
    build_tiny_controlnet(root / "controlnet" / "edges", tiny_model_dir)
    build_tiny_controlnet(root / "controlnet" / "depth", tiny_model_dir, seed=1)
    build_tiny_controlnet(root / "controlnet" / "edges-xl", tiny_sdxl_dir)
    return root


@pytest.fixture
def generator(models, tmp_path) -> DiffusersGenerator:
    return DiffusersGenerator(replace(make_env(tmp_path), models_dir=models))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=True, **kwargs)


def make(generator: DiffusersGenerator, req: GenerationRequest, context: DirectContext | None = None):  # noqa: ANN201
    ((image, recipe),) = list(generator.generate(req, context or DirectContext()))
    return np.asarray(image, dtype=np.int16), recipe


def differ(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_a_guide_steers_the_picture_and_weight_and_step_range_change_how_much(generator, models, tiny_model_dir):
    plain, plain_recipe = make(generator, request(tiny_model_dir))
    guided, recipe = make(generator, request(tiny_model_dir, controls=(EDGES,)))
    assert differ(plain, guided) > 2
    assert plain_recipe.controls == ()
    digest = old_hash(models / "controlnet" / "edges")
    assert recipe.controls == ({"model": "edges", "hash": digest, "preprocessor": "none", "weight": 1.0,
                                "start": 0.0, "end": 1.0, "low": 100, "high": 200, "image": ""},)
    assert recipe.to_parameters().count(f"ControlNet 0: \"Module: none, Model: edges [{digest}], Weight: 1") == 1
    # Weight 0 scales every residual to zero: the UNet adds exact zeros, so the picture is the unguided one.
    weightless, _ = make(generator, request(tiny_model_dir, controls=(replace(EDGES, weight=0.0),)))
    assert np.array_equal(weightless, plain)
    half, _ = make(generator, request(tiny_model_dir, controls=(replace(EDGES, weight=0.5),)))
    assert 0 < differ(half, plain) and not np.array_equal(half, guided)
    late, _ = make(generator, request(tiny_model_dir, controls=(replace(EDGES, start=0.5),)))
    early, _ = make(generator, request(tiny_model_dir, controls=(replace(EDGES, end=0.5),)))
    assert len({arr.tobytes() for arr in (plain, guided, late, early)}) == 4  # each step range its own picture


def test_the_control_picture_is_preprocessed_and_fitted_to_the_job(generator, tiny_model_dir):
    photo = Image.new("RGB", (128, 96), (30, 30, 30))
    ImageDraw.Draw(photo).ellipse((30, 20, 100, 80), fill=(220, 220, 220))
    canny, _ = make(generator, request(tiny_model_dir, controls=(ControlGuide("edges", photo, preprocessor="canny"),)))
    plain, _ = make(generator, request(tiny_model_dir, controls=(ControlGuide("edges", photo),)))
    assert not np.array_equal(canny, plain)
    assert control_pictures((ControlGuide("edges", photo),), (64, 64))[0].size == (64, 64)


def test_the_controlnet_is_kept_listed_and_freed(generator, tiny_model_dir, monkeypatch):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    loads, wraps = [], []
    real_load, real_from_pipe = ControlNetModel.from_pretrained.__func__, StableDiffusionControlNetPipeline.from_pipe
    monkeypatch.setattr(ControlNetModel, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(a) or real_load(cls, *a, **k)))
    monkeypatch.setattr(StableDiffusionControlNetPipeline, "from_pipe",
                        classmethod(lambda cls, *a, **k: wraps.append(a) or real_from_pipe.__func__(cls, *a, **k)))
    context = DirectContext()
    first, _ = make(generator, request(tiny_model_dir, controls=(EDGES,)), context)
    assert {**generator.device.status_fields, "model": "tiny-sd",
            "message": "Loading the ControlNet edges…"} in context.statuses
    again, _ = make(generator, request(tiny_model_dir, controls=(EDGES,), seed=2))
    make(generator, request(tiny_model_dir))  # a job without guides keeps it for the next
    make(generator, request(tiny_model_dir, controls=(EDGES,)))
    assert len(loads) == 1 and len(wraps) == 1  # read once; its pipeline built once, on the model's components
    held = {model.name: model for model in generator.held_models()}
    assert held["ControlNet edges"].role == CACHED and held["ControlNet edges"].size > 0
    assert held["ControlNet edges"].path.name == "edges"
    released = generator.release_memory()
    assert "ControlNet edges" in {model.name for model in released}
    assert "ControlNet edges" not in {model.name for model in generator.held_models()}
    make(generator, request(tiny_model_dir, controls=(EDGES,)))
    assert len(loads) == 2
    other = ControlGuide("depth", lines())
    make(generator, request(tiny_model_dir, controls=(other,)))  # another ControlNet: the one before goes
    assert [m.name for m in generator.held_models() if m.role == CACHED] == ["ControlNet depth"]


def test_two_guides_at_once(generator, tiny_model_dir):
    from diffusers import MultiControlNetModel

    depth = ControlGuide("depth", lines(box=(5, 30, 60, 60)), weight=0.8, start=0.2)
    one, _ = make(generator, request(tiny_model_dir, controls=(EDGES,)))
    other, _ = make(generator, request(tiny_model_dir, controls=(depth,)))
    both, recipe = make(generator, request(tiny_model_dir, controls=(EDGES, depth)))
    assert len({arr.tobytes() for arr in (one, other, both)}) == 3
    assert [c["model"] for c in recipe.controls] == ["edges", "depth"] and recipe.controls[1]["start"] == 0.2
    assert "ControlNet 1: \"Module: none, Model: depth [" in recipe.to_parameters()
    assert "Weight: 0.8, Guidance Start: 0.2, Guidance End: 1\"" in recipe.to_parameters()
    pipes = [wrapper for _key, wrapper in generator._controls._pipes.values()]
    assert any(isinstance(p.controlnet, MultiControlNetModel) for p in pipes)
    # The same ControlNet twice (two pictures through one model) is loaded once.
    twice, _ = make(generator, request(tiny_model_dir, controls=(EDGES, replace(EDGES, image=lines(box=(0, 0, 9, 9))))))
    assert [m.name for m in generator.held_models() if m.role == CACHED] == ["ControlNet edges"]
    assert not np.array_equal(twice, one)


def test_image_to_image_with_a_guide(generator, tiny_model_dir):
    start = Image.new("RGB", (64, 64), (200, 120, 40))
    plain, _ = make(generator, request(tiny_model_dir, init_image=start, strength=0.8))
    guided, recipe = make(generator, request(tiny_model_dir, init_image=start, strength=0.8, controls=(EDGES,)))
    assert differ(plain, guided) > 1 and recipe.strength == 0.8 and recipe.controls[0]["model"] == "edges"
    kinds = {type(wrapper).__name__ for _key, wrapper in generator._controls._pipes.values()}
    assert kinds == {"StableDiffusionControlNetImg2ImgPipeline"}


@pytest.fixture
def pipeline_calls(monkeypatch) -> list[dict]:
    """The arguments each ControlNet pipeline is called with (it then runs as it would)."""
    import diffusers

    calls: list[dict] = []
    for task in ("", "Img2Img", "Inpaint"):
        cls = getattr(diffusers, f"StableDiffusionControlNet{task}Pipeline")
        monkeypatch.setattr(cls, "__call__", lambda self, *a, _real=cls.__call__, **k: calls.append(k) or
                            _real(self, *a, **k))
    return calls


def columns(picture: Image.Image, row: int = 32) -> list[int]:
    return np.flatnonzero(np.asarray(picture.convert("L"))[row] > 128).tolist()


@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_inpaint_model_dir"])
def test_image_to_image_fits_the_guide_as_it_fits_the_start_picture(generator, pipeline_calls, model, request):
    """A 128x64 canvas picture redrawn at 64x64 is stretched to it: a guide made from that picture is stretched
    alike, so its lines lie on the picture's (A1111's crop to the middle cut both of these lines off)."""
    model_dir = request.getfixturevalue(model)
    canvas = Image.new("RGB", (128, 64))
    for x in (8, 120):  # a line near each edge, outside the middle 64 columns
        ImageDraw.Draw(canvas).line((x, 0, x, 63), fill="white", width=3)
    guided, _ = make(generator, tiny_request(model_dir, prepared=True, init_image=canvas, strength=0.8,
                                             controls=(ControlGuide("edges", canvas),)))
    start, control = pipeline_calls[-1]["image"], pipeline_calls[-1]["control_image"]
    assert start.size == control.size == (64, 64)
    assert columns(control) == columns(start) and columns(start)[0] < 8 and columns(start)[-1] > 56
    blind, _ = make(generator, tiny_request(model_dir, prepared=True, init_image=canvas, strength=0.8,
                                            controls=(ControlGuide("edges", Image.new("RGB", (128, 64))),)))
    assert not np.array_equal(guided, blind)  # the lines steer (all black, as they were cut to, does not)
    # A new picture of that size still takes A1111's crop and resize: the middle of the guide.
    make(generator, tiny_request(model_dir, prepared=True, controls=(ControlGuide("edges", canvas),)))
    call = pipeline_calls[-1]
    assert columns(call["control_image"] if "control_image" in call else call["image"]) == []


@pytest.mark.parametrize("masked_only", [False, True])
def test_outpainting_with_an_extended_guide_keeps_its_lines_on_the_picture(generator, pipeline_calls, tiny_model_dir,
                                                                          masked_only):
    """A guide made from a 64x64 picture (a line at x=20), the picture extended 64 px to the right: the guide extended
    alike (``extend_guide``) reaches the pipeline with its line where the picture's is (fitting the 64x64 guide to
    the 128x64 picture, as before, doubled it and moved the line)."""
    photo = Image.new("RGB", (64, 64), (40, 40, 40))
    ImageDraw.Draw(photo).line((20, 0, 20, 63), fill="white", width=3)
    picture, mask = extend_canvas(photo, None, 0, 0, 64, 0)
    guide = extend_guide(ControlGuide("edges", photo), photo.size, (0, 0, 64, 0))
    make(generator, request(tiny_model_dir, init_image=picture, mask=Image.fromarray(mask, "L"), strength=1.0,
                            inpaint=InpaintOptions(masked_only=masked_only), controls=(guide,)))
    call = pipeline_calls[-1]
    start, control = call["image"], call["control_image"]
    row = start.height // 2
    assert control.size == start.size and columns(start, row) and columns(control, row) == columns(start, row)


def masked_corner(size: tuple[int, int] = (128, 128)) -> Image.Image:
    mask = Image.new("L", size)
    ImageDraw.Draw(mask).rectangle((80, 80, 111, 111), fill=255)
    return mask


def test_masked_area_inpainting_cuts_the_control_picture_as_it_cuts_the_picture(generator, tiny_model_dir):
    picture = Image.new("RGB", (128, 128), (90, 140, 200))
    ImageDraw.Draw(picture).ellipse((10, 10, 120, 120), fill=(240, 200, 60))
    options = InpaintOptions(masked_only=True, padding=8)
    plan = plan_inpaint(picture, masked_corner(), options, 64)
    assert plan.box != (0, 0, 128, 128)
    # The picture itself as the control picture comes out exactly as the pipeline's own picture does.
    cut = control_pictures((ControlGuide("edges", picture),), plan.work_size, (picture.size, plan.box))[0]
    assert np.array_equal(np.asarray(cut), np.asarray(plan.work_image))

    def inpaint(guides: tuple[ControlGuide, ...]) -> np.ndarray:
        return make(generator, request(tiny_model_dir, init_image=picture, mask=masked_corner(), strength=1.0,
                                       inpaint=options, controls=guides))[0]

    inside = lines((128, 128), (84, 84, 108, 108))
    outside_too = inside.copy()
    ImageDraw.Draw(outside_too).line((0, 0, 60, 60), fill="white", width=4)  # well outside the crop box
    plain, guided, also_outside = inpaint(()), inpaint((ControlGuide("edges", inside),)), inpaint(
        (ControlGuide("edges", outside_too),))
    assert differ(plain, guided) > 0.1
    assert np.array_equal(guided, also_outside)  # only what lies in the box steers the box
    untouched = plan.blend_mask == 0
    assert np.array_equal(guided[untouched], np.asarray(picture, dtype=np.int16)[untouched])


def test_an_inpainting_model_takes_guides_for_new_pictures_and_for_inpainting(generator, tiny_inpaint_model_dir):
    plain, _ = make(generator, request(tiny_inpaint_model_dir))
    guided, recipe = make(generator, request(tiny_inpaint_model_dir, controls=(EDGES,)))
    assert differ(plain, guided) > 1 and recipe.controls
    picture = Image.new("RGB", (64, 64), (90, 140, 200))
    mask = Image.new("L", (64, 64))
    ImageDraw.Draw(mask).rectangle((16, 16, 48, 48), fill=255)
    filled, _ = make(generator, request(tiny_inpaint_model_dir, init_image=picture, mask=mask, strength=1.0))
    steered, _ = make(generator, request(tiny_inpaint_model_dir, init_image=picture, mask=mask, strength=1.0,
                                         controls=(EDGES,)))
    assert differ(filled, steered) > 0.1
    kinds = {type(wrapper).__name__ for _key, wrapper in generator._controls._pipes.values()}
    assert kinds == {"StableDiffusionControlNetInpaintPipeline"}


def test_sdxl_with_a_guide(generator, tiny_sdxl_dir):
    xl_edges = ControlGuide("edges-xl", lines())
    plain, _ = make(generator, request(tiny_sdxl_dir))
    guided, recipe = make(generator, request(tiny_sdxl_dir, controls=(xl_edges,)))
    assert differ(plain, guided) > 1 and recipe.controls[0]["model"] == "edges-xl"
    start = Image.new("RGB", (64, 64), (200, 120, 40))
    assert differ(make(generator, request(tiny_sdxl_dir, init_image=start, strength=0.7))[0],
                  make(generator, request(tiny_sdxl_dir, init_image=start, strength=0.7, controls=(xl_edges,)))[0]) > 1
    mask = Image.new("L", (64, 64))
    ImageDraw.Draw(mask).rectangle((8, 8, 40, 40), fill=255)
    inpaint = dict(init_image=start, mask=mask, strength=1.0)
    assert differ(make(generator, request(tiny_sdxl_dir, **inpaint))[0],
                  make(generator, request(tiny_sdxl_dir, **inpaint, controls=(xl_edges,)))[0]) > 0.1
    kinds = {type(wrapper).__name__ for _key, wrapper in generator._controls._pipes.values()}
    assert kinds == {"StableDiffusionXLControlNetPipeline", "StableDiffusionXLControlNetImg2ImgPipeline",
                     "StableDiffusionXLControlNetInpaintPipeline"}


def test_the_hires_fix_keeps_the_guides_in_its_second_pass_at_the_larger_size(generator, tiny_model_dir, monkeypatch):
    sizes: list[tuple[int, int]] = []
    real = control_nets.control_pictures
    monkeypatch.setattr(control_nets, "control_pictures",
                        lambda guides, size, area=None, annotate=None: sizes.append(size) or
                        real(guides, size, area, annotate))
    hires = HiresFix(scale=1.5, strength=0.6)
    plain, _ = make(generator, request(tiny_model_dir, hires=hires))
    guided, recipe = make(generator, request(tiny_model_dir, hires=hires, controls=(EDGES,)))
    assert guided.shape == (96, 96, 3) and differ(plain, guided) > 1
    assert sizes == [(64, 64), (96, 96)]
    assert recipe.controls[0]["model"] == "edges" and recipe.hires_scale == 1.5
    latent, _ = make(generator, request(tiny_model_dir, hires=replace(hires, upscaler="Latent"), controls=(EDGES,)))
    assert latent.shape == (96, 96, 3)


def test_a_missing_controlnet_another_familys_or_a_pickle_is_refused_in_a_sentence(generator, models, tiny_model_dir,
                                                                                 tiny_sdxl_dir, tmp_path):
    missing = ControlGuide("scribble", lines())
    with pytest.raises(InvalidRequest) as found:
        make(generator, request(tiny_model_dir, controls=(missing,)))
    folder = models / "controlnet"
    assert str(found.value) == (f"No ControlNet named 'scribble' was found: Studio looked for the folder "
                                f"{folder / 'scribble'} (with config.json), the file {folder / 'scribble.safetensors'} "
                                f"and a file or folder at {Path('scribble').expanduser()}.")
    with pytest.raises(InvalidRequest, match="The ControlNet edges-xl is made for 72-wide text encoder models, and "
                                             "tiny-sd is a 32-wide text encoder model"):
        make(generator, request(tiny_model_dir, controls=(ControlGuide("edges-xl", lines()),)))
    with pytest.raises(InvalidRequest, match="The ControlNet edges is made for .* and tiny-xl is"):
        make(generator, request(tiny_sdxl_dir, controls=(EDGES,)))
    pickled = tmp_path / "canny.pth"
    pickled.write_bytes(pickle.dumps({"state_dict": {}}))
    with pytest.raises(ModelError, match="canny.pth is a pickle checkpoint, which can run code"):
        make(generator, request(tiny_model_dir, controls=(ControlGuide(str(pickled), lines()),)))
    not_a_controlnet = tiny_model_dir / "unet"  # a diffusers UNet folder
    with pytest.raises(InvalidRequest, match="^unet is not a ControlNet; pick a ControlNet for the guide.$"):
        make(generator, request(tiny_model_dir, controls=(ControlGuide(str(not_a_controlnet), lines()),)))
    assert not [m for m in generator.held_models() if m.role == CACHED]  # nothing of a refused guide was loaded


def test_real_families_are_named_in_the_mismatch_sentence():
    unet = SimpleNamespace(config=SimpleNamespace(cross_attention_dim=768))
    with pytest.raises(InvalidRequest) as found:
        check_fits(ControlSource("canny-xl", Path("canny-xl"), 2048), unet, "dreamshaper")
    assert str(found.value) == ("The ControlNet canny-xl is made for SDXL models, and dreamshaper is an SD 1.x "
                                "model; choose a ControlNet made for SD 1.x models.")
    check_fits(ControlSource("canny", Path("canny"), 768), unet, "dreamshaper")


def test_single_files_in_the_original_and_in_diffusers_layout(generator, models, tiny_model_dir, tiny_sdxl_dir,
                                                             monkeypatch):
    """What A1111 people have: lllyasviel's ``control_model.`` keys, built from a config Studio ships (here the tiny
    model's, put where a person's own configs go: ``<models>/configs/controlnet-<family>``)."""
    from diffusers import ControlNetModel

    net, xl_net = tiny_controlnet(tiny_model_dir, seed=5), tiny_controlnet(tiny_sdxl_dir, seed=5)
    monkeypatch.setitem(control_nets.CONFIG_KEYS, 32, "controlnet-tiny")
    monkeypatch.setitem(control_nets.CONFIG_KEYS, 72, "controlnet-tiny-xl")
    net.save_config(models / "configs" / "controlnet-tiny")
    xl_net.save_config(models / "configs" / "controlnet-tiny-xl")
    folder = models / "controlnet"
    save_file(original_layout(net), str(folder / "lines-original.safetensors"))
    save_file(net.state_dict(), str(folder / "lines-diffusers.safetensors"))
    save_file(original_layout(xl_net), str(folder / "lines-xl.safetensors"))
    net.save_pretrained(folder / "lines-folder")
    items = {item.name: item for item in scan_library(models) if item.kind == "controlnet"}
    assert {name: item.label for name, item in items.items()} == {
        "depth": "ControlNet", "edges": "ControlNet", "edges-xl": "ControlNet", "lines-diffusers": "ControlNet",
        "lines-folder": "ControlNet", "lines-original": "ControlNet",
        "lines-xl": "ControlNet (SDXL)"}  # its size conditioning says SDXL; the widths are the tiny model's
    pictures = [make(generator, request(tiny_model_dir, controls=(ControlGuide(name, lines()),)))[0]
                for name in ("lines-folder", "lines-original", "lines-diffusers")]
    assert np.array_equal(pictures[0], pictures[1]) and np.array_equal(pictures[0], pictures[2])  # the same weights
    xl_folder = folder / "lines-xl-folder"
    xl_net.save_pretrained(xl_folder)
    xl = [make(generator, request(tiny_sdxl_dir, controls=(ControlGuide(name, lines()),)))[0]
          for name in ("lines-xl", "lines-xl-folder")]
    assert np.array_equal(xl[0], xl[1])  # SDXL's size conditioning (label_emb) came across too
    loaded = [n for _source, n in generator._controls.kept]
    assert all(isinstance(n, ControlNetModel) for n in loaded)
    # A file whose layers are not the shipped config's says so instead of running half-loaded.
    monkeypatch.setitem(control_nets.CONFIG_KEYS, 32, "controlnet-tiny-xl")
    with pytest.raises(ModelError, match=r"^The ControlNet lines-original does not have the layers of the 32-wide "
                                         r"text encoder ControlNet Studio knows \(controlnet-tiny-xl's config.json\); "
                                         r"use its diffusers folder, with its own config.json, instead.$"):
        make(generator, request(tiny_model_dir, controls=(ControlGuide("lines-original", lines()),)))


def test_control_loras_and_t2i_adapters_are_listed_with_why_they_cannot_be_used(generator, models, tiny_model_dir,
                                                                                tmp_path):
    save_file({"lora_controlnet": torch.zeros(1), "input_blocks.0.0.weight": torch.zeros(1, 1)},
              str(tmp_path / "control-lora-canny-rank256.safetensors"))
    save_file({"body.0.block1.weight": torch.zeros(1), "conv_in.weight": torch.zeros(1)},
              str(tmp_path / "t2iadapter_canny.safetensors"))
    listed = {item.name: item for item in scan_library(tmp_path)}
    assert listed["control-lora-canny-rank256"].kind == "controlnet"
    assert listed["control-lora-canny-rank256"].problem.startswith(
        "control-lora-canny-rank256.safetensors is a Control-LoRA, which Studio cannot use as a control guide yet")
    assert "is a T2I-Adapter" in listed["t2iadapter_canny"].problem
    with pytest.raises(ModelError, match="is a Control-LoRA"):
        make(generator, request(tiny_model_dir, controls=(
            ControlGuide(str(tmp_path / "control-lora-canny-rank256.safetensors"), lines()),)))


def test_a_guide_names_its_controlnet_by_its_place_in_the_controlnet_folder(models, tmp_path):
    import shutil

    nested = tmp_path / "controlnet" / "sd15" / "scribble"
    shutil.copytree(models / "controlnet" / "edges", nested)
    save_file({"control_model.input_hint_block.0.weight": torch.zeros(1)}, str(tmp_path / "loose.safetensors"))
    assert find_controlnet(tmp_path, "sd15/scribble").name == "sd15/scribble"
    assert find_controlnet(tmp_path, str(nested)).name == "sd15/scribble"  # a path inside the folder: its place
    assert find_controlnet(tmp_path, str(tmp_path / "loose.safetensors")).name == "loose"  # elsewhere: its name


def test_a_model_or_a_vae_given_as_a_controlnet_is_said_to_be_what_it_is(tiny_model_dir, tmp_path):
    """A Stable Diffusion model folder as a guide's model said "No ControlNet named … was found", as if there were
    nothing there; the engine now says what it is, in the words `studio generate` uses."""
    with pytest.raises(InvalidRequest) as model:
        find_controlnet(tmp_path, str(tiny_model_dir))
    assert str(model.value) == f"{tiny_model_dir} is a Stable Diffusion model (SD 1.x), not a ControlNet."
    with pytest.raises(InvalidRequest) as vae:
        find_controlnet(tmp_path, str(tiny_model_dir / "vae"))
    assert str(vae.value) == f"{tiny_model_dir / 'vae'} is a VAE, not a ControlNet."


def test_a_guided_job_can_be_cancelled(generator, tiny_model_dir):
    class CancelAtSecondStep(DirectContext):
        def __init__(self) -> None:
            super().__init__()
            self.steps = 0

        def report_progress(self, step, total, image_index=0, preview=None, preview_box=None):  # noqa: ANN001
            self.steps = step

        def is_cancelled(self) -> bool:
            return self.steps >= 1

    with pytest.raises(JobCancelledError):
        make(generator, request(tiny_model_dir, steps=4, controls=(EDGES,)), CancelAtSecondStep())


def test_a_guided_job_replays_the_captured_unet_step_with_the_residuals_as_inputs(generator, tiny_model_dir,
                                                                                monkeypatch):
    """The fast path's graph machinery with the stand-in capture: the ControlNet's residuals are more tensors of
    the UNet call, so its steps replay a captured graph, and the picture is the eager one."""
    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    ReplayOnCpu.made = []
    guides = (replace(EDGES, end=0.5),)  # the later steps get residuals scaled to zero: the same graph
    context = DirectContext()
    fast, _ = make(generator, request(tiny_model_dir, steps=4, controls=guides), context)
    eager, _ = make(generator, request(tiny_model_dir, steps=4, controls=guides, speed="eager"))
    assert context.notes == []
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert [key for key, _seconds in state.captures] == ["4x8x8 latents, 2 rows, float32, with control guides"]
    assert ReplayOnCpu.made[0].replays == 4
    diff = np.abs(fast - eager)
    assert diff.mean() <= 1.0 and diff.max() <= 8  # fused QKV sums in another order: close, not always bitwise


def test_guides_go_with_loras_a_reference_picture_and_emphasis(generator, models, tiny_model_dir):
    """The ControlNet pipeline shares the model's UNet: a LoRA merged into it steers guided pictures too, and
    the base weights come back for the next job; an IP-Adapter attaches to the ControlNet pipeline as to the model's."""
    from tiny_loras import lora_state, save_lora, tiny_unet
    from tiny_models import build_tiny_ip_adapter

    save_lora(lora_state(tiny_unet(tiny_model_dir)), models / "loras" / "detail.safetensors")
    build_tiny_ip_adapter(models, tiny_model_dir)
    plain, _ = make(generator, request(tiny_model_dir))
    guided, _ = make(generator, request(tiny_model_dir, controls=(EDGES,)))
    with_lora, recipe = make(generator, request(tiny_model_dir, controls=(EDGES,), loras=(LoraChoice("detail"),)))
    assert differ(guided, with_lora) > 1 and [lora.name for lora in recipe.loras] == ["detail"]
    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain)
    reference = Image.new("RGB", (64, 64), (240, 140, 20))
    referenced, _ = make(generator, request(tiny_model_dir, controls=(EDGES,), reference_image=reference))
    assert differ(guided, referenced) > 1
    assert np.array_equal(make(generator, request(tiny_model_dir, controls=(EDGES,)))[0], guided)
    # Emphasis and long prompts are read as A1111 reads them in the ControlNet pipeline too.
    emphasis, _ = make(generator, request(tiny_model_dir, prompt="a (red:1.6) fox, snow", controls=(EDGES,)))
    assert not np.array_equal(emphasis, guided)


def test_the_controlnet_is_placed_as_the_memory_plan_places_the_model():
    from accelerate.hooks import ModelHook, add_hook_to_module

    from studio.engine.device import select_device

    cpu = select_device("cpu")
    net = torch.nn.Linear(4, 4)
    offloads: list[torch.device] = []
    pipe = SimpleNamespace(controlnet=net, enable_model_cpu_offload=lambda device: offloads.append(device))
    gpu = replace(cpu, kind="cuda", torch_device=torch.device("meta"))  # a device the weights are not on
    assert control_nets.bytes_to_place(pipe, gpu) == 20 * 4 and control_nets.bytes_to_place(pipe, cpu) == 0
    # The model offloaded by its own pipeline before: the ControlNet pipeline's parts are offloaded as one chain.
    control_nets.place(pipe, True, cpu)
    assert offloads == [cpu.torch_device]
    add_hook_to_module(net, ModelHook())  # as offloading left it
    control_nets.place(pipe, True, cpu)
    assert len(offloads) == 1  # hooked already: nothing to do
    control_nets.place(pipe, False, cpu)  # a job with everything on the device: the hook goes
    assert not hasattr(net, "_hf_hook")
    control_nets.place(SimpleNamespace(), False, cpu)  # a pipeline without a ControlNet: nothing


def test_a_model_of_another_kind_lets_the_kept_controlnets_go(generator, tiny_model_dir, tiny_sdxl_dir,
                                                               tiny_inpaint_model_dir):
    make(generator, request(tiny_model_dir, controls=(EDGES,)))
    make(generator, request(tiny_inpaint_model_dir))  # the same kind of model (its text encoder): kept
    assert [m.name for m in generator.held_models() if m.role == CACHED] == ["ControlNet edges"]
    assert not generator._controls._pipes  # the pipelines built on the model before went with the switch
    make(generator, request(tiny_sdxl_dir))
    assert not [m for m in generator.held_models() if m.role == CACHED]


def test_running_out_of_memory_lets_the_kept_controlnets_go(generator, tiny_model_dir, monkeypatch):
    from studio.core.errors import StudioError

    make(generator, request(tiny_model_dir, controls=(EDGES,)))

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise torch.OutOfMemoryError("CUDA out of memory")
        yield

    monkeypatch.setattr(generator, "_generate", out_of_memory)
    with pytest.raises(StudioError, match="ran out of memory"):
        make(generator, request(tiny_model_dir, controls=(EDGES,)))
    assert generator.held_models() == [] and generator._controls.kept == []
