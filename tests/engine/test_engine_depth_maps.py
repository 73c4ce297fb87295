"""Depth maps from a tiny random-weight Depth Anything model, saved as the hub ships it and loaded through Studio's
own loader: the map's size, grey levels and stretch, the same picture giving the same bytes from the kept map, and
the ways a guide reaches it (the ControlNet's picture, an outpainting extension)."""

from __future__ import annotations

import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tiny_depth import depth_model_in

from studio.core.annotators import DEPTH_REPO
from studio.core.control import DEPTH, NONE, ControlGuide, extend_guide
from studio.core.errors import InvalidRequest
from studio.engine import depth_maps
from studio.engine.control_nets import control_pictures


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    depth_model_in(root)
    return root


@pytest.fixture(autouse=True)
def nothing_kept():
    depth_maps.forget()
    yield
    depth_maps.forget()


def photo(seed: int, size: tuple[int, int] = (60, 40)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_a_depth_map_is_grey_at_the_picture_s_size_stretched_from_black_to_white(models):
    made = depth_maps.depth_map(photo(1), models)
    pixels = np.asarray(made)
    assert (made.mode, made.size) == ("RGB", (60, 40))
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert (pixels.min(), pixels.max()) == (0, 255)  # per picture: its farthest point black, its nearest white


def test_near_is_white_the_model_s_larger_values(models):
    """The map follows the model's relative inverse depth (larger is nearer) in order, scaled to the picture."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    folder = models / "annotators" / "depth-anything-v2-small"
    model = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    picture = photo(2)
    width, height = depth_maps.work_size(picture.size, 56)  # the tiny model's processor size
    inputs = AutoImageProcessor.from_pretrained(folder)(images=picture, size={"height": height, "width": width},
                                                        keep_aspect_ratio=False, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**inputs).predicted_depth[:, None]
    own = torch.nn.functional.interpolate(predicted, (40, 60), mode="bilinear", align_corners=True)[0, 0].numpy()
    made = np.asarray(depth_maps.depth_map(picture, models))[..., 0].astype(float)
    assert np.corrcoef(own.ravel(), made.ravel())[0, 1] > 0.999
    assert made.flat[own.argmax()] == 255 and made.flat[own.argmin()] == 0


def test_the_same_picture_gives_the_same_bytes_from_the_kept_map_without_running_the_model(models):
    picture = photo(3)
    first = depth_maps.depth_map(picture, models)
    runs = depth_maps.runs
    assert depth_maps.depth_map(picture, models).tobytes() == first.tobytes()
    assert depth_maps.runs == runs  # a weight slider moved: the map is the kept one
    copy = picture.copy()  # another picture with the same pixels: made again, alike
    assert depth_maps.depth_map(copy, models).tobytes() == first.tobytes()
    assert depth_maps.runs == runs + 1


def test_a_transparent_picture_is_read_on_white(models):
    cutout = photo(4).convert("RGBA")
    cutout.putalpha(Image.new("L", cutout.size, 0))
    white = Image.new("RGB", cutout.size, "white")
    assert depth_maps.depth_map(cutout, models).tobytes() == depth_maps.depth_map(white, models).tobytes()


def test_the_model_reads_the_short_side_at_its_size_and_the_long_side_at_most_twice_that():
    assert depth_maps.work_size((640, 480), 518) == (686, 518)  # as Depth Anything's own infer_image
    assert depth_maps.work_size((300, 200), 518) == (784, 518)  # 777 rounded to whole patches
    assert depth_maps.work_size((8000, 300), 518) == (1036, 42)  # not 13818x518
    assert depth_maps.work_size((40, 4000), 518) == (14, 1036)  # one patch, not none


@pytest.mark.parametrize("size", [(4000, 40), (8000, 300), (3, 3000)])
def test_a_very_thin_picture_s_map_has_its_size_and_the_model_reads_a_bounded_picture(tmp_path, size):
    """As the real processor's 518 px: a 4000x40 strip was refused by the processor, a 8000x300 one read as
    518x13818 (36519 tokens: minutes on a CPU)."""
    from tiny_depth import build_tiny_depth

    from studio.core.annotators import DEPTH_FOLDER
    from studio.core.hashing import files_key

    folder = build_tiny_depth(tmp_path / DEPTH_FOLDER, side=518)
    model, _ = depth_maps._model(folder, files_key(sorted(folder.iterdir())), None, None)
    read: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda module, args, kwargs: read.append(tuple(kwargs["pixel_values"].shape)),
                                    with_kwargs=True)
    made = depth_maps.depth_map(photo(8, size), tmp_path)
    assert made.size == size and made.mode == "RGB"
    (shape,) = read
    assert max(shape[2:]) <= 1036 and min(shape[2:]) >= 14


def test_a_missing_depth_model_is_said_with_how_to_get_it(tmp_path):
    guides = (ControlGuide("net", photo(5), preprocessor=DEPTH),)
    with pytest.raises(InvalidRequest, match=f"studio models download {DEPTH_REPO}"):
        depth_maps.depth_map(photo(5), tmp_path)
    with pytest.raises(InvalidRequest, match="Depth Anything V2 Small"):
        depth_maps.check_depth_model(tmp_path, guides)
    depth_maps.check_depth_model(tmp_path, (ControlGuide("net", photo(5), preprocessor=NONE),))  # none needs none


def test_the_controlnet_sees_the_depth_map_placed_in_the_job(models):
    picture = photo(6, (64, 48))
    guide = ControlGuide("net", picture, preprocessor=DEPTH)
    (seen,) = control_pictures([guide], (32, 24), annotate=depth_maps.annotator(models))
    expected = depth_maps.depth_map(picture, models).resize((32, 24), Image.Resampling.LANCZOS)
    assert seen.size == (32, 24)
    assert seen.tobytes() == expected.tobytes()


def test_an_outpainted_depth_guide_takes_the_picture_s_map_in_black_margins(models):
    picture = photo(7, (40, 30))
    guide = ControlGuide("net", picture, preprocessor=DEPTH, image_path="/kept.png")
    extended = extend_guide(guide, (40, 30), (8, 0, 0, 4), depth_maps.annotator(models))
    pixels = np.asarray(extended.image)
    assert (extended.preprocessor, extended.image.size, extended.image_path) == (NONE, (48, 34), "")
    assert np.array_equal(pixels[:30, 8:], np.asarray(depth_maps.depth_map(picture, models)))
    assert not pixels[:, :8].any() and not pixels[30:].any()


def test_a_depth_guided_job_steers_with_the_photo_s_depth_map_and_refuses_without_the_model(
        tiny_model_dir, tmp_path):
    """Through the real generator: the ControlNet sees exactly the depth map (the same job with the map given as a
    ready-made picture makes the same pixels); without the depth model the job is refused in a sentence."""
    from dataclasses import replace

    from studio_testing import DirectContext, make_env, tiny_request
    from tiny_controlnets import build_tiny_controlnet

    from studio.engine.diffusion import DiffusersGenerator

    root = tmp_path / "models"
    build_tiny_controlnet(root / "controlnet" / "depth-net", tiny_model_dir)
    generator = DiffusersGenerator(replace(make_env(tmp_path), models_dir=root))
    picture = photo(8, (64, 64))

    def make(guide: ControlGuide) -> np.ndarray:
        ((image, recipe),) = list(generator.generate(tiny_request(tiny_model_dir, prepared=True, controls=(guide,)),
                                                     DirectContext()))
        return np.asarray(image)

    with pytest.raises(InvalidRequest, match="Depth Anything V2 Small"):
        make(ControlGuide("depth-net", picture, preprocessor=DEPTH))
    depth_model_in(root)
    guided = make(ControlGuide("depth-net", picture, preprocessor=DEPTH))
    assert np.array_equal(guided, make(ControlGuide("depth-net", depth_maps.depth_map(picture, root))))
    assert not np.array_equal(guided, make(ControlGuide("depth-net", picture)))


# -- Models in Memory and the GPU memory plan ------------------------------------------------------------------------

def on_a_gpu(folder: Path) -> Any:  # noqa: ANN401
    """The depth model as a job on a GPU keeps it: in half precision on a device that is not the CPU (the meta
    device stands in for the GPU; only its weights' place and size are read)."""
    import torch

    from studio.core.hashing import files_key

    model, _ = depth_maps._model(folder, files_key(sorted(folder.iterdir())), torch.device("meta"), torch.float16)
    return model


def weight_bytes(model: Any) -> int:  # noqa: ANN401
    return sum(weight.numel() * weight.element_size() for weight in model.parameters())


@pytest.fixture
def depth_generator(tiny_model_dir, tmp_path):  # noqa: ANN001, ANN201
    from studio_testing import make_env
    from tiny_controlnets import build_tiny_controlnet

    from studio.engine.diffusion import DiffusersGenerator

    root = tmp_path / "models"
    build_tiny_controlnet(root / "controlnet" / "depth-net", tiny_model_dir)
    depth_model_in(root)
    return DiffusersGenerator(replace(make_env(tmp_path), models_dir=root))


def depth_job(generator: Any, tiny_model_dir: Path, picture: Image.Image, context: Any = None) -> None:  # noqa: ANN401
    from studio_testing import DirectContext, tiny_request

    guide = ControlGuide("depth-net", picture, preprocessor=DEPTH)
    request = tiny_request(tiny_model_dir, prepared=True, controls=(guide,))
    list(generator.generate(request, context or DirectContext()))


def test_models_in_memory_lists_the_depth_models_on_the_device_and_the_cpu_and_frees_them(depth_generator,
                                                                                       tiny_model_dir):
    """The engine device's copy (kept from a job on the GPU) and the CPU's (the guides' thumbnails, and the jobs
    of an engine on the CPU) are both listed as cached, with their place, precision and size, and both go with the
    kept models (the one in use stays)."""
    from studio.core.held_memory import CACHED
    from studio.engine.held_memory import release_memory

    folder = depth_generator._env.models_root / "annotators" / "depth-anything-v2-small"
    gpu_copy = weakref.ref(on_a_gpu(folder))
    depth_job(depth_generator, tiny_model_dir, photo(9, (64, 64)))  # its map made on the CPU engine's device
    cpu_copy = weakref.ref(next(model for model, _ in depth_maps._models.values() if model.device.type == "cpu"))
    listed = [held for held in depth_generator.held_models() if held.name.startswith("Depth model")]
    assert [(held.name, held.role, held.device, held.precision, held.path) for held in listed] == [
        ("Depth model depth-anything-v2-small", CACHED, "meta", "float16", folder),
        ("Depth model depth-anything-v2-small", CACHED, "cpu", "float32", folder)]
    assert [held.size for held in listed] == [weight_bytes(gpu_copy()), weight_bytes(cpu_copy())]
    assert listed[1].size == 2 * listed[0].size > 0

    freed = release_memory([depth_generator])
    assert set(listed) <= set(freed.models) and freed.size >= sum(held.size for held in listed)
    assert gpu_copy() is None and cpu_copy() is None
    assert depth_maps.held_models() == [] and depth_generator._model is not None  # the model in use stays


def test_a_job_short_of_gpu_memory_lets_the_depth_model_go_before_the_unet_runs(depth_generator, tiny_model_dir,
                                                                                monkeypatch):
    """The depth model's weights on the GPU are out of its free memory when a job's plan is made (the maps are made
    first). With room it stays for the next depth guide; short of room it goes, the plan is made again without it
    and needs no measure, and the CPU's copy (the thumbnails') stays. The plan's own arithmetic, on a pretend GPU
    whose free memory is what its capacity leaves beside the depth model and the model itself."""
    import torch
    from studio_testing import DirectContext

    from studio.engine import job_memory
    from studio.engine.device import DeviceInfo
    from studio.engine.memory import HEADROOM, job_bytes, model_bytes, plan_memory

    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")  # planning reads .kind
    capacity = {"bytes": 2**40}
    on_gpu: list[int] = []

    def free_beside_the_depth_model(device: DeviceInfo, *_: object) -> int:
        on_gpu.append(sum(held.size for held in depth_maps.held_models() if held.device != "cpu"))
        # The model's own weights are there too (the plan counts them back as its own: resident_bytes).
        return capacity["bytes"] - on_gpu[-1] - model_bytes(depth_generator._model.text2img)

    monkeypatch.setattr(job_memory, "free_vram", free_beside_the_depth_model)
    monkeypatch.setattr(job_memory, "plan_memory", lambda mode, device, *sizes: plan_memory(mode, pretend_gpu, *sizes))
    folder = depth_generator._env.models_root / "annotators" / "depth-anything-v2-small"
    picture = photo(10, (64, 64))
    gpu_copy = weakref.ref(on_a_gpu(folder))
    depth_bytes = weight_bytes(gpu_copy())
    context = DirectContext()
    depth_job(depth_generator, tiny_model_dir, picture, context)  # room enough: kept for the next depth guide
    plan = depth_generator._plan
    assert plan.measures == () and on_gpu == [depth_bytes] and gpu_copy() is not None
    assert not any("let go" in note for note in context.notes)

    # The job fits only without the depth model: half its weights short of room beside it.
    needed = int((plan.model_bytes + job_bytes(64, 64, 4)) * HEADROOM)
    capacity["bytes"] = needed + depth_bytes // 2
    runs, context = depth_maps.runs, DirectContext()
    depth_job(depth_generator, tiny_model_dir, picture, context)
    assert on_gpu[1:] == [depth_bytes, 0] and gpu_copy() is None  # planned again without it
    assert depth_generator._plan.measures == () and "Everything fits" in depth_generator._plan.reason
    assert "The depth model, kept from making depth maps, was let go to make room on the GPU." in context.notes
    assert [held.device for held in depth_maps.held_models()] == ["cpu"] and depth_maps.runs == runs  # map kept
