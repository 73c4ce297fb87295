"""The engine's fast path, on the CPU: keys, the graph cache, the eligibility rules and every fallback.

There is no CUDA here, so the real capture (torch.cuda.graph) is replaced by stand-ins: one that raises, and
one that "replays" by running the step again on the static buffers, which exercises everything around it.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from studio_testing import DirectContext, ReplayOnCpu
from tiny_loras import lora_state, save_lora, tiny_unet
from tiny_models import build_tiny_ip_adapter, build_tiny_sdxl

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import JobCancelledError
from studio.core.requests import GenerationRequest, LoraChoice
from studio.core.speed_labels import SPEED_STANDARD, menu_words
from studio.engine import fast_path, fast_path_choices, fast_path_memory, fast_path_state, unet_graph
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.fast_layout import UNetLayout
from studio.engine.loader import load_model
from studio.engine.memory import OFFLOAD, SLICING, TILING, MemoryPlan, model_bytes, upcasts_float16_vae
from studio.engine.schedulers import make_scheduler
from studio.engine.unet_graph import GraphCache, GraphedUNet, GraphKey, Unsupported, capture_cuda_graph, graph_key

REAL_PLATFORM_REASON = fast_path.platform_reason
REFERENCE = Image.new("RGB", (64, 64), (240, 140, 20))




def failing_capture(step, cache):
    raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture
def forced_on(monkeypatch: pytest.MonkeyPatch):
    """The fast path as if on CUDA (the platform check passes); the capture is up to each test."""
    monkeypatch.setattr(fast_path, "platform_reason", lambda kind, options: None)
    ReplayOnCpu.made = []
    return monkeypatch


def request(model: Path, **kwargs) -> GenerationRequest:
    values = {"model": str(model), "prompt": "a red fox, snow", "negative_prompt": "blurry", "width": 64,
              "height": 64, "steps": 3, "cfg_scale": 5.0, "seed": 7, "scheduler": "Euler"}
    values.update(kwargs)
    return GenerationRequest(**values)


def studio_images(generator: DiffusersGenerator, req: GenerationRequest) -> tuple[list[Image.Image], DirectContext]:
    context = DirectContext()
    return [image for image, _recipe in generator.generate(req, context)], context


def plain_image(pipe, req: GenerationRequest, seed: int) -> Image.Image:
    """What plain diffusers makes for the request: the pipeline called directly, no callback."""
    pipe.scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)
    return pipe(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                guidance_scale=req.cfg_scale, width=req.width, height=req.height, output_type="pil",
                generator=torch.Generator("cpu").manual_seed(seed)).images[0]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture
def generator(tmp_path: Path) -> DiffusersGenerator:
    return DiffusersGenerator(GeneratorEnvironment(device="cpu", data_dir=tmp_path / "data",
                                                   cache_dir=tmp_path / "cache"))


@pytest.fixture(scope="module")
def plain_pipe(tiny_model_dir: Path):
    return load_model(tiny_model_dir, select_device("cpu")).text2img


# -- keys and the cache ---------------------------------------------------------------------------------

def unet_call(rows: int = 2, size: int = 8, dtype: torch.dtype = torch.float32, **extra):
    args = (torch.zeros(rows, 4, size, size, dtype=dtype), torch.tensor(999.0))
    kwargs = {"encoder_hidden_states": torch.zeros(rows, 77, 32, dtype=dtype), "timestep_cond": None,
              "cross_attention_kwargs": None, "added_cond_kwargs": None}
    kwargs.update(extra)
    return args, kwargs


class DoublingUNet(torch.nn.Module):
    """A stand-in UNet that doubles its latents; ``on_call`` runs at each call of its own forward."""

    def __init__(self, on_call: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.on_call = on_call

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> tuple[torch.Tensor]:
        if self.on_call is not None:
            self.on_call()
        return (sample * 2,)


def test_graph_key_changes_with_latent_shape_rows_and_dtype_only():
    key, leaves = graph_key(*unet_call())
    assert len(leaves) == 3
    assert graph_key(*unet_call())[0] == key  # new tensors, same layout: the same graph replays
    assert key.describe() == "4x8x8 latents, 2 rows, float32"
    others = [graph_key(*unet_call(size=16))[0], graph_key(*unet_call(rows=1))[0],  # size; CFG off
              graph_key(*unet_call(rows=4))[0], graph_key(*unet_call(dtype=torch.float16))[0],  # batch 2; dtype
              graph_key(*unet_call(added_cond_kwargs={"text_embeds": torch.zeros(2, 8)}))[0]]
    assert len({key, *others}) == 6


def test_python_numbers_cannot_be_graphed():
    with pytest.raises(Unsupported, match="cross_attention_kwargs holds a Python float"):
        graph_key(*unet_call(cross_attention_kwargs={"scale": 0.5}))
    with pytest.raises(Unsupported, match="input argument 2 holds a Python int"):
        graph_key((torch.zeros(1, 4, 8, 8), 999), {})


def test_graph_cache_keeps_the_three_latest_and_forgets_all_when_weights_move():
    cache = GraphCache(capacity=3)
    keys = [GraphKey(("shape", n)) for n in range(4)]
    assert not cache.check("weights-1")  # a first fingerprint: nothing to keep
    for key in keys[:3]:
        cache.put(key, object())
    assert cache.get(keys[0]) is not None  # used again: now the most recent
    cache.put(keys[3], object())
    assert cache.keys() == [keys[2], keys[0], keys[3]] and cache.evictions == 1
    assert cache.get(keys[1]) is None  # evicted: the next call with it recaptures
    assert cache.check("weights-1") and len(cache) == 3
    assert not cache.check("weights-2") and len(cache) == 0


class FakeGraph:
    def replay(self) -> None:
        pass


class PyTorchGraphPools:
    """``torch.cuda``'s graph API on the CPU, keeping memory pools as PyTorch's caching allocator does
    (CUDACachingAllocator.cpp, ``create_or_incref_pool``): a capture into an existing pool asserts that another graph
    uses it; a pool goes once its graphs are gone and it holds no memory, and the first capture's pool keeps cuBLAS's
    workspace (allocated on the capture stream then, kept for good), so it never goes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.handles = iter(range(1, 1000))
        self.graphs_using: dict[int, int] = {}  # pool -> its live graphs
        self.holding: set[int] = set()  # pools that keep memory after their graphs go
        self.streams: list[object] = []
        self.captured_in: list[int] = []  # the pool of each capture
        stream = SimpleNamespace(wait_stream=lambda other: None)
        for name, value in (("graph_pool_handle", lambda: next(self.handles)), ("Stream", self.stream),
                            ("stream", lambda s: contextlib.nullcontext()), ("current_stream", lambda: stream),
                            ("CUDAGraph", FakeGraph), ("graph", self.graph)):
            monkeypatch.setattr(torch.cuda, name, value)

    def stream(self) -> object:
        self.streams.append(SimpleNamespace(wait_stream=lambda other: None))
        return self.streams[-1]

    @contextlib.contextmanager
    def graph(self, graph, pool: int, capture_error_mode: str):  # noqa: ANN001
        if self.graphs_using.get(pool) == 0:
            raise RuntimeError("INTERNAL ASSERT FAILED at CUDACachingAllocator.cpp: it->second->use_count > 0")
        if not self.holding and not self.graphs_using:
            self.holding.add(pool)
        self.graphs_using[pool] = self.graphs_using.get(pool, 0) + 1
        self.captured_in.append(pool)
        weakref.finalize(graph, self.release, pool)
        yield

    def release(self, pool: int) -> None:
        self.graphs_using[pool] -= 1
        if self.graphs_using[pool] == 0 and pool not in self.holding:
            del self.graphs_using[pool]  # freed (torch.cuda.graph empties the cache before each capture)


def test_a_unet_whose_graphs_were_let_go_captures_again(monkeypatch: pytest.MonkeyPatch):
    """A model kept aside and switched back to (or one whose job needed the memory) gets its step captured again."""
    pools = PyTorchGraphPools(monkeypatch)
    unet, failures = DoublingUNet(), []
    cache = GraphCache()
    for _job in range(3):
        graphed = GraphedUNet(unet, cache, capture_cuda_graph, on_eager=failures.append,
                              on_failure=failures.append)
        (out,) = graphed(torch.ones(1, 4, 8, 8), return_dict=False)
        assert torch.equal(out, torch.full((1, 4, 8, 8), 2.0))
        assert failures == [] and not graphed.disabled and len(graphed.captures) == 1
        cache.clear()  # let_graphs_go, make_room
    assert pools.captured_in == [1, 2, 3]  # after each clear, a pool of its own


def test_every_capture_warms_up_on_the_same_side_stream(monkeypatch: pytest.MonkeyPatch):
    """cuBLAS keeps a workspace for each stream it ran on: a new warm-up stream per capture would pile them up."""
    monkeypatch.setattr(unet_graph, "_warmup_stream", None, raising=False)
    pools = PyTorchGraphPools(monkeypatch)
    graphed = GraphedUNet(DoublingUNet(), GraphCache(), capture_cuda_graph, on_eager=print, on_failure=print)
    for size in (8, 12, 16, 8):
        graphed(torch.ones(1, 4, size, size), return_dict=False)
    assert len(graphed.captures) == 3 and len(pools.streams) == 1


class PyTorchCaptureStreams:
    """``torch.cuda``'s streams and ``torch.cuda.graph`` on the CPU, as PyTorch has them (torch/cuda/graphs.py): the
    capture runs on a stream of its own; its exit ends the capture first and puts the stream before back only if
    that worked, and ending a capture a step broke (a sync inside it) fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ambient = self.current = self._new_stream("ambient")
        for name, value in (("graph_pool_handle", lambda: 1), ("Stream", lambda: self._new_stream("side")),
                            ("stream", self.stream), ("current_stream", lambda: self.current),
                            ("set_stream", self.set_stream), ("CUDAGraph", FakeGraph), ("graph", self.graph)):
            monkeypatch.setattr(torch.cuda, name, value)

    @staticmethod
    def _new_stream(name: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, wait_stream=lambda other: None)

    def set_stream(self, stream: SimpleNamespace) -> None:
        self.current = stream

    @contextlib.contextmanager
    def stream(self, stream: SimpleNamespace):  # noqa: ANN201
        before, self.current = self.current, stream
        try:
            yield
        finally:
            self.current = before

    def graph(self, graph, pool: int, capture_error_mode: str):  # noqa: ANN001, ANN201
        streams = self

        class Capture:
            def __enter__(self) -> None:
                self.stream_ctx = streams.stream(streams._new_stream("capture"))
                self.stream_ctx.__enter__()

            def __exit__(self, *exc: object) -> None:
                if exc[0] is not None:  # capture_end: the capture was invalidated
                    raise RuntimeError("CUDA error: operation failed due to a previous error during capture")
                self.stream_ctx.__exit__(*exc)

        return Capture()


def test_a_capture_a_step_broke_falls_back_on_the_stream_it_started_on(monkeypatch: pytest.MonkeyPatch):
    """A sync inside the step breaks the capture; ending it then fails, and torch.cuda.graph leaves its capture
    stream current. The job runs eager with a note of the failure, on the stream it ran on before, as later jobs do."""
    monkeypatch.setattr(unet_graph, "_warmup_stream", None, raising=False)
    streams = PyTorchCaptureStreams(monkeypatch)

    def sync_while_capturing() -> None:
        if streams.current.name == "capture":
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    failures: list[BaseException] = []
    graphed = GraphedUNet(DoublingUNet(on_call=sync_while_capturing), GraphCache(), capture_cuda_graph,
                          on_eager=print, on_failure=failures.append)
    (out,) = graphed(torch.ones(1, 4, 8, 8), return_dict=False)
    assert torch.equal(out, torch.full((1, 4, 8, 8), 2.0))  # made eagerly
    assert graphed.disabled and len(failures) == 1 and "previous error during capture" in str(failures[0])
    assert streams.current is streams.ambient


# -- when the fast path runs -----------------------------------------------------------------------------

def test_fast_path_is_off_on_cpu_and_mps_and_when_turned_off_and_says_so():
    on = fast_path_choices.FastPathOptions()
    assert fast_path.platform_reason("cuda", on) is None
    assert "off on the CPU" in fast_path.platform_reason("cpu", on)
    assert "off on MPS" in fast_path.platform_reason("mps", on)
    off = fast_path_choices.options_from_env({"STUDIO_FAST_PATH": "off"})
    assert not off.enabled and "turned off" in fast_path.platform_reason("cuda", off)
    assert fast_path_choices.options_from_env({"STUDIO_FAST_PATH": "compile"}).compile
    assert fast_path_choices.options_from_env({}) == on and not on.compile  # compile only when asked for


def test_the_reason_the_fast_path_is_off_names_what_decided(monkeypatch):
    on, off = fast_path_choices.FastPathOptions(), fast_path_choices.FastPathOptions(enabled=False)
    # STUDIO_FAST_PATH turned it off, not the Speed setting
    by_env = fast_path.platform_reason("cuda", off, {"STUDIO_FAST_PATH": "off"})
    assert "STUDIO_FAST_PATH=off" in by_env and "Settings" not in by_env
    assert f"Settings → GPU → {menu_words(SPEED_STANDARD)})" in fast_path.platform_reason("cuda", off, {})
    assert "Settings → GPU → Speed: Standard)" in fast_path.platform_reason("cuda", off, {})  # as the menu shows it
    # on the CPU: the precision the jobs run in, and what chose it
    forced = fast_path.platform_reason("cpu", on, {"STUDIO_CPU_DTYPE": "float32"})
    assert "run float32, as STUDIO_CPU_DTYPE=float32 says" in forced and "bfloat16" not in forced
    assert "run bfloat16, as STUDIO_CPU_DTYPE=bf16 says" in fast_path.platform_reason(
        "cpu", on, {"STUDIO_CPU_DTYPE": "bf16"})
    monkeypatch.setattr(fast_path_choices, "cpu_computes_bfloat16", lambda: False)
    without_units = fast_path.platform_reason("cpu", on, {"STUDIO_CPU_DTYPE": "auto"})
    assert "run float32" in without_units and "no bfloat16 units" in without_units
    monkeypatch.setattr(fast_path_choices, "cpu_computes_bfloat16", lambda: True)
    assert "run bfloat16 with channels-last weights" in fast_path.platform_reason("cpu", on, {})


def test_on_the_cpu_a_job_runs_plain_diffusers_without_a_note(plain_pipe):
    notes: list[str] = []
    with fast_path.fast_job(plain_pipe, select_device("cpu"), None, False, {}, notes.append) as job:
        assert not job.active
        assert "off on the CPU" in job.reason
        assert "forward" not in plain_pipe.unet.__dict__
    assert notes == []


def test_jobs_the_graph_cannot_take_run_eager_with_the_reason(plain_pipe, tiny_model_dir):
    reason = fast_path_choices.job_reason
    assert reason(plain_pipe, {}) is None
    assert reason(plain_pipe, {}, (TILING,)) is None  # VAE tiling does not touch the UNet step
    assert "CPU offload" in reason(plain_pipe, {}, (SLICING, TILING, OFFLOAD))
    assert "CPU offload" in reason(plain_pipe, {}, offloaded=True)
    assert "attention slicing" in reason(plain_pipe, {}, (SLICING, TILING))
    assert reason(plain_pipe, {"ip_adapter_image": Image.new("RGB", (8, 8))}) is None  # embeddings: one more input
    assert "cross-attention options" in reason(plain_pipe, {"cross_attention_kwargs": {"scale": 0.7}})
    # A ControlNet's residuals are tensors: more inputs of the captured step (test_engine_control checks the pictures).
    assert reason(SimpleNamespace(unet=plain_pipe.unet, controlnet=object()), {}) is None
    unet = tiny_unet(tiny_model_dir)
    lora_state(unet)  # PEFT LoRA layers attached (Studio merges and takes them off; a plugin might not)
    assert "LoRAs" in reason(SimpleNamespace(unet=unet), {})
    plain_pipe.enable_attention_slicing()
    try:
        assert "attention slicing" in reason(plain_pipe, {})
    finally:
        plain_pipe.disable_attention_slicing()


def test_a_job_the_graph_cannot_take_says_why_in_a_note(forced_on, plain_pipe):
    notes: list[str] = []
    with fast_path.fast_job(plain_pipe, select_device("cpu"), None, True, {}, notes.append) as job:
        assert not job.active
    assert notes == [job.reason]
    assert notes[0].startswith("This job ran without the fast path: model CPU offload")


def test_dtype_choice_keeps_float16_and_uses_bfloat16_only_for_a_vae_that_overflows(plain_pipe, tiny_sdxl_dir):
    sd15 = fast_path_choices.choose_dtypes((9, 0), vae_upcast=False)
    assert (sd15.unet, sd15.vae) == (torch.float16, None)  # the SD pipeline decodes in float16 anyway
    sdxl = fast_path_choices.choose_dtypes((9, 0), vae_upcast=True)
    assert (sdxl.unet, sdxl.vae) == (torch.float16, torch.bfloat16)
    turing = fast_path_choices.choose_dtypes((7, 5), vae_upcast=True)
    assert turing.vae is None and "float32 VAE" in turing.reason
    # Which pipelines upcast which VAEs is said in one place, which the memory plan asks too.
    assert plain_pipe.vae.config.force_upcast and not upcasts_float16_vae(plain_pipe)  # SD's pipelines do not
    sdxl_pipe = load_model(tiny_sdxl_dir, select_device("cpu"), place=False).text2img
    assert upcasts_float16_vae(sdxl_pipe)
    sdxl_pipe.vae.register_to_config(force_upcast=False)  # e.g. sdxl-vae-fp16-fix
    assert not upcasts_float16_vae(sdxl_pipe)


# -- the whole job, fast path forced on ------------------------------------------------------------------

def test_a_failed_capture_falls_back_to_plain_diffusers_bit_for_bit(forced_on, generator, plain_pipe,
                                                                    tiny_model_dir):
    forced_on.setattr(fast_path, "capture_cuda_graph", failing_capture)
    req = request(tiny_model_dir, batch_count=2)
    images, context = studio_images(generator, req)
    assert len(context.notes) == 1
    assert context.notes[0].startswith("The fast path failed while capturing the UNet step (RuntimeError: "
                                       "operation not permitted when stream is capturing)")
    for index, image in enumerate(images):
        assert np.array_equal(pixels(image), pixels(plain_image(plain_pipe, req, req.seed_for(index))))
    unet = generator._model.text2img.unet
    assert "forward" not in unet.__dict__  # the pipeline is as it was: plain forward, SDPA processors
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert generator._model.text2img.vae.decoder.conv_in.weight.is_contiguous()


def test_any_failure_while_making_the_picture_retries_it_eagerly(forced_on, generator, plain_pipe, tiny_model_dir):
    class BrokenReplay(ReplayOnCpu):
        def replay(self) -> None:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    forced_on.setattr(fast_path, "capture_cuda_graph", BrokenReplay)
    req = request(tiny_model_dir)
    (image,), context = studio_images(generator, req)
    assert context.notes == [("The fast path failed while making the picture (RuntimeError: CUDA error: an illegal "
                              "memory access was encountered), so this job ran plain diffusers instead.")]
    assert np.array_equal(pixels(image), pixels(plain_image(plain_pipe, req, req.seed)))


def test_replayed_steps_match_eager_and_recapture_only_for_a_new_shape(forced_on, generator, plain_pipe,
                                                                      tiny_model_dir):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    req = request(tiny_model_dir, batch_count=2)
    images, context = studio_images(generator, req)
    assert context.notes == []
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert [key for key, _seconds in state.captures] == ["4x8x8 latents, 2 rows, float32"]  # CFG: 2 rows
    assert state.replays == 2 * req.steps
    for index, image in enumerate(images):
        # Fused QKV sums in another order than three projections: close, not necessarily bitwise.
        diff = np.abs(pixels(image) - pixels(plain_image(plain_pipe, req, req.seed_for(index))))
        assert diff.mean() <= 1.0 and diff.max() <= 8
    studio_images(generator, req)  # the next job reuses the graph: the fused weights did not move
    assert len(state.captures) == 1 and len(ReplayOnCpu.made) == 1
    studio_images(generator, request(tiny_model_dir, width=96))  # a new latent shape: one more capture
    studio_images(generator, request(tiny_model_dir, cfg_scale=1.0))  # no CFG: 1 row, one more
    assert [key for key, _ in state.captures][1:] == ["4x8x12 latents, 2 rows, float32",
                                                      "4x8x8 latents, 1 row, float32"]
    assert len(state.cache) == 3


def test_inputs_the_graph_cannot_take_run_eager_for_the_job_with_a_note(forced_on, plain_pipe):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    notes: list[str] = []
    unet = plain_pipe.unet
    sample, timestep = torch.randn(2, 4, 8, 8), torch.tensor(500.0)
    context = torch.randn(2, 77, 32)
    with torch.inference_mode():
        expected = unet(sample, timestep, context, return_dict=False)[0]
        with fast_path.fast_job(plain_pipe, select_device("cpu"), None, False, {}, notes.append) as job:
            assert job.active and isinstance(unet.__dict__["forward"], fast_path.GraphedUNet)
            replayed = unet(sample, timestep, context).sample  # return_dict=True, as a direct caller would
            out = unet(sample, timestep, context, cross_attention_kwargs={"scale": 1.0}).sample
    assert notes == [("This job ran without the captured UNet step: the UNet's input cross_attention_kwargs holds "
                      "a Python float, which a captured graph would freeze.")]
    assert len(ReplayOnCpu.made) == 1 and ReplayOnCpu.made[0].replays == 1  # the first call, then eager
    assert torch.allclose(replayed, expected, atol=1e-5) and torch.allclose(out, expected, atol=1e-5)
    assert "forward" not in unet.__dict__


def test_a_lora_job_replays_the_captured_step_with_its_lora_merged_and_nothing_is_recaptured(forced_on, generator,
                                                                                           tmp_path, tiny_model_dir):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    folder = tmp_path / "data" / "models" / "loras"
    save_lora(lora_state(tiny_unet(tiny_model_dir), scale=2.0), folder / "ink.safetensors")
    save_lora(lora_state(tiny_unet(tiny_model_dir), seed=1, scale=2.0), folder / "wash.safetensors")
    ink, wash = (request(tiny_model_dir, loras=(LoraChoice(name, 1.0),)) for name in ("ink", "wash"))
    forced_on.setattr(fast_path, "platform_reason", REAL_PLATFORM_REASON)  # the references: the CPU's plain path
    expected = {name: pixels(studio_images(generator, req)[0][0]) for name, req in (("ink", ink), ("wash", wash))}
    forced_on.setattr(fast_path, "platform_reason", lambda kind, options: None)

    (first,), context = studio_images(generator, request(tiny_model_dir))
    assert context.notes == [] and len(ReplayOnCpu.made) == 1
    replayed = ReplayOnCpu.made[0].replays
    for name, req in (("ink", ink), ("wash", wash), ("ink", ink)):
        (lora_image,), context = studio_images(generator, req)
        assert context.notes == []  # no "ran without the fast path"
        assert len(ReplayOnCpu.made) == 1  # merged in place: the graph captured before reads the new weights
        assert ReplayOnCpu.made[0].replays == replayed + req.steps  # every step replays the captured graph
        replayed = ReplayOnCpu.made[0].replays
        assert np.abs(pixels(lora_image) - expected[name]).max() <= 1  # fused QKV: the same sums, another order
        assert np.abs(pixels(lora_image) - pixels(first)).mean() > 2  # the LoRA took effect
    (again,), context = studio_images(generator, request(tiny_model_dir))
    assert context.notes == [] and len(ReplayOnCpu.made) == 1  # the base weights back, in place: no recapture
    assert np.array_equal(pixels(again), pixels(first))


def test_an_adapter_is_part_of_each_graphs_key_and_leaves_the_weights_fingerprint_alone(tmp_path, tiny_model_dir):
    """A graph reads an IP-Adapter's weights by address and freezes its scale; the UNet's own weights stay put."""
    folder = build_tiny_ip_adapter(tmp_path, tiny_model_dir)
    pipe = load_model(tiny_model_dir, select_device("cpu")).text2img
    layout = UNetLayout(pipe.unet)
    before = layout.processors()
    assert layout.fuse_qkv()  # the weights where a plain job's fast path leaves them
    layout.set_processors(before)
    fingerprint, plain = layout.fingerprint(), layout.attention_key()

    def attach() -> dict:
        pipe.load_ip_adapter(str(folder), subfolder="", weight_name="ip-adapter_sd15.safetensors",
                             image_encoder_folder="image_encoder", local_files_only=True)
        return dict(pipe.unet.attn_processors)  # held, so the next load's weights cannot reuse their memory

    first = attach()
    steered = layout.attention_key()
    assert steered != plain and layout.fingerprint() == fingerprint
    before = layout.processors()
    assert layout.fuse_qkv()  # self-attention fused; the adapter's processors run their own projections
    names = layout.processor_names()
    assert names.count("IPAdapterAttnProcessor2_0") == len(names) // 2 and "FusedAttnProcessor2_0" in names
    layout.set_processors(before)
    assert layout.attention_key() == steered and layout.fingerprint() == fingerprint
    pipe.set_ip_adapter_scale(0.5)
    assert layout.attention_key() != steered  # a Python number a graph would freeze: another graph
    pipe.set_ip_adapter_scale(1.0)
    second = attach()
    assert layout.attention_key() not in (steered, plain)  # the same adapter elsewhere in memory
    pipe.unload_ip_adapter()
    assert layout.attention_key() == plain and layout.fingerprint() == fingerprint
    assert first is not second


@pytest.fixture(scope="module")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("fast-sdxl") / "tiny-xl")


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_a_reference_job_replays_its_own_captured_step_and_a_new_strength_captures_nothing(
        forced_on, generator, tmp_path, tiny_model_dir, tiny_sdxl_dir, family):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    model = tiny_sdxl_dir if family == "sdxl" else tiny_model_dir
    build_tiny_ip_adapter(tmp_path / "data" / "models", model, family=family)
    steered = {s: request(model, reference_image=REFERENCE, reference_scale=s) for s in (0.5, 1.2)}
    forced_on.setattr(fast_path, "platform_reason", REAL_PLATFORM_REASON)  # the references: the CPU's plain path
    expected = {s: pixels(studio_images(generator, req)[0][0]) for s, req in steered.items()}
    forced_on.setattr(fast_path, "platform_reason", lambda kind, options: None)

    (first,), context = studio_images(generator, request(model))
    state = fast_path_state.state_for(generator._model.text2img.unet)
    assert context.notes == [] and len(state.captures) == 1
    for strength in (0.5, 1.2, 0.5):
        replayed = state.replays
        (image,), context = studio_images(generator, steered[strength])
        assert context.notes == []  # no "ran without the fast path"
        # One graph with the image embeddings as an input, beside the plain one; a new strength is in the weights.
        assert [key for key, _ in state.captures] == ["4x8x8 latents, 2 rows, float32",
                                                      "4x8x8 latents, 2 rows, float32, with a reference picture"]
        assert state.replays == replayed + steered[strength].steps  # every step replays it
        assert np.abs(pixels(image) - expected[strength]).max() <= 1  # fused QKV: the same sums, another order
        assert np.abs(pixels(image) - pixels(first)).mean() > 1  # the reference took effect
    (again,), context = studio_images(generator, request(model))
    assert context.notes == [] and len(state.captures) == 2  # the plain job's graph was kept beside it
    assert np.array_equal(pixels(again), pixels(first))


def test_a_bfloat16_vae_stands_in_for_the_job_and_the_pipeline_gets_its_own_back(forced_on, generator, plain_pipe,
                                                                                tiny_model_dir):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    forced_on.setattr(fast_path, "choose_dtypes", lambda *args: fast_path_choices.DtypeChoice(
        torch.float16, torch.bfloat16, "bfloat16 VAE, as for SDXL on an Ampere GPU"))
    copies = []
    make_copy = fast_path_state.bf16_copy
    forced_on.setattr(fast_path_state, "bf16_copy", lambda vae: copies.append(make_copy(vae)) or copies[-1])
    init = Image.new("RGB", (64, 64), (180, 40, 40))
    for req in (request(tiny_model_dir), request(tiny_model_dir, init_image=init, strength=0.7)):  # decode; encode
        (image,), context = studio_images(generator, req)
        assert context.notes == []
        pipe = generator._model.pipeline(img2img=req.init_image is not None)
        assert pipe.vae.dtype == torch.float32 and "decode" not in pipe.vae.__dict__  # its own VAE is back
        if req.init_image is None:
            diff = np.abs(pixels(image) - pixels(plain_image(plain_pipe, req, req.seed)))
            assert diff.mean() <= 1.0 and diff.max() <= 8, (diff.mean(), diff.max())
    assert len(copies) == 1 and copies[0].dtype == torch.bfloat16  # made once, used by both pipelines


def test_the_memory_plan_counts_the_bfloat16_vae_copy_and_a_job_short_of_memory_lets_it_go(forced_on, generator,
                                                                                          tiny_sdxl_dir):
    """SDXL's VAE overflows in float16: on a GPU with bfloat16 the fast path decodes with a bfloat16 copy of it (about
    170 MB for SDXL's), on the GPU beside the weights. The plan counts it with them, as there already from the second
    job on; a job that must save memory (its plan offloads or slices), or a model kept aside, lets it go. A pretend
    Ampere GPU, its torch calls stood in for, running on the CPU."""
    from studio.engine import diffusion
    from studio.engine.device import DeviceInfo
    from studio.engine.memory import GIB

    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    forced_on.setattr(diffusion, "job_device", lambda device, fast, precision="": pretend_gpu)
    capability = [(8, 6)]
    forced_on.setattr(torch.cuda, "get_device_capability", lambda device: capability[0])
    forced_on.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    forced_on.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    forced_on.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    forced_on.setattr(torch.cuda, "memory_snapshot", lambda: [])
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    (_,), context = studio_images(generator, request(tiny_sdxl_dir))
    assert not [note for note in context.notes if "fast path" in note]
    pipe = generator._model.text2img
    state = fast_path_state.state_for(pipe.unet)
    copy = state.vae_copy(pipe.vae)
    assert copy is not None and copy.dtype == torch.bfloat16  # made for the job, kept for the next
    copy_bytes = sum(p.numel() * 2 for p in copy.parameters())
    weights = model_bytes(pipe)  # the model is where the pretend GPU is: all of it there already
    assert (generator._plan.model_bytes, generator._plan.free_bytes) == (weights + copy_bytes, 80 * GIB + weights)
    studio_images(generator, request(tiny_sdxl_dir))
    assert (generator._plan.model_bytes, generator._plan.free_bytes) == (weights + copy_bytes,
                                                                         80 * GIB + weights + copy_bytes)
    assert state.vae_copy(pipe.vae) is copy  # the same copy again

    options = fast_path_choices.FastPathOptions()
    forced_on.setattr(fast_path, "platform_reason", REAL_PLATFORM_REASON)  # the pretend GPU is a CUDA one as it is
    assert fast_path_memory.vae_copy_bytes(pipe, pretend_gpu, options, {}) == (copy_bytes, copy_bytes)
    other_gpu = DeviceInfo("cuda", torch.device("meta"), torch.float32, "another GPU")
    assert fast_path_memory.vae_copy_bytes(pipe, other_gpu, options, {}) == (copy_bytes, 0)  # not there yet
    # No copy used; the one kept is let go before the job runs (its room is the job's).
    assert fast_path_memory.vae_copy_bytes(pipe, pretend_gpu, fast_path_choices.FastPathOptions(enabled=False), {}) == \
        (0, copy_bytes)
    capability[0] = (7, 5)  # a Turing GPU: no fast bfloat16, diffusers' float32 decode
    assert fast_path_memory.vae_copy_bytes(pipe, pretend_gpu, options, {}) == (0, copy_bytes)
    capability[0] = (8, 6)

    copy = weakref.ref(copy)
    low = MemoryPlan((SLICING, TILING, OFFLOAD), "Low VRAM is on.")
    with fast_path.fast_job(pipe, pretend_gpu, low, False, {}, print):
        pass
    assert state.vae_copy(pipe.vae) is None and copy() is None  # it would have stayed on the GPU, unused
    studio_images(generator, request(tiny_sdxl_dir))
    assert state.vae_copy(pipe.vae) is not None
    fast_path_state.let_graphs_go(pipe.unet)  # the model kept aside for switching back
    assert state.vae_copy(pipe.vae) is None


def test_a_job_without_the_fast_path_lets_a_kept_bfloat16_vae_copy_go_and_its_plan_counts_the_room(forced_on,
                                                                                                    generator,
                                                                                                    tiny_sdxl_dir):
    """A job that runs plain diffusers (the Speed setting, or LoRA layers a plugin left attached) decodes with the
    pipeline's own VAE: the bfloat16 copy kept from a fast job before would stay on the GPU, used and counted by no
    one. It goes when such a job starts, and that job's plan counts its room as free. A pretend Ampere GPU."""
    from peft import LoraConfig

    from studio.engine import diffusion
    from studio.engine.device import DeviceInfo
    from studio.engine.memory import GIB

    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    forced_on.setattr(diffusion, "job_device", lambda device, fast, precision="": pretend_gpu)
    forced_on.setattr(fast_path, "platform_reason", REAL_PLATFORM_REASON)  # the pretend GPU is a CUDA one as it is
    forced_on.setattr(torch.cuda, "get_device_capability", lambda device: (8, 6))
    forced_on.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    forced_on.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    forced_on.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    forced_on.setattr(torch.cuda, "memory_snapshot", lambda: [])
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)

    def kept_copy_then_plain_job(req: GenerationRequest, before: Callable[[], object] = lambda: None) -> list[str]:
        studio_images(generator, request(tiny_sdxl_dir))  # a fast job: its copy is kept for the next
        pipe = generator._model.text2img
        state = fast_path_state.state_for(pipe.unet)
        copy = state.vae_copy(pipe.vae)
        assert copy is not None
        copy_bytes, copy = sum(p.numel() * 2 for p in copy.parameters()), weakref.ref(copy)
        before()
        weights = model_bytes(pipe)
        replays = state.replays
        _images, context = studio_images(generator, req)
        assert state.replays == replays  # plain diffusers
        assert copy() is None and state.vae_copy(pipe.vae) is None
        assert (generator._plan.model_bytes, generator._plan.free_bytes) == (weights, 80 * GIB + weights + copy_bytes)
        return context.notes

    kept_copy_then_plain_job(request(tiny_sdxl_dir, speed="eager"))
    lora = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"])
    notes = kept_copy_then_plain_job(request(tiny_sdxl_dir),
                                     lambda: generator._model.text2img.unet.add_adapter(lora, adapter_name="plugin"))
    assert any("LoRAs are attached" in note for note in notes), notes


def test_a_dropped_bfloat16_vae_copy_gives_its_weights_back_at_once(plain_pipe):
    """Its weights (about 170 MB of a GPU for SDXL's VAE) go with its last reference, so the cache emptied right after
    gets them: not at some later garbage collection, as they did while its own casting methods referred to it."""
    import gc

    from studio.engine.fast_layout import bf16_copy

    twin = bf16_copy(plain_pipe.vae)
    with torch.inference_mode():
        assert twin.decode(torch.zeros(1, 4, 8, 8)).sample.dtype == torch.bfloat16  # it casts what it is given
        assert twin.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean.dtype == torch.bfloat16
    weights = weakref.ref(next(twin.parameters()))
    gc.disable()
    try:
        del twin
        assert weights() is None
    finally:
        gc.enable()


def test_a_vae_let_go_takes_its_bfloat16_copy_and_its_weights_out_of_the_fast_path_s_state(tiny_model_dir):
    """The state keeps a job VAE's bfloat16 copy and its weights' layout for the next job; a VAE the person chose for
    a job, let go (freed from Models in Memory, or another chosen), takes them along at once rather than leave its
    weights and copy on the GPU until a job with another VAE comes."""
    import gc

    from diffusers import AutoencoderKL

    unet = tiny_unet(tiny_model_dir)
    state = fast_path_state.FastPathState(unet, fast_path_choices.FastPathOptions())
    own = AutoencoderKL.from_pretrained(tiny_model_dir / "vae")
    chosen = [AutoencoderKL.from_pretrained(tiny_model_dir / "vae") for _ in range(2)]
    gc.disable()
    try:
        weights = weakref.ref(next(chosen[0].parameters()))
        state.vae_layout(chosen[0])
        copy = weakref.ref(state.bf16_vae(chosen[1]))
        chosen.clear()  # both let go
        assert weights() is None and copy() is None and not state.holds_memory()
        kept = state.bf16_vae(own)
        assert state.vae_copy(own) is kept and state.vae_layout(own) is state.vae_layout(own)  # kept while it lives
    finally:
        gc.enable()


def test_cancelling_or_a_failure_after_the_fast_path_was_dropped_is_not_retried(forced_on, plain_pipe):
    forced_on.setattr(fast_path, "capture_cuda_graph", failing_capture)
    fast_path_state.state_for(plain_pipe.unet).cache.clear()  # no graph left by other tests: this one must capture
    notes: list[str] = []
    calls: list[str] = []

    def cancelled() -> None:
        calls.append("cancelled")
        raise JobCancelledError()

    def broken_after_capture() -> None:
        calls.append("broken")
        with torch.inference_mode():
            plain_pipe.unet(torch.randn(2, 4, 8, 8), torch.tensor(10.0), torch.randn(2, 77, 32))  # capture fails
        raise ValueError("the scheduler broke")

    with fast_path.fast_job(plain_pipe, select_device("cpu"), None, False, {}, notes.append) as job:
        with pytest.raises(JobCancelledError):
            job.run(cancelled)
        assert job.active and notes == []
        with pytest.raises(ValueError, match="the scheduler broke"):
            job.run(broken_after_capture)
    assert calls == ["cancelled", "broken"]  # neither was made twice
    assert len(notes) == 1 and notes[0].startswith("The fast path failed while capturing the UNet step")


def test_after_running_out_of_gpu_memory_the_eager_retry_has_the_failed_pictures_memory(forced_on, plain_pipe):
    """The retry runs after the failed attempt's tensors are let go, not while its traceback still holds them."""
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    held: list[weakref.ref] = []
    freed_at_retry: list[bool] = []

    def make_image() -> str:
        if not held:
            activations = torch.ones(4096)  # a VAE decode's, say, on the GPU
            held.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        freed_at_retry.append(held[0]() is None)
        return "picture"

    notes: list[str] = []
    with fast_path.fast_job(plain_pipe, select_device("cpu"), None, False, {}, notes.append) as job:
        assert job.active
        assert job.run(make_image) == "picture"
    assert freed_at_retry == [True]
    assert notes[0].startswith("The GPU ran out of memory making the picture (OutOfMemoryError: CUDA out of memory")


def test_after_a_capture_runs_out_of_gpu_memory_the_eager_step_has_its_memory():
    """A failed capture's frames (its activations, its half-made graph) are let go before the eager step runs."""
    held: list[weakref.ref] = []

    def capture(step, cache):
        activations = torch.ones(4096)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    freed: list[bool] = []
    unet, failures = DoublingUNet(on_call=lambda: freed.append(bool(held) and held[0]() is None)), []
    graphed = GraphedUNet(unet, GraphCache(), capture, on_eager=failures.append, on_failure=failures.append)
    (out,) = graphed(torch.ones(1, 4, 8, 8), return_dict=False)
    assert torch.equal(out, torch.full((1, 4, 8, 8), 2.0))
    assert graphed.disabled and len(failures) == 1 and isinstance(failures[0], torch.OutOfMemoryError)
    assert freed == [True]


def stored_bytes(module: torch.nn.Module) -> int:
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in module.parameters()}
    return sum(storages.values())


def test_fused_projections_cost_no_memory_and_are_rebuilt_only_when_their_weights_change(tiny_model_dir):
    unet = tiny_unet(tiny_model_dir)
    before = stored_bytes(unet)
    layout = UNetLayout(unet)
    assert layout.fuse_qkv()
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    assert stored_bytes(unet) == before  # to_q/to_k/to_v are views of the fused rows
    fingerprint = layout.fingerprint()
    unet.set_attention_slice(None)  # what the next job's memory plan leaves: plain SDPA processors
    assert layout.fuse_qkv() and layout.fingerprint() == fingerprint  # same weights: captured graphs stay valid
    with torch.no_grad():
        unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1.to_q.weight.mul_(2)  # changed in place
    assert layout.fuse_qkv() and layout.fingerprint() != fingerprint  # rebuilt: graphs over it are dropped
    assert stored_bytes(unet) == before


def test_fusing_leaves_memory_plans_right_and_a_job_short_of_memory_gets_it_back(forced_on, generator, plain_pipe,
                                                                                tiny_model_dir):
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    studio_images(generator, request(tiny_model_dir))
    pipe = generator._model.text2img
    assert model_bytes(pipe) == model_bytes(plain_pipe)  # the fused layers are not counted twice
    state = fast_path_state.state_for(pipe.unet)
    attn = pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn1
    assert len(state.cache) == 1 and "to_qkv" in attn.__dict__
    notes: list[str] = []
    tight = MemoryPlan((SLICING, TILING), "The model fits but this job's size does not.")
    with fast_path.fast_job(pipe, select_device("cpu"), tight, False, {}, notes.append) as job:
        assert not job.active
    assert len(state.cache) == 0 and "to_qkv" in attn.__dict__  # the graphs' memory is given back
    low = MemoryPlan((SLICING, TILING, OFFLOAD), "Low VRAM is on.")
    with fast_path.fast_job(pipe, select_device("cpu"), low, False, {}, notes.append):
        pass
    assert "to_qkv" not in attn.__dict__  # offload will move the weights: the fused layers would stay behind
    assert notes[0].startswith("This job ran without the fast path: attention slicing is on")
    assert notes[1].startswith("This job ran without the fast path: model CPU offload")


def test_a_job_that_saves_memory_empties_the_allocator_s_cache_only_when_something_was_let_go(tiny_model_dir,
                                                                                               monkeypatch):
    """Emptying PyTorch's cache costs time, and the job's allocations are made again from the driver: a Low VRAM or
    sliced job does it only when the fast path let something go (its graphs, its bfloat16 VAE copy, its fused
    layers), not at every such job. A pretend CUDA whose cache emptying is counted."""
    from diffusers import AutoencoderKL

    emptied: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    pipe = SimpleNamespace(unet=tiny_unet(tiny_model_dir), vae=AutoencoderKL.from_pretrained(tiny_model_dir / "vae"))
    state = fast_path_state.state_for(pipe.unet)
    low = MemoryPlan((SLICING, TILING, OFFLOAD), "Low VRAM is on.")
    tight = MemoryPlan((SLICING, TILING), "The model fits but this job's size does not.")

    def job(plan: MemoryPlan) -> int:
        with fast_path.fast_job(pipe, select_device("cpu"), plan, False, {}, print):
            pass
        count = len(emptied)
        emptied.clear()
        return count

    assert state.layout.fuse_qkv() and job(tight) == 0  # nothing held (the fused layers cost nothing unoffloaded)
    assert job(low) == 1 and job(low) == 0  # the fused layers, dropped once
    state.bf16_vae(pipe.vae)
    assert job(tight) == 1 and job(tight) == 0  # the copy
    state.cache.put("a step's graph", object())
    assert job(low) == 1 and job(low) == 0  # the graphs


def test_the_speed_setting_chooses_the_options_and_the_environment_overrides_it():
    assert fast_path_choices.options_for("fast", {}) == fast_path_choices.FastPathOptions(enabled=True, compile=False)
    assert fast_path_choices.options_for("eager", {}) == fast_path_choices.FastPathOptions(enabled=False, compile=False)
    assert fast_path_choices.options_for("compile", {}) == fast_path_choices.FastPathOptions(enabled=True, compile=True)
    assert fast_path_choices.options_for("compile", {"STUDIO_FAST_PATH": "off"}).enabled is False
    assert menu_words(SPEED_STANDARD) in fast_path.platform_reason("cuda", fast_path_choices.options_for("eager", {}))


@pytest.mark.parametrize("inpainting_model", [False, True])
def test_inpainting_replays_a_captured_step_with_four_or_nine_latent_channels(forced_on, generator, inpainting_model,
                                                                               tiny_model_dir, tiny_inpaint_model_dir):
    """A masked job runs the UNet with the mask and masked picture beside the latents (9 channels) on an
    inpainting model, or blends latents around a 4-channel one: either way one graph, replayed every step."""
    forced_on.setattr(fast_path, "capture_cuda_graph", ReplayOnCpu)
    folder = tiny_inpaint_model_dir if inpainting_model else tiny_model_dir
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    req = request(folder, init_image=Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)),
                  mask=Image.fromarray(mask, "L"), strength=1.0, steps=3)
    forced_on.setattr(fast_path, "platform_reason", REAL_PLATFORM_REASON)
    (expected,), _ = studio_images(generator, req)
    forced_on.setattr(fast_path, "platform_reason", lambda kind, options: None)
    (image,), context = studio_images(generator, req)
    assert context.notes == []
    channels = 9 if inpainting_model else 4
    state = fast_path_state.state_for(generator._model.pipeline(inpaint=True).unet)
    (key, _seconds), = state.captures  # the masked area is worked on at its own size (engine.inpainting)
    assert key.startswith(f"{channels}x") and key.endswith("latents, 2 rows, float32")
    assert state.replays == req.steps
    assert np.abs(pixels(image) - pixels(expected)).max() <= 1


def test_a_picture_made_again_after_running_out_of_memory_still_decodes_sdxl_from_the_bfloat16_copy(forced_on,
                                                                                                    generator,
                                                                                                    tiny_sdxl_dir):
    """A picture that ran out of GPU memory in the fast path is made again with its steps eager. Its SDXL decode stays
    on the fast path's bfloat16 VAE copy: the pipeline's own float16 VAE would be upcast to float32 by diffusers,
    twice the copy's weights and twice a bfloat16 decode's activations, while the copy stayed on the GPU unused. (At
    SDXL's own 1024x1024 the tiled decode does not help: its VAE's tiles are 1024 pixels wide.) The rest of the job
    does the same, and the next job captures again. A pretend Ampere GPU, its torch calls stood in for."""
    from diffusers import AutoencoderKL
    from pretend_gpu import pretend_ampere_gpu

    pretend_ampere_gpu(forced_on)
    ran_out: list[int] = []

    class OutOfMemoryOnce(ReplayOnCpu):
        def replay(self) -> None:
            if not ran_out:
                ran_out.append(1)
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            super().replay()

    forced_on.setattr(fast_path, "capture_cuda_graph", OutOfMemoryOnce)
    decoded_in: list[torch.dtype] = []
    decode = AutoencoderKL.decode
    forced_on.setattr(AutoencoderKL, "decode", lambda vae, *args, **kwargs: decoded_in.append(vae.dtype) or
                      decode(vae, *args, **kwargs))
    req = request(tiny_sdxl_dir, batch_count=2)
    images, context = studio_images(generator, req)
    assert ran_out == [1]
    assert decoded_in == [torch.bfloat16, torch.bfloat16]  # the picture made again, and the next one
    notes = [note for note in context.notes if not note.startswith("Everything fits")]  # the memory plan's
    assert len(notes) == 1 and notes[0].startswith(
        "The GPU ran out of memory making the picture (OutOfMemoryError: CUDA out of memory"), notes
    pipe = generator._model.text2img
    state = fast_path_state.state_for(pipe.unet)
    assert pipe.vae.dtype == torch.float32 and state.vae_copy(pipe.vae) is not None  # its own back, the copy kept
    assert len(state.cache) == 0 and state.replays == 0  # the graphs were let go; the steps ran eagerly

    decoded_in.clear()
    again, context = studio_images(generator, req)  # the fast path whole: captured again, replayed
    assert context.notes[1:] == [] and len(state.cache) == 1 and state.replays == 2 * req.steps
    assert decoded_in == [torch.bfloat16, torch.bfloat16]
    for made_again, fast in zip(images, again, strict=True):  # eager steps, the same sums as the replayed ones
        assert np.array_equal(pixels(made_again), pixels(fast))
