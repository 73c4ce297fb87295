"""Models in Memory: what the engine lists as held, and freeing it (kept models, the model in use, cached parts).

Tiny SD pipelines loaded through Studio's loader, on the CPU; the GPU's measure is stood in for.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from studio_testing import DirectContext, tiny_request
from tiny_models import build_tiny_sd

from studio.core.environment import GeneratorEnvironment
from studio.core.held_memory import CACHED, IN_USE, KEPT, HeldModel, MemoryFreed
from studio.core.model_library import format_size
from studio.engine import held_memory, model_keeping
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.held_memory import held_models, release_memory
from studio.engine.memory import GIB, model_bytes


@pytest.fixture(scope="module")
def model_b(tmp_path_factory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("other-models") / "tiny-b", seed=1)


@pytest.fixture
def generator(tmp_path, monkeypatch) -> DiffusersGenerator:
    monkeypatch.setattr(model_keeping, "available_ram", lambda: (64 * GIB, 128 * GIB))  # room to keep models
    return DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))


def make(generator: DiffusersGenerator, model: Path, context: DirectContext | None = None,
         **kwargs) -> np.ndarray:  # noqa: ANN003
    ((image, _recipe),) = list(generator.generate(tiny_request(model, prepared=True, **kwargs),
                                                  context or DirectContext()))
    return np.asarray(image, dtype=np.int16)


def gone(reference: weakref.ref) -> bool:
    gc.collect()
    return reference() is None


def test_freeing_kept_models_keeps_the_one_in_use_and_freeing_all_makes_the_next_job_load_it_again(
        generator, loads, tiny_model_dir, model_b):
    picture_a = make(generator, tiny_model_dir)
    make(generator, model_b)  # A is kept for switching back
    a_pipe = weakref.ref(generator._kept.models[0].text2img)
    b_pipe = weakref.ref(generator._model.text2img)

    held = held_models([generator])
    assert [(m.name, m.role, m.device, m.precision) for m in held] == [
        ("tiny-b", IN_USE, "cpu", "float32"), ("tiny-sd", KEPT, "cpu", "float32")]
    assert held[0].size == model_bytes(generator._model.text2img) > 0
    assert held[1].path == tiny_model_dir.resolve()

    freed = release_memory([generator], in_use=False)
    assert freed == MemoryFreed((held[1],), held[1].size)  # counted on the CPU, not measured
    assert freed.summary() == f"Freed tiny-sd ({format_size(held[1].size)})." and not freed.in_use_freed
    assert gone(a_pipe) and held_models([generator]) == (held[0],)

    freed = release_memory([generator], in_use=True)
    assert freed.models == (held[0],) and freed.in_use_freed
    assert generator._model is None and held_models([generator]) == ()
    assert gone(b_pipe)  # nothing else (graphs, LoRA originals, prompt caches) keeps its weights alive

    context = DirectContext()
    assert np.array_equal(make(generator, tiny_model_dir, context), picture_a)  # loaded again: the same picture
    assert loads == ["tiny-sd", "tiny-b", "tiny-sd"]
    assert {**generator.device.status_fields, "message": "Loading tiny-sd…"} in context.statuses
    assert release_memory([generator]).models == ()  # nothing kept: the one in use stays


def test_a_vae_chosen_for_a_job_is_listed_as_cached_and_freed_with_the_kept_models(generator, tiny_model_dir):
    vae_folder = tiny_model_dir / "vae"  # the model's own VAE, as a VAE folder
    make(generator, tiny_model_dir, vae=str(vae_folder))
    held = held_models([generator])
    assert [(m.name, m.role, m.path) for m in held] == [
        ("tiny-sd", IN_USE, tiny_model_dir.resolve()), ("VAE vae", CACHED, vae_folder.resolve())]
    assert held[1].size == sum(p.numel() * 4 for p in generator._vae.kept[1].parameters())
    vae = weakref.ref(generator._vae.kept[1])
    assert release_memory([generator]).models == (held[1],)
    assert gone(vae) and held_models([generator]) == (held[0],)


class Holder:
    """A plugin's generator that keeps two models: one in the GPU's memory, one in system memory."""

    def __init__(self) -> None:
        self.models = [HeldModel("plugin model", IN_USE, "cuda", "float16", 100),
                       HeldModel("plugin cache", CACHED, "cpu", "float32", 30)]
        self.asked: list[bool] = []

    def held_models(self) -> list[HeldModel]:
        return list(self.models)

    def release_memory(self, in_use: bool = False) -> list[HeldModel]:
        self.asked.append(in_use)
        let_go, self.models = self.models, []
        return let_go


class Broken:
    def held_models(self) -> list[HeldModel]:
        raise RuntimeError("a bug in a plugin")

    release_memory = held_models


def test_any_live_generator_or_filter_can_hold_models_and_one_that_fails_leaves_the_others_listed_and_freed():
    holder = Holder()
    listed = held_models([object(), Broken(), holder])
    assert listed == tuple(holder.models)
    freed = release_memory([object(), Broken(), holder], in_use=True)
    assert holder.asked == [True] and freed.models == listed
    assert freed.size == 130 and not freed.measured  # no GPU started: the weights counted
    assert freed.summary() == "Freed plugin model and plugin cache (130 B)."
    many = MemoryFreed(tuple(HeldModel(f"model {n}", KEPT, "cpu", "float32", 10) for n in range(4)), 40)
    assert many.summary() == "Freed 4 models (40 B)."  # one line: counted, not named
    copies = MemoryFreed((HeldModel("Depth model", CACHED, "cuda", "float16", 50),
                          HeldModel("Depth model", CACHED, "cpu", "float32", 100)), 150)
    assert copies.summary() == "Freed Depth model (150 B)."  # its GPU and CPU copies: named once


def test_a_holder_that_hangs_exits_or_answers_nonsense_is_left_out_and_the_engine_goes_on(monkeypatch):
    import threading

    from studio.engine import held_memory

    monkeypatch.setattr(held_memory, "ANSWER_SECONDS", 0.2)
    stop = threading.Event()

    class Hangs:
        def held_models(self) -> list[HeldModel]:
            stop.wait(30)
            return []

        release_memory = held_models

    class Exits:
        def held_models(self) -> list[HeldModel]:
            raise SystemExit(3)

        release_memory = held_models

    class Nonsense:
        def held_models(self) -> list[object]:
            return ["a string", None, HeldModel("real", CACHED, "cpu", "float32", 5)]

        def release_memory(self, in_use: bool = False) -> list[object]:
            return self.held_models()

    holders = [Hangs(), Exits(), Nonsense(), Holder()]
    try:
        assert [model.name for model in held_models(holders)] == ["real", "plugin model", "plugin cache"]
        assert release_memory(holders).size == 135
    finally:
        stop.set()


def test_on_a_gpu_the_freed_memory_is_measured_and_what_left_system_memory_is_counted(monkeypatch):
    allocated = iter([1000, 880])  # before, after
    monkeypatch.setattr(held_memory, "_gpu_started", lambda: "cuda")
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *args: next(allocated))
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    freed = release_memory([Holder()], in_use=True)
    assert freed.size == 120 + 30 and freed.measured and emptied == [True]
    assert MemoryFreed((), 5 * GIB // 2).summary() == "Freed 2.5 GB of cached memory."
    assert MemoryFreed((), 0).summary() == "No model was loaded: there was no memory to free."


def test_the_fast_path_s_vae_copy_and_captured_steps_are_listed_and_freed_with_the_kept_models(generator,
                                                                                               tiny_model_dir,
                                                                                               monkeypatch):
    """Kept for the model's next job, the fast path's bfloat16 VAE copy (about 170 MB for SDXL's) and its captured UNet
    steps (their memory pool: a step's activations, up to a few GB) take GPU memory a person freeing it should see
    and be able to let go; "Free Kept Models" lets them go, the model in use stays, and its next job makes them
    again. A pretend Ampere GPU whose captures and memory snapshot are stood in for."""
    from pretend_gpu import fast_path_on_pretend_gpu

    from studio.engine import fast_path_state

    fast_path_on_pretend_gpu(monkeypatch, pool_bytes=3 * 2**20, bfloat16_vae=True)
    make(generator, tiny_model_dir)
    pipe = generator._model.text2img
    state = fast_path_state.state_for(pipe.unet)
    copy = state.vae_copy(pipe.vae)
    assert copy is not None and len(state.cache) == 1
    held = held_models([generator])
    assert [(m.name, m.role, m.device, m.precision) for m in held] == [
        ("tiny-sd", IN_USE, "cpu", "float32"),
        ("bfloat16 VAE copy of tiny-sd", CACHED, "cpu", "bfloat16"),  # where the pretend GPU's tensors are
        ("CUDA graphs of tiny-sd's UNet step", CACHED, "cuda", "float32")]
    assert held[1].size == sum(p.numel() * 2 for p in copy.parameters())
    assert held[2].size == 3 * 2**20  # its pool's segments, as PyTorch's allocator lists them

    copy = weakref.ref(copy)
    freed = release_memory([generator])
    assert freed.models == tuple(held[1:]) and not freed.in_use_freed
    assert freed.summary() == (f"Freed bfloat16 VAE copy of tiny-sd and CUDA graphs of tiny-sd's UNet step "
                               f"({format_size(held[1].size + held[2].size)}).")
    assert gone(copy) and not state.holds_memory() and held_models([generator]) == (held[0],)

    make(generator, tiny_model_dir, width=128, height=128)
    make(generator, tiny_model_dir)
    assert len(state.cache) == 2  # a graph for each size, in one new pool
    assert held_models([generator])[1:] == held[1:]
    assert release_memory([generator], in_use=True).in_use_freed and held_models([generator]) == ()
