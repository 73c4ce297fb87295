"""Upscaling: the tiled runner on real small torch modules, finding and loading upscaler files (the sentences
for what is missing or refused, spandrel absent included), and the post-processor through the job service.

spandrel cannot be imported in CI (its torchvision needs a CUDA torch build); the end-to-end case with a real
spandrel model runs only where it imports, and spandrel is forced absent where a test is about its absence.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from studio_testing import collect_until_done, run, running_service, terminal
from style_weights import RecordingContext, gradient_image, make_env
from torch import nn

from studio.core.errors import InvalidRequest, JobCancelledError, ModelError
from studio.core.events import JobFailed, JobFinished, JobProgress
from studio.core.held_memory import CACHED, HeldModel
from studio.core.requests import PostProcessRequest
from studio.core.weight_files import pickle_refusal
from studio.engine import upscale as upscale_module
from studio.engine.device import on_spare_memory, select_device
from studio.engine.held_memory import release_memory
from studio.engine.tiled import blend_weights, tile_spans, upscale_tiled
from studio.engine.upscale import (
    Upscale,
    Upscaler,
    find_upscaler,
    load_upscaler,
    tile_size,
    upscalers_dir,
)

NEAREST_2X = nn.Upsample(scale_factor=2, mode="nearest")


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    bands = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, bands), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if bands == 1 else pixels, mode)


def conv_2x() -> nn.Module:
    """A random-weight 2x super-resolution net (conv, conv, PixelShuffle): the same everywhere but at borders."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 12, 3, padding=1),
                         nn.PixelShuffle(2), nn.Sigmoid()).eval()


def difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size and a.mode == b.mode
    return int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max())


# -- the tiled runner -------------------------------------------------------------------------------------

def test_tiles_cover_the_picture_evenly_and_their_weights_sum_to_one():
    assert tile_spans(50, 64, 16) == [(0, 50)]  # smaller than a tile: one tile, the picture's size
    spans = tile_spans(301, 64, 16)
    assert spans[0][0] == 0 and spans[-1][1] == 301 and all(end - start == 64 for start, end in spans)
    assert all(b[0] <= a[1] - 16 for a, b in pairwise(spans))  # every neighbour overlaps by 16 or more
    for scale in (1, 4):
        total = np.zeros(301 * scale)
        for (start, _), weights in zip(spans, blend_weights(spans, 301, scale, 16)):
            total[start * scale:start * scale + len(weights)] += weights
        assert np.allclose(total, 1.0, atol=1e-6)


def test_nearest_upsampling_in_tiles_equals_the_whole_picture_exactly():
    picture = noise(131, 97)  # odd sides: neither a multiple of the tile nor of 2
    calls: list[tuple[int, int]] = []
    tiled = upscale_tiled(NEAREST_2X, picture, 2, 64, 16, on_tile=lambda done, total: calls.append((done, total)))
    assert tiled.size == (262, 194) and tiled.mode == "RGB"
    assert tiled.tobytes() == picture.resize((262, 194), Image.Resampling.NEAREST).tobytes()
    tiles = len(tile_spans(97, 64, 16)) * len(tile_spans(131, 64, 16))
    assert tiles == 6 and calls == [(i, tiles) for i in range(1, tiles + 1)]  # progress once per tile


def test_a_convolutional_net_in_overlapping_tiles_matches_the_whole_picture():
    net, picture = conv_2x(), gradient_image(150, 110, seed=2)
    whole = upscale_tiled(net, picture, 2, 1024, 16)
    assert difference(upscale_tiled(net, picture, 2, 64, 16), whole) <= 1  # only rounding
    # Without overlap the tiles' zero-padded borders show as seams: the blend is what removes them.
    assert difference(upscale_tiled(net, picture, 2, 64, 0), whole) > 4


def test_rgba_grey_and_pictures_smaller_than_a_tile():
    picture = noise(21, 13, "RGBA", seed=3)
    result = upscale_tiled(NEAREST_2X, picture, 2, 64, 16)
    assert result.mode == "RGBA" and result.size == (42, 26)
    assert result.getchannel("A").tobytes() == picture.getchannel("A").resize((42, 26), Image.Resampling.LANCZOS).tobytes()
    assert result.convert("RGB").tobytes() == picture.convert("RGB").resize((42, 26), Image.Resampling.NEAREST).tobytes()
    grey = upscale_tiled(NEAREST_2X, noise(30, 20, "L"), 2, 64, 16, channels=1)
    assert grey.mode == "RGB" and grey.size == (60, 40)


def test_a_cancel_between_tiles_stops_the_run():
    calls: list[int] = []

    def counted(batch: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return NEAREST_2X(batch)

    done: list[int] = []
    with pytest.raises(JobCancelledError):
        upscale_tiled(counted, noise(130, 130), 2, 64, 16, on_tile=lambda step, total: done.append(step),
                      is_cancelled=lambda: bool(done))
    assert done == [1] and len(calls) == 1


def test_out_of_memory_halves_the_tile_once_then_fails_with_a_sentence():
    seen: list[int] = []

    def small_only(batch: torch.Tensor) -> torch.Tensor:
        seen.append(batch.shape[-1])
        if batch.shape[-1] > 32:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return NEAREST_2X(batch)

    class KeptAside:  # a model kept for switching back: it goes before the retry
        held = True

        def let_go(self) -> bool:
            held, self.held = self.held, False
            return held

    kept = KeptAside()
    on_spare_memory(kept.let_go)
    notes: list[str] = []
    picture = noise(70, 50)
    result = upscale_tiled(small_only, picture, 2, 64, 8, note=notes.append)
    assert not kept.held
    assert result.tobytes() == picture.resize((140, 100), Image.Resampling.NEAREST).tobytes()
    assert seen[0] == 64 and set(seen[1:]) == {32}
    assert notes == ["The upscaler ran out of memory with 64-pixel tiles, so it used 32-pixel tiles."]

    def never(batch: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory.")

    with pytest.raises(ModelError, match=r"^The upscaler ran out of memory even with 32-pixel tiles; choose a "
                                         r"smaller tile size or run it on the CPU\.$"):
        upscale_tiled(never, picture, 2, 64, 8)


# -- finding and loading upscaler files -------------------------------------------------------------------

def write_tensors(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"body.0.weight": torch.zeros(4, 3, 3, 3)}, str(path))
    return path


def test_missing_pickled_and_unknown_upscaler_files_are_sentences(tmp_path):
    env = make_env(tmp_path)
    folder = upscalers_dir(env)
    assert folder == tmp_path / "data" / "models" / "upscalers"
    with pytest.raises(ModelError) as missing:
        find_upscaler(env)
    assert str(missing.value).startswith("Upscaling needs an upscaler model: put a Real-ESRGAN x4plus, "
                                         "4x-UltraSharp, ")
    assert f"as a .safetensors file, in {folder}/ (convert a .pth download with: studio convert-weights" \
           in str(missing.value)

    folder.mkdir(parents=True)
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(1)}}, folder / "RealESRGAN_x4plus.pth")
    expected = ("RealESRGAN_x4plus.pth is a pickle checkpoint, which can run code when it is loaded; Studio only "
                f"loads safetensors. Convert it with `studio convert-weights {folder / 'RealESRGAN_x4plus.pth'} "
                f"{folder / 'RealESRGAN_x4plus.safetensors'}` (it reads tensors only, with "
                "torch.load(weights_only=True)).")
    for name in ("", "RealESRGAN_x4plus.pth", "RealESRGAN_x4plus"):
        with pytest.raises(ModelError) as pickled:
            find_upscaler(env, name)
        assert str(pickled.value) == expected

    write_tensors(folder / "b.safetensors")
    write_tensors(folder / "a.safetensors")
    assert find_upscaler(env) == folder / "a.safetensors"  # empty: the first one there
    assert find_upscaler(env, "b") == find_upscaler(env, "b.safetensors") == folder / "b.safetensors"
    assert find_upscaler(env, str(folder / "b.safetensors")) == folder / "b.safetensors"
    with pytest.raises(ModelError, match=r"^No upscaler called 'c' is in .*upscalers/ \(it holds: "
                                         r"RealESRGAN_x4plus.pth, a.safetensors, b.safetensors\)\.$"):
        find_upscaler(env, "c")

    renamed = folder / "renamed.safetensors"
    renamed.write_bytes((folder / "RealESRGAN_x4plus.pth").read_bytes())  # a pickle under a safetensors name
    with pytest.raises(ModelError) as unreadable:
        load_upscaler(renamed, select_device("cpu"))
    assert str(unreadable.value) == pickle_refusal(renamed)
    assert pickle_refusal(renamed).endswith(f"`studio convert-weights {renamed} "
                                            f"{folder / 'renamed.converted.safetensors'}` (it reads tensors only, "
                                            "with torch.load(weights_only=True)).")  # never IN onto itself


class _Sentinel:
    """Unpickling this creates the file at ``path``, as a malicious checkpoint would run its payload."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


@pytest.mark.parametrize("writer", ["torch.save", "pickle protocol 0", "pickle protocol 4"])
def test_a_pickle_renamed_safetensors_is_refused_by_the_upscaler_and_never_unpickled(tmp_path, writer):
    sentinel = tmp_path / "ran"
    env = make_env(tmp_path)
    evil = upscalers_dir(env) / "4x-evil.safetensors"
    evil.parent.mkdir(parents=True)
    payload = {"params_ema": {"conv_first.weight": [0.0]}, "hook": _Sentinel(sentinel)}
    if writer == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=int(writer[-1])))
    assert find_upscaler(env) == find_upscaler(env, "4x-evil") == evil  # found by name; refused by content
    with pytest.raises(ModelError) as refused:
        load_upscaler(evil, select_device("cpu"))
    assert str(refused.value) == pickle_refusal(evil)

    async def scenario():
        async with running_service(env) as service:
            stream = service.subscribe()
            job = service.submit(PostProcessRequest("upscale", gradient_image(16, 16), {"model": "4x-evil"}))
            return terminal(await collect_until_done(stream, [job]), job)

    failed = run(scenario())
    assert isinstance(failed, JobFailed) and failed.message == pickle_refusal(evil)
    assert not sentinel.exists()


def test_without_spandrel_the_job_fails_with_the_install_command_and_the_picture_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # absent everywhere, not only where it is not installed
    write_tensors(tmp_path / "data" / "models" / "upscalers" / "RealESRGAN_x4plus.safetensors")
    picture = gradient_image(40, 30)
    before = picture.tobytes()

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            job = service.submit(PostProcessRequest("upscale", picture, {}))
            return terminal(await collect_until_done(stream, [job]), job)

    failed = run(scenario())
    assert isinstance(failed, JobFailed)
    assert failed.message.startswith(f"Upscaling needs the spandrel library and a torchvision build matching the "
                                     f"installed torch {torch.__version__}: install them with pip install "
                                     f'"studio[upscale]" (or pip install spandrel) and restart Studio (importing '
                                     f"spandrel failed: ")
    assert failed.message.endswith(").") and "\n" not in failed.message
    assert picture.tobytes() == before and not failed.outputs


# -- the post-processor, with a stand-in for what spandrel would load --------------------------------------

def fake_upscaler(net: nn.Module, scale: int = 2, tiled: bool = True) -> Upscaler:
    return Upscaler(net, "fake.safetensors", scale, 3, 1, 0, tiled, torch.float32)


def test_the_post_processor_tiles_rescales_reports_and_keeps_the_model_between_jobs(tmp_path, monkeypatch):
    path = write_tensors(tmp_path / "data" / "models" / "upscalers" / "fake.safetensors")
    loads: list[Path] = []
    monkeypatch.setattr(upscale_module, "load_upscaler",
                        lambda p, device: loads.append(p) or fake_upscaler(NEAREST_2X))
    processor, picture = Upscale(make_env(tmp_path)), noise(100, 70, seed=5)

    context = RecordingContext()
    result = processor.process(picture, {"model": "", "tile": 64, "tile_overlap": 16, "outscale": 0.0}, context)
    assert result.tobytes() == picture.resize((200, 140), Image.Resampling.NEAREST).tobytes()
    assert [(step, total) for step, total, _ in context.progress] == [(i, 4) for i in range(1, 5)]

    context = RecordingContext()
    bigger = processor.process(picture, {"model": "fake", "tile": 512, "outscale": 3.0}, context)
    assert bigger.size == (300, 210) and context.progress == [(1, 1, None)]
    assert context.notes == ["fake.safetensors enlarges 2x; the rest of the way to 3x is plain Lanczos resampling."]
    assert processor.process(picture, {"outscale": 1.5}, RecordingContext()).size == (150, 105)
    assert loads == [path]  # loaded once for three jobs
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    processor.process(picture, {}, RecordingContext())
    assert loads == [path, path]  # a replaced file is loaded again


def test_the_kept_upscaler_is_listed_in_memory_and_freed(tmp_path, monkeypatch):
    write_tensors(tmp_path / "data" / "models" / "upscalers" / "fake.safetensors")
    net = conv_2x()
    monkeypatch.setattr(upscale_module, "load_upscaler", lambda p, device: fake_upscaler(net))
    processor = Upscale(make_env(tmp_path))
    assert processor.held_models() == []
    processor.process(noise(16, 16), {}, RecordingContext())
    size = sum(p.numel() * 4 for p in net.parameters())
    held = HeldModel("Upscaler fake.safetensors", CACHED, "cpu", "float32", size)
    assert processor.held_models() == [held]
    assert release_memory([processor]).models == (held,) and processor.held_models() == []


def test_a_result_larger_than_studio_takes_is_refused_before_any_work(tmp_path, monkeypatch):
    write_tensors(tmp_path / "data" / "models" / "upscalers" / "fake.safetensors")
    monkeypatch.setattr(upscale_module, "load_upscaler", lambda p, device: fake_upscaler(NEAREST_2X))
    context = RecordingContext()
    with pytest.raises(InvalidRequest, match=r"^Upscaling this 9000x10 picture with fake.safetensors would make a "
                                             r"picture 18000 pixels on its long side; Studio takes at most 16384 "
                                             r"pixels a side\.$"):
        Upscale(make_env(tmp_path)).process(noise(9000, 10), {"outscale": 1.0}, context)
    assert context.progress == []


def test_tiles_keep_to_the_model_s_size_requirements():
    def needs(multiple: int, minimum: int) -> Upscaler:
        return Upscaler(NEAREST_2X, "x", 2, 3, multiple, minimum, True, torch.float32)

    assert tile_size(needs(1, 0), 100) == 100 and tile_size(needs(8, 16), 100) == 96
    assert tile_size(needs(128, 0), 64) == 128 and tile_size(needs(1, 256), 64) == 256


def test_a_model_that_tiles_internally_gets_the_whole_picture(tmp_path, monkeypatch):
    write_tensors(tmp_path / "data" / "models" / "upscalers" / "fake.safetensors")
    monkeypatch.setattr(upscale_module, "load_upscaler", lambda p, device: fake_upscaler(NEAREST_2X, tiled=False))
    context = RecordingContext()
    Upscale(make_env(tmp_path)).process(noise(300, 200), {"tile": 64}, context)
    assert [(step, total) for step, total, _ in context.progress] == [(1, 1)]


# -- a real spandrel model, where spandrel imports ---------------------------------------------------------

def spandrel_or_skip():
    try:
        return importlib.import_module("spandrel")
    except Exception as exc:  # noqa: BLE001 - a torchvision for another torch fails with RuntimeError
        pytest.skip(f"spandrel cannot be imported here ({str(exc).splitlines()[0] if str(exc) else exc!r})")


def test_a_tiny_real_esrgan_compact_model_through_spandrel_and_the_job_service(tmp_path):
    spandrel_or_skip()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4)
    folder = tmp_path / "data" / "models" / "upscalers"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "tiny-compact.safetensors"))
    write_tensors(folder / "not-a-model.safetensors")

    loaded = load_upscaler(folder / "tiny-compact.safetensors", select_device("cpu"))
    assert (loaded.scale, loaded.channels, loaded.dtype) == (4, 3, torch.float32)
    picture = gradient_image(150, 100, seed=4)
    whole = upscale_tiled(loaded.run, picture, 4, 1024, 16)
    assert difference(upscale_tiled(loaded.run, picture, 4, 64, 16), whole) <= 1
    with pytest.raises(ModelError, match=r"^not-a-model.safetensors is not a model spandrel recognises; "):
        load_upscaler(folder / "not-a-model.safetensors", select_device("cpu"))

    async def scenario():
        async with running_service(make_env(tmp_path)) as service:
            stream = service.subscribe()
            jobs = [service.submit(PostProcessRequest("upscale", picture, {"model": "tiny-compact", "tile": 64,
                                                                   "tile_overlap": 16})),
                    service.submit(PostProcessRequest("upscale", picture, {"model": "tiny-compact", "outscale": 2},
                                                      strength=0.0))]
            events = await collect_until_done(stream, jobs)
            return [terminal(events, j) for j in jobs], [e for e in events if isinstance(e, JobProgress)]

    (full, half), progress = run(scenario())
    assert isinstance(full, JobFinished) and isinstance(half, JobFinished), [getattr(e, "message", "")
                                                                               for e in (full, half)]
    image = full.outputs[0].image
    assert image.size == (600, 400) and np.isfinite(np.asarray(image, dtype=np.float32)).all()
    assert len(np.unique(np.asarray(image))) > 10  # a picture, not a flat or empty result
    assert progress and max(p.total for p in progress) == 6  # 2x3 tiles of 64 pixels
    assert half.outputs[0].image.tobytes() == picture.resize((300, 200), Image.Resampling.LANCZOS).tobytes()


# -- precision: float16 on CUDA, bfloat16 on a CPU with bfloat16 units, where spandrel says the model takes it ----

class StandInDescriptor:
    """What spandrel's ImageModelDescriptor gives Studio: the net, what it supports, and its precision moves."""

    def __init__(self, supports_bfloat16: bool) -> None:
        from types import SimpleNamespace

        self.model, self.scale, self.input_channels = conv_2x(), 2, 3
        self.supports_half, self.supports_bfloat16 = True, supports_bfloat16
        self.size_requirements, self.tiling = SimpleNamespace(multiple_of=1, minimum=0), "supported"

    def to(self, device: torch.device) -> StandInDescriptor:
        self.model.to(device)
        return self

    def half(self) -> StandInDescriptor:
        self.model.half()
        return self

    def bfloat16(self) -> StandInDescriptor:
        self.model.bfloat16()
        return self

    def eval(self) -> StandInDescriptor:
        self.model.eval()
        return self

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


def stand_in_spandrel(supports_bfloat16: bool) -> object:
    from types import SimpleNamespace

    loader = SimpleNamespace(load_from_state_dict=lambda _tensors: StandInDescriptor(supports_bfloat16))
    return SimpleNamespace(ModelLoader=lambda: loader, canonicalize_state_dict=lambda tensors: tensors,
                           UnsupportedModelError=type("UnsupportedModelError", (Exception,), {}),
                           ImageModelDescriptor=StandInDescriptor, ModelTiling=SimpleNamespace(INTERNAL="internal"))


def test_on_a_cpu_with_bfloat16_units_an_upscaler_that_takes_it_runs_bfloat16_channels_last(tmp_path, monkeypatch):
    from studio.engine import cpu_precision

    path = write_tensors(tmp_path / "fake.safetensors")
    picture = gradient_image(90, 70, seed=2)
    monkeypatch.setitem(sys.modules, "spandrel", stand_in_spandrel(supports_bfloat16=True))
    cpu = select_device("cpu")
    float32 = load_upscaler(path, cpu)  # the tests' STUDIO_CPU_DTYPE=float32
    assert float32.dtype == torch.float32 and float32.run.model[0].weight.dtype == torch.float32
    reference = upscale_tiled(float32.run, picture, 2, 64, 16, dtype=float32.dtype)

    monkeypatch.delenv(cpu_precision.ENV)
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    loaded = load_upscaler(path, cpu)
    weight = loaded.run.model[0].weight
    assert loaded.dtype == torch.bfloat16 and weight.dtype == torch.bfloat16
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert 0 < difference(upscale_tiled(loaded.run, picture, 2, 64, 16, dtype=loaded.dtype), reference) <= 4

    monkeypatch.setitem(sys.modules, "spandrel", stand_in_spandrel(supports_bfloat16=False))
    assert load_upscaler(path, cpu).dtype == torch.float32  # an architecture spandrel says cannot take it
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: False)
    assert upscale_module.upscaler_dtype(cpu, True, True) == torch.float32  # no bfloat16 units
    cuda = type(cpu)("cuda", torch.device("cuda", 0), torch.float16, "CUDA")
    assert upscale_module.upscaler_dtype(cuda, True, True) == torch.float16
    assert upscale_module.upscaler_dtype(cuda, False, True) == torch.float32


def test_a_hires_fix_upscaler_is_listed_with_the_generator_and_freed(tmp_path, monkeypatch):
    from studio.core.hires import HiresFix
    from studio.engine.diffusion import DiffusersGenerator

    write_tensors(tmp_path / "data" / "models" / "upscalers" / "fake.safetensors")
    monkeypatch.setattr(upscale_module, "load_upscaler", lambda p, device: fake_upscaler(conv_2x()))
    generator = DiffusersGenerator(make_env(tmp_path))
    generator._enlarge(noise(16, 16), HiresFix(2.0, upscaler="fake"), (32, 32), RecordingContext())
    assert [held.name for held in generator.held_models()] == ["Upscaler fake.safetensors"]
    assert [held.name for held in release_memory([generator]).models] == ["Upscaler fake.safetensors"]
    assert generator.held_models() == []
