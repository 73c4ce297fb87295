"""The fast path on the CPU: bfloat16 with channels-last weights where the processor computes it, float32 otherwise
and for Plain diffusers. Tiny SD pipelines through Studio's loader; the processor's bfloat16 units are stood in
for where a test needs them (torch computes bfloat16 on any x86 CPU, only slower without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from studio_testing import DirectContext, tiny_request

import studio.engine.diffusion as diffusion
from studio.cli_bench import report
from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest
from studio.engine import bench, bench_pipelines, cpu_precision, model_keeping
from studio.engine.cpu_precision import (
    ENV,
    cpu_computes_bfloat16,
    cpu_dtype,
    job_device,
)
from studio.engine.device import DeviceInfo, select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.memory import GIB, model_bytes

PLENTY = (64 * GIB, 128 * GIB)  # (available, total) system memory: the model switched from is kept


def test_bfloat16_only_where_the_processor_has_bfloat16_units_unless_told(monkeypatch):
    for amx, avx512_bf16, expected in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        assert cpu_computes_bfloat16() is expected
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)  # no oneDNN: reference kernels
    assert cpu_computes_bfloat16() is False
    monkeypatch.undo()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: 1 / 0)  # a torch whose check fails
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert cpu_computes_bfloat16() is False

    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    assert cpu_dtype(True, {}) == torch.bfloat16 and cpu_dtype(False, {}) == torch.float32  # Plain diffusers
    assert cpu_dtype(True, {ENV: "float32"}) == torch.float32 and cpu_dtype(True, {ENV: " Auto "}) == torch.bfloat16
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: False)
    assert cpu_dtype(True, {}) == torch.float32 and cpu_dtype(False, {ENV: "bf16"}) == torch.bfloat16

    cpu = select_device("cpu")
    assert cpu.dtype == torch.float32 and cpu.description.endswith("· float32")
    assert job_device(cpu, True, {}) is cpu
    fast = job_device(cpu, True, {ENV: "bfloat16"})
    assert (fast.kind, fast.dtype, fast.description) == ("cpu", torch.bfloat16, cpu.description[:-7] + "bfloat16")
    cuda = DeviceInfo("cuda", torch.device("cuda", 0), torch.float16, "CUDA")
    assert job_device(cuda, True, {ENV: "bfloat16"}) is cuda  # the GPU's precision is the fast path's own


def channels_last(module: torch.nn.Module) -> bool:
    convs = [m.weight for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    return bool(convs) and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def test_a_fast_job_runs_bfloat16_channels_last_and_plain_diffusers_float32_each_kept_for_switching_back(
        tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.delenv(ENV)
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    monkeypatch.setattr(model_keeping, "available_ram", lambda: PLENTY)
    loads: list[torch.dtype] = []
    real_load = diffusion.load_model
    monkeypatch.setattr(diffusion, "load_model",
                        lambda path, device, *a, **k: loads.append(device.dtype) or real_load(path, device, *a, **k))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))

    def make(speed: str, context: DirectContext | None = None) -> np.ndarray:
        request = tiny_request(tiny_model_dir, prepared=True, speed=speed, steps=4)
        ((image, _recipe),) = list(generator.generate(request, context or DirectContext()))
        return np.asarray(image, np.int16)

    context = DirectContext()
    fast = make("fast", context)
    pipe = generator._model.text2img
    assert loads == [torch.bfloat16]
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.bfloat16}
    assert channels_last(pipe.unet) and channels_last(pipe.vae) and not context.notes
    assert {s["device"] for s in context.statuses if "device" in s} == {generator.device.description}
    assert generator.device.description.endswith("· bfloat16")
    assert generator._plan.reason.startswith("Running on the CPU in bfloat16") and generator._plan.model_bytes == \
        model_bytes(pipe)
    assert np.array_equal(make("fast"), fast) and loads == [torch.bfloat16]  # Run again: the same picture

    plain = make("eager")  # Plain diffusers: float32, as diffusers runs on the CPU; the bfloat16 model is kept
    float32_pipe = generator._model.text2img
    assert loads == [torch.bfloat16, torch.float32] and generator._kept.models[0].text2img is pipe
    assert float32_pipe.unet.dtype == torch.float32 and not channels_last(float32_pipe.unet)
    assert model_bytes(float32_pipe) == 2 * model_bytes(pipe)
    monkeypatch.setenv(ENV, "float32")
    reference = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache2"))
    ((image, _recipe),) = list(reference.generate(tiny_request(tiny_model_dir, prepared=True, steps=4),
                                                  DirectContext()))
    assert np.array_equal(plain, np.asarray(image, np.int16))  # bit for bit what the float32 path makes
    monkeypatch.delenv(ENV)
    del loads[2:]  # the reference generator's own load

    # bfloat16 keeps 8 bits of mantissa: about a grey level apart on average, here as with a GPU's float16.
    difference = np.abs(fast - plain)
    assert 0 < difference.mean() <= 1.5 and difference.max() <= 16, (difference.mean(), difference.max())
    assert np.array_equal(make("fast"), fast) and len(loads) == 2  # back to bfloat16: kept, nothing read
    assert generator._model.text2img is pipe


def test_the_bench_gives_studio_its_bfloat16_copy_and_says_the_precisions_differ(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "bfloat16")
    result = bench.run_bench(bench.BenchConfig(runs=1), tmp_path, say=lambda _text: None)
    assert (result["plain_dtype"], result["studio_dtype"]) == ("float32", "bfloat16")
    same = result["same_seed_difference"]
    assert same["within_tolerance"] is None and 0 < same["mean"] <= 1.5
    text = report(result)
    assert "Precision: plain diffusers float32, Studio bfloat16" in text
    assert "float32 against bfloat16 is a change of precision" in text
    assert "Fast path: bfloat16 with channels-last weights" in text

    result = bench.run_bench(bench.BenchConfig(runs=1, plain_dtype="bfloat16"), tmp_path, say=lambda _text: None)
    assert (result["plain_dtype"], result["studio_dtype"]) == ("bfloat16", "bfloat16")
    # Plain diffusers' copy is not laid out; channels-last convolutions round in another order, which bfloat16's
    # 8-bit mantissa shows about as much as the change from float32 does.
    same = result["same_seed_difference"]
    assert not same["identical"] and 0 < same["mean"] <= 1.5 and same["within_tolerance"] is not None


def test_the_bench_refuses_an_unknown_precision(tmp_path):
    with pytest.raises(Exception, match="Unknown precision 'float8'"):
        bench.run_bench(bench.BenchConfig(plain_dtype="float8"), tmp_path, say=lambda _text: None)


def test_lay_out_for_cpu_leaves_float32_and_other_devices_alone(tiny_model_dir):
    from studio.engine.loader import load_model

    cpu = select_device("cpu")
    model = load_model(Path(tiny_model_dir), cpu)
    cpu_precision.lay_out_for_cpu(model.text2img, cpu)
    assert not channels_last(model.text2img.unet)
    model.text2img.to(torch.bfloat16)
    cpu_precision.lay_out_for_cpu(model.text2img, DeviceInfo("mps", torch.device("cpu"), torch.bfloat16, "MPS"))
    assert not channels_last(model.text2img.unet)
    cpu_precision.lay_out_for_cpu(model.text2img, job_device(cpu, True, {ENV: "bfloat16"}))
    assert channels_last(model.text2img.unet) and channels_last(model.text2img.vae)


@pytest.mark.parametrize("scheduler", ["Euler a", "DPM++ 2M Karras", "DPM++ 2M SDE Karras", "DDIM", "UniPC", "Heun"])
def test_every_sampler_runs_in_bfloat16_near_its_float32_picture(tmp_path, monkeypatch, tiny_model_dir, scheduler):
    pictures = []
    for dtype in ("float32", "bfloat16"):
        monkeypatch.setenv(ENV, dtype)
        generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / dtype))
        request = tiny_request(tiny_model_dir, prepared=True, scheduler=scheduler, steps=4)
        ((image, recipe),) = list(generator.generate(request, DirectContext()))
        assert recipe.sampler == scheduler and generator._model.text2img.unet.dtype == getattr(torch, dtype)
        pictures.append(np.asarray(image, np.int16))
    difference = np.abs(pictures[0] - pictures[1])
    assert 0 < difference.mean() <= 1.5 and difference.max() <= 16, (difference.mean(), difference.max())


def test_the_status_bar_names_the_precision_from_the_start(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.delenv(ENV)
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    statuses: list[dict] = []
    generator.warm_up(lambda **kwargs: statuses.append(kwargs))
    assert statuses[-1]["device"].endswith("· bfloat16")  # as a job with the default Speed setting runs
    missing = tiny_request(tmp_path / "no-such-model", speed="eager")
    generator.preload(missing, lambda **kwargs: statuses.append(kwargs))  # Plain diffusers chosen, no model yet
    assert statuses[-1] == generator.device.status_fields and generator.device.dtype == torch.float32
    generator.preload(tiny_request(tiny_model_dir), lambda **kwargs: statuses.append(kwargs))
    assert statuses[-1]["device"].endswith("· bfloat16") and generator._model.text2img.unet.dtype == torch.bfloat16



def test_a_cpu_bench_that_would_not_fit_in_memory_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "bfloat16")
    built: list[tuple[str, torch.dtype]] = []
    real_build = bench_pipelines.build_pipeline

    def build(family, tiny, device, cache):  # noqa: ANN001, ANN202
        built.append((device.kind, device.dtype))
        return real_build(family, tiny, device, cache)

    for module in (bench, bench_pipelines):  # the bench's builds, and the memory check's on the meta device
        monkeypatch.setattr(module, "build_pipeline", build)
    monkeypatch.setattr(bench_pipelines, "available_ram", lambda: (3 * GIB, 8 * GIB))  # SD 1.5: 1.07 G numbers
    with pytest.raises(Exception, match=r"^Timing the full-size sd15 on the CPU needs about \d+\.\d GB of memory "
                                        r"\(plain diffusers' float32 copy and Studio's bfloat16 one\), and 3\.0 GB "
                                        r"is free\. Run it with --tiny, or with STUDIO_CPU_DTYPE=float32 "):
        bench.run_bench(bench.BenchConfig(size=64, steps=1, runs=1), tmp_path, say=lambda _text: None)
    assert built == [("meta", torch.float32)]  # counted on the meta device; nothing was made

    # SDXL (3.5 G numbers): float32 12.9 GB + bfloat16 6.5 GB + 1 GB fits in 21 GB only because Studio's copy
    # is converted before plain diffusers' exists (its float32 UNet, 10.3 GB, would be there too).
    for free, fits in ((21 * GIB, True), (20 * GIB, False)):
        monkeypatch.setattr(bench_pipelines, "available_ram", lambda free=free: (free, 24 * GIB))
        try:
            bench_pipelines.check_memory("sdxl", False, tmp_path, torch.float32, torch.bfloat16)
        except InvalidRequest:
            assert not fits
        else:
            assert fits

    built.clear()
    bench.run_bench(bench.BenchConfig(runs=1), tmp_path, say=lambda _text: None)  # tiny: nothing to check
    assert built == [("cpu", torch.bfloat16), ("cpu", torch.float32)]  # Studio's copy first


def test_a_rerun_computes_in_its_recorded_precision_where_the_processor_can(monkeypatch):
    cpu = select_device("cpu")
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: True)
    assert job_device(cpu, False, {}, precision="bfloat16").dtype == torch.bfloat16  # Plain diffusers chosen now
    assert job_device(cpu, True, {}, precision="float32").dtype == torch.float32  # Speed fast chosen now
    assert job_device(cpu, True, {ENV: "float32"}, precision="bfloat16").dtype == torch.float32  # the override wins
    assert job_device(cpu, True, {}, precision="float16").dtype == torch.bfloat16  # a GPU's: Speed decides
    monkeypatch.setattr(cpu_precision, "cpu_computes_bfloat16", lambda: False)  # emulated: many times slower
    assert job_device(cpu, False, {}, precision="bfloat16").dtype == torch.float32
    cuda = DeviceInfo("cuda", torch.device("cuda", 0), torch.float16, "CUDA")
    assert job_device(cuda, True, {}, precision="float32") is cuda
