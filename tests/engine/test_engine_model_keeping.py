"""Switching models: the models before stay loaded for switching back, unless keeping them would cost something.

Tiny SD pipelines (three different random weights), loaded through Studio's loader, on the CPU; where the GPU's
memory plan decides, the plan is stood in for.
"""

from __future__ import annotations

import gc
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from studio_testing import DirectContext, tiny_request
from tiny_models import build_tiny_sd

import studio.engine.batch_run as batch_run
import studio.engine.diffusion as diffusion
import studio.engine.job_memory as job_memory
from studio.core.environment import GeneratorEnvironment
from studio.core.requests import GenerationRequest, LoraChoice
from studio.engine import fast_path_state, model_keeping
from studio.engine.device import release_spare_memory, select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.memory import GIB, SLICING, MemoryPlan, model_bytes
from studio.engine.model_keeping import KEEP_AT_MOST, KeptModels, numbers_in_model, system_memory_short

PLENTY = (64 * GIB, 128 * GIB)  # (available, total) system memory


@pytest.fixture(scope="module")
def other_models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("other-models")
    return build_tiny_sd(folder / "tiny-b", seed=1), build_tiny_sd(folder / "tiny-c", seed=2)


@pytest.fixture
def generator(tmp_path, monkeypatch) -> DiffusersGenerator:
    monkeypatch.setattr(model_keeping, "available_ram", lambda: PLENTY)
    return DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=True, **kwargs)


def make(generator: DiffusersGenerator, model: Path, context: DirectContext | None = None) -> np.ndarray:
    ((image, recipe),) = list(generator.generate(request(model), context or DirectContext()))
    assert recipe.model_name == model.name
    return np.asarray(image, dtype=np.int16)


def gone(reference: weakref.ref) -> bool:
    gc.collect()
    return reference() is None


def kept(generator: DiffusersGenerator) -> list[str]:
    """The models kept for switching back, most recent first, by folder name."""
    return [model.path.name for model in generator._kept.models]


def on_gpu(monkeypatch) -> None:  # noqa: ANN001
    """Every model as if placed on a CUDA GPU, in its own memory."""
    monkeypatch.setattr(diffusion, "in_system_memory", lambda model: False)
    monkeypatch.setattr(model_keeping, "in_system_memory", lambda model: False)


def test_switching_back_reads_nothing_and_makes_the_same_picture_and_a_third_model_lets_the_older_go(
        generator, loads, tiny_model_dir, other_models):
    generator._kept = KeptModels(at_most=1)
    b_dir, c_dir = other_models
    a = make(generator, tiny_model_dir)
    a_model = generator._model
    b = make(generator, b_dir)
    assert generator._kept.models[0] is a_model and not np.array_equal(a, b)

    context = DirectContext()
    again = make(generator, tiny_model_dir, context)  # back: kept, so nothing is read
    assert np.array_equal(again, a)
    assert loads == ["tiny-sd", "tiny-b"] and generator._model is a_model
    assert {"model": "tiny-sd", **generator.device.status_fields, "message": ""} in context.statuses
    assert np.array_equal(make(generator, b_dir), b) and loads == ["tiny-sd", "tiny-b"]  # and forth

    b_model, a_pipe = generator._model, weakref.ref(a_model.text2img)
    del a_model
    make(generator, c_dir)  # a third: the one before it (B) is kept, the one kept before (A) goes
    assert loads == ["tiny-sd", "tiny-b", "tiny-c"]
    assert generator._kept.models[0] is b_model and len(generator._kept) == 1 and gone(a_pipe)


def test_going_round_three_models_reads_each_once_and_keeps_the_most_recent_first(
        generator, loads, tiny_model_dir, other_models):
    assert KEEP_AT_MOST >= 2
    b_dir, c_dir = other_models
    first = {path.name: make(generator, path) for path in (tiny_model_dir, b_dir, c_dir)}
    assert kept(generator) == ["tiny-b", "tiny-sd"]
    for path in (tiny_model_dir, b_dir, c_dir, b_dir, tiny_model_dir):
        assert np.array_equal(make(generator, path), first[path.name])
    assert loads == ["tiny-sd", "tiny-b", "tiny-c"]
    assert generator._model.path.name == "tiny-sd" and kept(generator) == ["tiny-b", "tiny-c"]


def test_a_model_is_not_kept_when_the_next_would_leave_too_little_system_memory(
        generator, loads, tiny_model_dir, other_models, monkeypatch):
    make(generator, tiny_model_dir)
    a_pipe = weakref.ref(generator._model.text2img)
    monkeypatch.setattr(model_keeping, "available_ram", lambda: (int(2.5 * GIB), 16 * GIB))  # reserve: 3.2 GB
    make(generator, other_models[0])
    assert len(generator._kept) == 0 and gone(a_pipe)
    make(generator, tiny_model_dir)
    assert loads == ["tiny-sd", "tiny-b", "tiny-sd"]


def test_short_of_system_memory_the_oldest_kept_model_goes_first(
        generator, loads, tiny_model_dir, other_models, monkeypatch):
    b_dir, c_dir = other_models
    make(generator, tiny_model_dir)
    a_pipe = weakref.ref(generator._model.text2img)
    make(generator, b_dir)
    one_model = model_bytes(generator._model.text2img)
    # Loading C leaves the reserve free once one model's room is handed back, not before.
    need = numbers_in_model(c_dir) * 4
    monkeypatch.setattr(model_keeping, "available_ram", lambda: (16 * GIB + need - one_model, 80 * GIB))
    make(generator, c_dir)
    assert kept(generator) == ["tiny-b"] and gone(a_pipe)  # A was kept longest: it went
    assert loads == ["tiny-sd", "tiny-b", "tiny-c"]


def test_what_keeping_weighs(tiny_model_dir, other_models):
    cpu = select_device("cpu")
    model = load_model(tiny_model_dir, cpu)
    # The next model's numbers, from its files' headers, in the device's precision: what loading it takes.
    assert numbers_in_model(tiny_model_dir) * 4 == model_bytes(model.text2img)
    need = numbers_in_model(other_models[0]) * 4
    reserve = math.ceil(0.2 * 64 * GIB)
    assert system_memory_short(other_models[0], cpu, lambda: (reserve + need, 64 * GIB)) <= 0
    assert system_memory_short(other_models[0], cpu, lambda: (reserve + need - 1, 64 * GIB)) > 0
    assert system_memory_short(other_models[0], cpu, lambda: (2 * GIB + need - 1, 8 * GIB)) > 0  # 2 GB at least
    models = KeptModels(at_most=2)
    assert models.keep(model) == [] and models.make_room(other_models[0], cpu, lambda: PLENTY) == []
    assert models.make_room(other_models[0], cpu, lambda: (reserve + need - 1, 64 * GIB)) == [model]
    assert models.keep(model) == []
    assert models.take(tiny_model_dir, (), cpu) == (None, [model], None)  # its files changed since: it goes
    model.offloaded = True  # Low VRAM: its weights are in system memory with hooks; never kept
    assert models.keep(model) == [model] and len(models) == 0


def test_on_a_gpu_the_kept_model_goes_before_the_memory_plan_takes_any_measure(
        generator, tiny_model_dir, other_models, monkeypatch):
    """On a CUDA GPU the kept model is in VRAM: a job that would need a measure beside it gets the room instead."""
    on_gpu(monkeypatch)
    crowded: list[bool] = []

    def plan_beside_the_kept_model(mode, device, weights, activations, free):  # noqa: ANN001, ANN202
        crowded.append(len(generator._kept) > 0 and needs_room)
        measures = (SLICING,) if crowded[-1] else ()
        return MemoryPlan(measures, "crowded" if measures else "room enough", weights, activations, free)

    monkeypatch.setattr(job_memory, "plan_memory", plan_beside_the_kept_model)
    needs_room = False
    make(generator, tiny_model_dir)
    graphs = fast_path_state.state_for(generator._model.text2img.unet).cache
    graphs.put("a captured step", object())
    make(generator, other_models[0])
    assert len(graphs) == 0  # kept aside on the GPU: its graphs' memory pool goes (the plan would count it free)
    context = DirectContext()
    make(generator, tiny_model_dir, context)  # fits beside it: kept
    assert crowded == [False, False, False] and kept(generator) == ["tiny-b"]
    assert not any("let go" in note for note in context.notes)

    needs_room = True
    kept_pipe = weakref.ref(generator._kept.models[0].text2img)
    context = DirectContext()
    make(generator, tiny_model_dir, context)
    assert crowded[3:] == [True, False]  # planned again without it: no measure
    assert len(generator._kept) == 0 and gone(kept_pipe)
    assert "tiny-b, kept loaded for switching back, was let go to make room on the GPU." in context.notes


def test_on_a_gpu_the_oldest_kept_model_goes_first_and_only_as_many_as_the_job_needs_room_for(
        generator, tiny_model_dir, other_models, monkeypatch):
    on_gpu(monkeypatch)
    room = {"kept": 2}  # how many kept models fit beside a job without a measure

    def plan(mode, device, weights, activations, free):  # noqa: ANN001, ANN202
        measures = (SLICING,) if len(generator._kept) > room["kept"] else ()
        return MemoryPlan(measures, "crowded" if measures else "room enough", weights, activations, free)

    monkeypatch.setattr(job_memory, "plan_memory", plan)
    b_dir, c_dir = other_models
    for path in (tiny_model_dir, b_dir, c_dir):
        make(generator, path)
    assert kept(generator) == ["tiny-b", "tiny-sd"]
    room["kept"] = 1
    context = DirectContext()
    make(generator, c_dir, context)
    assert kept(generator) == ["tiny-b"] and generator._plan.reason == "room enough"
    assert [note for note in context.notes if "let go" in note] == [
        "tiny-sd, kept loaded for switching back, was let go to make room on the GPU."]


def test_running_out_of_memory_lets_the_kept_model_go_too(generator, tiny_model_dir, other_models, monkeypatch):
    make(generator, tiny_model_dir)
    make(generator, other_models[0])
    kept_pipe = weakref.ref(generator._kept.models[0].text2img)

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(batch_run, "latents_to_preview", out_of_memory)
    with pytest.raises(Exception, match="ran out of memory"):
        make(generator, other_models[0])
    assert len(generator._kept) == 0 and generator._model is None and gone(kept_pipe)


def test_running_out_of_memory_lets_the_model_in_use_go_before_the_memory_is_handed_back(generator, tiny_model_dir,
                                                                                         monkeypatch):
    """The cache is emptied after the job's model is collected, so its GPU memory goes back to the driver."""
    make(generator, tiny_model_dir)
    in_use = weakref.ref(generator._model.text2img.unet)
    gone_when_freed: list[bool] = []
    real_free_memory = diffusion.free_memory

    def free_memory(device) -> None:  # noqa: ANN001
        gone_when_freed.append(gone(in_use))
        real_free_memory(device)

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(diffusion, "free_memory", free_memory)
    monkeypatch.setattr(batch_run, "latents_to_preview", out_of_memory)
    with pytest.raises(Exception, match="ran out of memory"):
        make(generator, tiny_model_dir)
    assert gone_when_freed == [True]


def test_a_kept_model_keeps_its_merged_lora_and_puts_its_own_weights_back_when_asked(
        tmp_path, tiny_model_dir, other_models, monkeypatch):
    """LoRAs are merged into a model's weights in place; keeping the model keeps that state, and the jobs after
    a switch back start from it as from any job before: the same LoRA again merges nothing, none restores."""
    from tiny_loras import lora_state, save_lora, tiny_unet

    models = tmp_path / "models"
    save_lora(lora_state(tiny_unet(tiny_model_dir)), models / "loras" / "detail.safetensors")
    monkeypatch.setattr(model_keeping, "available_ram", lambda: PLENTY)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))
    detail = (LoraChoice("detail", 1.0),)

    def picture(model: Path, loras: tuple = ()) -> np.ndarray:  # noqa: ANN001
        ((image, _recipe),) = list(generator.generate(request(model, loras=loras), DirectContext()))
        return np.asarray(image, dtype=np.int16)

    plain = picture(tiny_model_dir)
    with_lora = picture(tiny_model_dir, detail)
    assert not np.array_equal(plain, with_lora)
    picture(other_models[0])
    merges: list[int] = []
    kept_pipe = generator._kept.models[0].text2img
    real_merge = kept_pipe.fuse_lora
    monkeypatch.setattr(kept_pipe, "fuse_lora", lambda *args, **kwargs: merges.append(1) or real_merge(*args, **kwargs))
    assert np.array_equal(picture(tiny_model_dir, detail), with_lora) and merges == []  # still merged: no merge
    assert generator._model.text2img is kept_pipe
    picture(other_models[0])
    assert np.array_equal(picture(tiny_model_dir), plain)  # its own weights back


def test_a_kept_model_whose_files_changed_is_read_again(generator, loads, tiny_model_dir, other_models):
    import os

    make(generator, other_models[1])
    make(generator, tiny_model_dir)
    weights = next(other_models[1].rglob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new download, as far as it shows
    make(generator, other_models[1])
    assert loads == ["tiny-c", "tiny-sd", "tiny-c"]


def test_another_job_out_of_memory_gets_the_kept_models_room(generator, tiny_model_dir, other_models):
    """An upscaler's tiles or the fast path's eager retry call release_spare_memory before trying again."""
    make(generator, tiny_model_dir)
    make(generator, other_models[0])
    make(generator, other_models[1])
    pipes = [weakref.ref(model.text2img) for model in generator._kept.models]
    assert release_spare_memory(generator.device) and len(generator._kept) == 0  # every kept model goes
    assert len(pipes) == 2 and all(gone(pipe) for pipe in pipes)
    assert generator._model is not None  # the model in use stays
    assert not release_spare_memory(generator.device)  # nothing more to give
