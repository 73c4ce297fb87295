"""Choosing memory measures from the setting and an estimate, and applying them to a real pipeline."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from studio.engine.device import DeviceInfo, select_device
from studio.engine.loader import load_model
from studio.engine.memory import (
    GIB,
    OFFLOAD,
    SLICING,
    TILING,
    apply_plan,
    borrowed_weights,
    job_bytes,
    model_bytes,
    oom_advice,
    own_weights,
    plan_memory,
    resident_bytes,
)

CUDA = DeviceInfo("cuda", torch.device("cpu"), torch.float16, "pretend CUDA")  # planning only reads .kind
SDXL_WEIGHTS = int(6.5 * GIB)


def test_the_cpu_needs_no_measures_and_says_so():
    plan = plan_memory("low", select_device("cpu"), GIB, GIB, None)
    assert plan.measures == () and "CPU" in plan.reason


def test_auto_keeps_everything_on_a_big_gpu():
    plan = plan_memory("auto", CUDA, SDXL_WEIGHTS, job_bytes(1024, 1024, 2), 70 * GIB)
    assert plan.measures == ()
    assert "fits" in plan.reason and "70.0 GB free" in plan.reason


def test_auto_tiles_when_the_model_fits_but_the_job_does_not():
    activations = job_bytes(2048, 2048, 2)
    plan = plan_memory("auto", CUDA, SDXL_WEIGHTS, activations, 10 * GIB)
    assert plan.measures == (SLICING, TILING) and not plan.offload
    assert "this job's size does not" in plan.reason


def test_auto_offloads_when_the_model_itself_does_not_fit_a_6gb_laptop():
    plan = plan_memory("auto", CUDA, SDXL_WEIGHTS, job_bytes(1024, 1024, 2), 6 * GIB)
    assert plan.offload and TILING in plan.measures
    assert "does not fit" in plan.reason and "6.0 GB free" in plan.reason


def test_low_and_high_are_what_the_person_chose():
    low = plan_memory("low", CUDA, GIB, GIB, 80 * GIB)
    assert low.measures == (SLICING, TILING, OFFLOAD)
    high = plan_memory("high", CUDA, SDXL_WEIGHTS, GIB, 2 * GIB)
    assert high.measures == () and "may not fit" in high.reason and "Low VRAM" in high.reason


def test_estimates_grow_with_size():
    assert job_bytes(1024, 1024, 2) > job_bytes(512, 512, 2)
    assert job_bytes(512, 512, 4) == 2 * job_bytes(512, 512, 2)


def test_a_new_capture_s_graph_pool_is_counted_beside_the_decode():
    """A captured step's activations stay in its graphs' pool, kept for the next job, through the VAE decode after
    the steps: a job that captures at a new size needs the decode's room beside what the pool grows by."""
    unet, decode = 2 * 128 * 128 * 320 * 40 * 2, 1024 * 1024 * 128 * 6 * 2  # SDXL at 1024x1024 in float16
    assert job_bytes(1024, 1024, 2) == max(unet, decode)  # no capture
    assert job_bytes(1024, 1024, 2, graph_pools_free=0) == unet + decode  # the first capture: a new pool
    assert job_bytes(1024, 1024, 2, graph_pools_free=unet // 4) == unet - unet // 4 + decode  # a pool grown
    assert job_bytes(1024, 1024, 2, graph_pools_free=unet) == max(unet, decode)  # room in the pool
    assert job_bytes(1024, 1024, 2, 4, graph_pools_free=0) == unet + 2 * decode  # a float32 decode


def test_a_job_s_plan_counts_the_pool_its_new_capture_keeps_through_the_decode(tiny_model_dir, tmp_path,
                                                                               monkeypatch):
    """The first job of a model captures its UNet step, and the graph's pool keeps the step's activations while the
    VAE decodes (the graph is kept for the next job): its plan counts both. A job at a size captured before replays in
    the pool, counted out of the free memory; one at a new size (a hires fix's second pass) grows the pool past its
    free room; a job without captured steps counts neither. A pretend GPU whose captures are stood in for."""
    from studio_testing import DirectContext, ReplayOnCpu, tiny_request

    from studio.core.environment import GeneratorEnvironment
    from studio.engine import diffusion, fast_path
    from studio.engine.diffusion import DiffusersGenerator

    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    monkeypatch.setattr(diffusion, "job_device", lambda device, fast, precision="": pretend_gpu)
    monkeypatch.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    pool: list[dict] = []  # the graphs' pool as PyTorch's snapshot lists it: none before the first capture
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: sum(s["total_size"] for s in pool))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: sum(s["allocated_size"] for s in pool))
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: pool)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 6))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))

    def planned(**changes) -> int:
        list(generator.generate(tiny_request(tiny_model_dir, prepared=True, **changes), DirectContext()))
        return generator._plan.job_bytes

    assert planned() == job_bytes(64, 64, 4, graph_pools_free=0) > job_bytes(64, 64, 4)
    unet = 2 * 8 * 8 * 320 * 40 * 4  # the captured step's activations, in its pool
    pool.append({"device": 0, "segment_pool_id": (1, 0), "total_size": unet + 4096, "allocated_size": 4096})
    assert planned() == job_bytes(64, 64, 4)  # replayed in the pool
    assert planned(batch_count=3) == job_bytes(64, 64, 4)  # made one at a time: no more than one picture
    assert planned(cfg_scale=1.0) == job_bytes(64, 64, 4)  # fewer rows: captured again in the pool's room
    assert planned(width=128, height=128) == job_bytes(128, 128, 4, graph_pools_free=unet)
    assert planned(width=192, height=192, speed="eager") == job_bytes(192, 192, 4)  # no captured step


def test_measures_are_applied_to_a_real_pipeline_and_taken_off_again(tiny_model_dir):
    cpu = select_device("cpu")
    pipe = load_model(tiny_model_dir, cpu).text2img
    assert model_bytes(pipe) == sum(p.numel() * 4 for m in (pipe.unet, pipe.vae, pipe.text_encoder)
                                    for p in m.parameters())
    tiled = plan_memory("auto", CUDA, 10 * GIB, 10 * GIB, 15 * GIB)
    assert tiled.measures == (SLICING, TILING)
    assert apply_plan(pipe, tiled, cpu, offloaded=False) == (False, True)  # not offloaded, sliced
    assert pipe.vae.use_tiling
    processors = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert any("Sliced" in name for name in processors)
    assert apply_plan(pipe, plan_memory("high", CUDA, GIB, GIB, 80 * GIB), cpu, offloaded=False,
                      sliced=True) == (False, False)
    assert not pipe.vae.use_tiling
    assert not any("Sliced" in type(p).__name__ for p in pipe.unet.attn_processors.values())


def test_oom_advice_says_what_to_change_next():
    assert "Low VRAM" in oom_advice(None, 1024, 1024)
    low = plan_memory("low", CUDA, GIB, GIB, GIB)
    advice = oom_advice(low, 1024, 1024)
    assert "768x768" in advice and "batch" not in advice  # a batch's pictures are made one at a time


def test_a_part_left_elsewhere_is_brought_back_and_slicing_is_only_switched_when_it_changes(tiny_model_dir,
                                                                                          monkeypatch):
    cpu = select_device("cpu")
    pipe = load_model(tiny_model_dir, cpu).text2img
    pipe.vae.to("meta")  # a part put back after an override job, on another device than the rest
    high = plan_memory("high", CUDA, GIB, GIB, 80 * GIB)
    moved = []
    monkeypatch.setattr(type(pipe), "to", lambda self, *a, **k: moved.append(a))
    switched = []
    monkeypatch.setattr(type(pipe), "disable_attention_slicing", lambda self: switched.append("off"))
    apply_plan(pipe, high, cpu, offloaded=False, sliced=True)
    assert moved and switched == ["off"]
    pipe.vae.to_empty(device="cpu")
    moved.clear()
    apply_plan(pipe, high, cpu, offloaded=False, sliced=False)
    assert moved == [] and switched == ["off"]  # already in place, already unsliced: nothing walked


def test_only_the_weights_already_on_the_device_count_as_resident(tiny_model_dir):
    pipe = load_model(tiny_model_dir, select_device("cpu")).text2img
    assert resident_bytes(pipe, CUDA) == model_bytes(pipe) > 0  # CUDA's torch device here: where the pipe is
    pipe.vae.to("meta")
    assert resident_bytes(pipe, CUDA) == model_bytes(pipe) - sum(p.numel() * 4 for p in pipe.vae.parameters())
    assert resident_bytes(pipe, DeviceInfo("cuda", torch.device("meta"), torch.float16, "elsewhere")) == \
        sum(p.numel() * 4 for p in pipe.vae.parameters())


def test_a_model_on_the_gpu_from_its_last_job_is_not_counted_twice_against_the_free_memory(tiny_model_dir, tmp_path,
                                                                                           monkeypatch):
    """From a model's second job its weights are on the GPU: out of the free memory measured, and in the weights the
    plan counts. Counted twice, a model that fits was sliced, tiled or offloaded from its second job on (a 4 GB
    GPU ran SD 1.5 offloaded). A pretend GPU whose free memory is what its capacity leaves beside the model."""
    from studio_testing import DirectContext, tiny_request

    from studio.core.environment import GeneratorEnvironment
    from studio.engine import job_memory
    from studio.engine.diffusion import DiffusersGenerator
    from studio.engine.memory import HEADROOM

    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    capacity = {"bytes": 2**40}
    monkeypatch.setattr(job_memory, "free_vram",
                        lambda device, *_: capacity["bytes"] - model_bytes(generator._model.text2img))
    monkeypatch.setattr(job_memory, "plan_memory", lambda mode, device, *sizes: plan_memory(mode, CUDA, *sizes))
    request = tiny_request(tiny_model_dir, prepared=True)
    list(generator.generate(request, DirectContext()))  # loaded, and left on the device
    weights = generator._plan.model_bytes
    capacity["bytes"] = int((weights + job_bytes(64, 64, 4)) * HEADROOM) + 1  # just enough for the job
    list(generator.generate(request, DirectContext()))
    assert generator._plan.measures == () and "Everything fits" in generator._plan.reason


def test_the_free_vram_leaves_out_the_graphs_pools_free_blocks(monkeypatch):
    """The captured graphs' pools keep a step's temporaries, written at every replay: their free blocks are no one
    else's. The allocator's other free blocks, and what the driver has, are free."""
    from studio.engine.memory import free_vram

    gib = GIB
    segments = [  # the default pool (0, 0): 3 GiB, 2 allocated; a graph pool: 2 GiB, 0.5 allocated (its outputs)
        {"device": 0, "segment_pool_id": (0, 0), "total_size": 3 * gib, "allocated_size": 2 * gib},
        {"device": 0, "segment_pool_id": (1, 0), "total_size": 2 * gib, "allocated_size": gib // 2},
        {"device": 1, "segment_pool_id": (2, 0), "total_size": 4 * gib, "allocated_size": 0},  # another GPU's
    ]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (10 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 5 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 5 * gib // 2)
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: segments)
    gpu = DeviceInfo("cuda", torch.device("cuda", 0), torch.float16, "pretend CUDA")
    assert free_vram(gpu) == 10 * gib + gib  # the driver's 10 GiB, and the default pool's free 1 GiB


def test_a_job_s_plan_reads_the_graphs_pools_once_however_often_it_is_made_again(tiny_model_dir, tmp_path,
                                                                               monkeypatch):
    """PyTorch's memory snapshot walks every segment of the allocator. A job's plan is made again after each thing it
    lets go (a depth model, ControlNets, each kept model: none holds a captured graph), but the graphs' pools are read
    once; the next job reads them again. A pretend GPU (its torch calls stood in for) that never has room."""
    from types import SimpleNamespace

    from studio_testing import DirectContext, tiny_request

    from studio.core.environment import GeneratorEnvironment
    from studio.engine import depth_maps, diffusion
    from studio.engine.control_nets import ControlNets
    from studio.engine.diffusion import DiffusersGenerator
    from studio.engine.model_keeping import KeptModels

    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    monkeypatch.setattr(diffusion, "job_device", lambda device, fast, precision="": pretend_gpu)
    plans, snapshots = [], []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: plans.append(1) or (0, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: snapshots.append(1) or [])
    let_go = {"depth": [True], "controls": [True], "kept": [SimpleNamespace(name="Kept 1"),
                                                            SimpleNamespace(name="Kept 2")]}
    monkeypatch.setattr(depth_maps, "let_gpu_copies_go", lambda: bool(let_go["depth"]) and let_go["depth"].pop())
    monkeypatch.setattr(ControlNets, "let_unused_go", lambda self, pipe: bool(let_go["controls"]) and
                        let_go["controls"].pop())
    monkeypatch.setattr(KeptModels, "let_oldest_on_gpu_go", lambda self: let_go["kept"].pop(0) if let_go["kept"]
                        else None)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    request = replace(tiny_request(tiny_model_dir, prepared=True), memory="high", speed="eager")
    context = DirectContext()
    list(generator.generate(request, context))
    assert len(plans) == 5 and len(snapshots) == 1  # first, after the depth model, the ControlNets, each kept model
    assert sum("let go to make room" in note for note in context.notes) == 4
    list(generator.generate(request, DirectContext()))
    assert len(plans) == 6 and len(snapshots) == 2  # not kept from the job before


def test_an_sdxl_decode_upcast_to_float32_is_planned_at_float32_s_size(tiny_model_dir, tmp_path, monkeypatch):
    """SDXL's VAE overflows in float16, so its pipelines decode in float32 (twice float16's activations), or in
    bfloat16 from the fast path's copy on a GPU that has it: the plan's decode estimate is in that precision. A
    pretend float16 GPU without fast bfloat16 (a Turing card: no copy) plans a job of the tiny SDXL model."""
    from studio_testing import DirectContext, tiny_request
    from tiny_models import build_tiny_sdxl

    from studio.core.environment import GeneratorEnvironment
    from studio.engine.diffusion import DiffusersGenerator
    from studio.engine.memory import decode_element_size

    turing = DeviceInfo("cuda", torch.device("cpu"), torch.float16, "pretend Turing GPU")
    folder = build_tiny_sdxl(tmp_path / "tiny-xl")
    model = load_model(folder, turing, place=False)
    pipe = model.text2img
    assert pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast
    assert decode_element_size(pipe, turing) == 4
    assert decode_element_size(pipe, turing, bfloat16_copy=True) == 2
    pipe.vae.register_to_config(force_upcast=False)  # a VAE made for float16 (as sdxl-vae-fp16-fix is)
    assert decode_element_size(pipe, turing) == 2
    pipe.vae.register_to_config(force_upcast=True)
    sd = load_model(tiny_model_dir, turing, place=False).text2img
    assert decode_element_size(sd, turing) == 2  # SD 1.5's pipelines decode in the VAE's precision

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (7, 5))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: [])
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    generator._in_use = turing
    generator._fit_memory(tiny_request(folder, prepared=True), model, pipe, {}, DirectContext())
    # Beside the pool its first capture keeps (test_a_job_s_plan_counts_the_pool_its_new_capture_keeps_through_...).
    assert generator._plan.job_bytes == job_bytes(64, 64, 2, 4, graph_pools_free=0) > \
        job_bytes(64, 64, 2, graph_pools_free=0)


def test_an_sdxl_job_that_runs_without_the_fast_path_is_planned_with_no_copy_and_a_float32_decode(tmp_path,
                                                                                                  monkeypatch):
    """On a GPU with bfloat16 the fast path decodes SDXL from a bfloat16 copy of its VAE. A job it cannot take (LoRA
    layers a plugin left attached, cross-attention options, the Speed setting) runs plain diffusers, which makes no
    copy and decodes in float32: the plan counts neither the copy nor a bfloat16 decode (at 1024x1024 that planned
    about 1.6 GB for a 3.2 GB decode). A pretend Ampere GPU plans jobs of the tiny SDXL model in float16."""
    from peft import LoraConfig
    from studio_testing import DirectContext, tiny_request
    from tiny_models import build_tiny_sdxl

    from studio.core.environment import GeneratorEnvironment
    from studio.engine.diffusion import DiffusersGenerator

    ampere = DeviceInfo("cuda", torch.device("cpu"), torch.float16, "pretend Ampere GPU")
    model = load_model(build_tiny_sdxl(tmp_path / "tiny-xl"), ampere, place=False)
    pipe = model.text2img
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 6))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: [])
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))
    generator._in_use = ampere
    request = tiny_request(tmp_path / "tiny-xl", prepared=True)
    copy_bytes = sum(p.numel() * 2 for p in pipe.vae.parameters())

    def planned(call_kwargs: dict, **changes) -> tuple[int, int]:
        generator._fit_memory(replace(request, **changes), model, pipe, call_kwargs, DirectContext())
        return generator._plan.model_bytes, generator._plan.job_bytes

    float32_decode = job_bytes(64, 64, 2, 4)
    fast_decode = job_bytes(64, 64, 2, 2, graph_pools_free=0)  # beside its first capture's graph pool
    assert planned({}) == (model_bytes(pipe) + copy_bytes, fast_decode)
    assert planned({"cross_attention_kwargs": {"scale": 0.5}}) == (model_bytes(pipe), float32_decode)
    assert planned({}, speed="eager") == (model_bytes(pipe), float32_decode)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"]))
    assert planned({}) == (model_bytes(pipe), float32_decode)


def test_an_sdxl_vae_upcast_for_a_decode_that_fails_is_put_back_in_its_own_precision(tmp_path):
    """SDXL's pipeline upcasts its float16 VAE to float32 for the decode and casts it back after; a decode that ran
    out of memory skipped the cast back, and the fast path's retry and every later job of the model had the VAE in
    float32 (twice its weights). The real pipeline, loaded in float16 on the CPU, its decode standing in for one that
    runs out of memory."""
    from tiny_models import build_tiny_sdxl

    from studio.engine.device import DeviceInfo
    from studio.engine.loader import load_model
    from studio.engine.memory import vae_precision_kept

    half = DeviceInfo("cpu", torch.device("cpu"), torch.float16, "CPU in float16")
    pipe = load_model(build_tiny_sdxl(tmp_path / "tiny-xl"), half, place=False).text2img
    seen = []

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(pipe.vae.dtype)
        raise torch.OutOfMemoryError("CUDA out of memory (a stand-in)")

    pipe.vae.decode = out_of_memory
    with pytest.raises(torch.OutOfMemoryError), torch.inference_mode(), vae_precision_kept(pipe):
        pipe(prompt="a fox", num_inference_steps=1, height=64, width=64, guidance_scale=1.0)
    assert seen == [torch.float32]  # diffusers upcast it for the decode
    assert pipe.vae.dtype == torch.float16 and all(p.dtype == torch.float16 for p in pipe.vae.parameters())


def test_weights_still_pages_of_their_file_are_found_and_copied_out_of_it(tmp_path):
    """safetensors maps the file: its tensors are its pages, which a file cut short in place takes away."""
    from types import SimpleNamespace

    from safetensors.torch import load_file, save_file

    save_file({"weight": torch.arange(12.0).reshape(3, 4), "bias": torch.ones(3)}, tmp_path / "part.safetensors")
    mapped = load_file(tmp_path / "part.safetensors")
    layer = torch.nn.Linear(4, 3)
    layer.weight, layer.bias = torch.nn.Parameter(mapped["weight"]), torch.nn.Parameter(mapped["bias"])
    layer.register_buffer("own", torch.zeros(2))  # allocated by torch: no file's pages
    pipe = SimpleNamespace(components={"unet": layer, "scheduler": object(), "tokenizer": None})

    assert {id(t) for t in borrowed_weights(pipe)} == {id(layer.weight), id(layer.bias)}
    assert own_weights(pipe) == (12 + 3) * 4
    assert list(borrowed_weights(pipe)) == list(borrowed_weights(layer)) == [] and own_weights(layer) == 0
    assert torch.equal(layer.weight, torch.arange(12.0).reshape(3, 4))  # the same numbers, in memory of its own
