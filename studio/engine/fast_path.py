"""The engine's fast path on CUDA: fused QKV attention, the UNet step as a CUDA graph, a faster VAE decode.

On by default on CUDA, off on MPS, and on the CPU only its bfloat16 precision (``cpu_precision``), where the
processor computes it; ``STUDIO_FAST_PATH=off`` turns it off, ``=compile`` also
runs the captured step through ``torch.compile`` (opt-in only: its warm-up took over six minutes on an H100).
A job runs it when nothing in the job needs the plain UNet (``job_reason``: offload, attention slicing,
unmerged LoRA layers, cross-attention options); such a job runs plain diffusers with a note, and any failure in
the fast path makes the job (or the rest of it) plain diffusers, with a note. Running out of GPU memory is not the
fast path's failure: the picture is made again, and the rest of the job made, with eager steps but the rest of the
fast path kept, its bfloat16 VAE copy included (half what diffusers' float32 decode of SDXL takes).

What it does for a job, all undone when the job ends, so LoRA/IP-Adapter loading sees the plain pipeline:
- attention: diffusers' SDPA processors with fused QKV projections (one GEMM instead of three). The fused
  layers stay between jobs, with the separate q/k/v layers turned into views of their rows (no extra
  memory), and are rebuilt only when those weights change, so the weights a captured graph reads stay put.
- precision: the UNet in float16, as loaded. The VAE in float16, except where float16 overflows
  (``force_upcast``, which SDXL pipelines honour by decoding in float32): there it decodes in bfloat16 on
  GPUs that have it (compute capability 8.0+; float32's range in half the bytes), from a bfloat16 copy kept
  next to the model (about 170 MB for SDXL's VAE). The memory plan counts it with the weights (``fast_path_memory``);
  it goes with the graphs when a job must save memory (offload, slicing) or the model is kept aside, and whenever a
  job decodes without it (it runs plain diffusers, or its VAE needs no copy). Older GPUs keep diffusers' float32
  decode.
- the VAE's weights in channels_last memory format, the layout cuDNN's half-precision convolutions prefer.
- the UNet step as a CUDA graph per input layout (``unet_graph``), kept across jobs, recaptured only when the layout
  or the weights change. The graphs' memory pool keeps a step's activations through the VAE decode: a job's plan
  counts what a new capture adds to it (``fast_path_memory.captures_new_step``). Studio's own LoRAs are merged into
  the weights in place (``loras``), so the graph reads them. A reference job's graph takes the image embeddings as one
  more input, and is kept beside the plain one, keyed by where its IP-Adapter's weights live; the adapter keeps its
  strength in those weights (``ip_adapter``), so a new strength is read, not recaptured. A ControlNet job's graph
  takes the ControlNet's residuals as more inputs (the ControlNet itself runs eagerly before each step), and is kept
  beside the plain one; outside a guide's step range diffusers still passes residuals, scaled to zero, so one graph
  serves every step. On the CPU with a stand-in capture (tiny model) its pictures matched the eager ones.

Same seed, same picture? Not bit for bit on a GPU, and that is expected: one fused GEMM sums in another
order than three separate ones; a graph replays the kernels picked at capture, which cuBLAS/cuDNN may pick
differently later; half-precision GEMMs accumulate with reduced precision; bfloat16 decoding rounds where
float32 did not. Each is about one rounding step per operation, carried through every denoising step.
The tolerance Studio accepts (for real, trained weights): mean absolute pixel difference <= 1/255 and
maximum <= 8/255 against plain diffusers. Measured so far only on the CPU (tiny random model): when the fast
path falls back, the picture is bitwise plain diffusers'; fused QKV with a stand-in capture that replays
from the static buffers differs by at most 1/255; a bfloat16 VAE by 0.42/255 on average, 2/255 at most.
The GPU figures are still to be measured (``studio bench`` prints the difference).
"""

from __future__ import annotations

import logging
import os
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from studio.core.errors import JobCancelledError, StudioError, first_line
from studio.engine.device import DeviceInfo, release_spare_memory
from studio.engine.fast_layout import UNetLayout, VaeLayout, bf16_copy
from studio.engine.memory import OFFLOAD, SLICING, MemoryPlan, upcasts_float16_vae
from studio.engine.unet_graph import GraphCache, GraphedUNet, capture_cuda_graph

log = logging.getLogger(__name__)
T = TypeVar("T")
ENV = "STUDIO_FAST_PATH"
COMPILE_MODE = "max-autotune-no-cudagraphs"  # the graph is ours; Inductor only fuses kernels


@dataclass(frozen=True)
class FastPathOptions:
    enabled: bool = True
    compile: bool = False  # torch.compile the captured step (minutes of warm-up per shape)
    graph_cache_size: int = 3  # captured graphs kept per model (they share one memory pool)


def options_from_env(environ: Mapping[str, str] = os.environ) -> FastPathOptions:
    value = environ.get(ENV, "on").strip().lower()
    return FastPathOptions(enabled=value not in ("0", "off", "false", "no", "eager"), compile=value == "compile")


def options_for(speed: str, environ: Mapping[str, str] = os.environ) -> FastPathOptions:
    """The person's Speed setting (fast | eager | compile); ``STUDIO_FAST_PATH``, when set, overrides it."""
    if ENV in environ:
        return options_from_env(environ)
    return FastPathOptions(enabled=speed != "eager", compile=speed == "compile")


@dataclass(frozen=True)
class DtypeChoice:
    unet: torch.dtype
    vae: torch.dtype | None  # None: the VAE runs as the pipeline runs it
    reason: str


def choose_dtypes(capability: tuple[int, int] | None, vae_upcast: bool) -> DtypeChoice:
    """float16 everywhere, but bfloat16 for a VAE that overflows in float16 (``vae_upcast``: its pipeline decodes it
    in float32, ``memory.upcasts_float16_vae``), where the GPU has bfloat16."""
    if not vae_upcast:
        return DtypeChoice(torch.float16, None, "float16 UNet and VAE")
    if capability is not None and capability >= (8, 0):
        return DtypeChoice(torch.float16, torch.bfloat16,
                           "float16 UNet; bfloat16 VAE, as float16 overflows in this VAE")
    return DtypeChoice(torch.float16, None, "float16 UNet; float32 VAE (it overflows in float16 and this GPU has no "
                                            "fast bfloat16)")


def platform_reason(device_kind: str, options: FastPathOptions) -> str | None:
    """Why the fast path is off on this device with these options (one sentence), or None when it is on."""
    if not options.enabled:
        return "The fast path is turned off (Settings → GPU → Plain diffusers), so jobs run plain diffusers."
    if device_kind == "cuda":
        return None
    if device_kind == "cpu":
        return ("The fast path's CUDA graphs are off on the CPU: they need a CUDA GPU. On the CPU it runs bfloat16 "
                "instead, where the processor has bfloat16 units (AMX or AVX-512 BF16).")
    return f"The fast path is off on {device_kind.upper()}: CUDA graphs and its half-precision kernels need a CUDA GPU."


def job_reason(pipe: Any, call_kwargs: Mapping[str, Any], measures: tuple[str, ...] = (),
               offloaded: bool = False, processors: list[str] | None = None) -> str | None:
    """Why this job cannot use the captured UNet step (a phrase), or None when it can.

    ``processors``: the class names of the UNet's attention processors, when already known.
    """
    unet = getattr(pipe, "unet", None)
    if not isinstance(unet, torch.nn.Module):
        return "this pipeline has no UNet to capture"
    if offloaded or OFFLOAD in measures or getattr(unet, "_hf_hook", None) is not None:
        return "model CPU offload moves the UNet's weights during the job, and a captured graph needs them in place"
    if processors is None:
        processors = [type(p).__name__ for p in getattr(unet, "attn_processors", {}).values()]
    if SLICING in measures or any("Sliced" in name for name in processors):
        return "attention slicing is on to save memory, and captured graphs would need more of it, not less"
    return reason_whatever_the_plan(unet, call_kwargs, processors)


def reason_whatever_the_plan(unet: torch.nn.Module, call_kwargs: Mapping[str, Any],
                              processors: list[str]) -> str | None:
    """Why the job cannot use the captured step whatever its memory plan decides (offload, slicing), or None."""
    # diffusers' LoRA loading (PEFT) sets it, unloading removes it; Studio merges and unloads, a plugin may not.
    if getattr(unet, "peft_config", None):
        return "LoRAs are attached, and their weights are Python numbers a captured graph would freeze"
    if call_kwargs.get("cross_attention_kwargs"):
        return "it passes cross-attention options, which a captured graph would freeze"
    if any("Added" in name for name in processors):
        return "this UNet's attention has added key/value projections the fast path does not handle"
    return None


class FastPathState:
    """What the fast path keeps for one UNet between jobs: options, layout, graphs, the bfloat16 VAE copy."""

    def __init__(self, unet: torch.nn.Module, options: FastPathOptions) -> None:
        self.options = options
        self.layout = UNetLayout(unet)
        self.cache = GraphCache(options.graph_cache_size)
        self.captures: list[tuple[str, float]] = []  # every capture so far: (input layout, seconds)
        self.replays = 0
        self.compiled: Callable[..., Any] | None = None
        self._vae: tuple[weakref.ref, Any] | None = None  # (the VAE it was made from, its bfloat16 copy)
        self._vae_layout: tuple[weakref.ref, VaeLayout] | None = None

    def bf16_vae(self, vae: Any) -> Any:
        if self.vae_copy(vae) is None:
            self._vae = None  # a copy of another VAE goes first: two would be on the GPU at once
            self._vae = (self._tied(vae, "_vae"), bf16_copy(vae))
        return self._vae[1]

    def vae_copy(self, vae: Any) -> Any | None:
        """The bfloat16 copy kept of ``vae``, if there is one."""
        return self._vae[1] if self._vae is not None and self._vae[0]() is vae else None

    def kept_vae_copy(self) -> Any | None:  # noqa: ANN401
        """The bfloat16 VAE copy kept (of whichever VAE), if there is one."""
        return self._vae[1] if self._vae is not None else None

    def kept_copy_bytes(self, device: DeviceInfo) -> int:
        """Bytes of the bfloat16 VAE copy kept (of whichever VAE) on ``device``; 0 when none is."""
        kept = self.kept_vae_copy()
        first = next(kept.parameters(), None) if kept is not None else None
        return bfloat16_bytes(kept) if first is not None and first.device == device.torch_device else 0

    def let_vae_copy_go(self) -> None:
        """A job that decodes without the copy lets it go: kept, it would stay on the GPU, used and counted by no one.
        Its memory stays in PyTorch's cache, where the job's own tensors take it."""
        self._vae = None

    def holds_memory(self) -> bool:
        """Whether it keeps captured graphs or a bfloat16 VAE copy."""
        return len(self.cache) > 0 or self._vae is not None

    def make_room(self, offload: bool) -> None:
        """Give memory back for a job whose memory plan had to save some, or a model kept aside: the graphs and
        the bfloat16 VAE copy (neither is used then; offload would leave the copy on the GPU), and with offload,
        the fused layers (their storage would stay on the GPU). The allocator's cache is emptied only when something
        went (the graphs' pools hand their blocks back only so): every Low VRAM job would pay for it, and its
        allocations would have to be made again."""
        went = self.holds_memory()
        self.cache.clear()
        self._vae = None
        if offload:
            went = self.layout.drop_fused() or went
        if went and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def vae_layout(self, vae: Any) -> VaeLayout:
        if self._vae_layout is None or self._vae_layout[0]() is not vae:
            self._vae_layout = (self._tied(vae, "_vae_layout"), VaeLayout(vae))
        return self._vae_layout[1]

    def _tied(self, vae: Any, entry: str) -> weakref.ref:  # noqa: ANN401
        """A weak reference to ``vae`` that lets this state's ``entry`` made for it go when the VAE goes: the
        copy and the layout's weights (which a layout holds) of a VAE let go (a job's VAE choice, freed) would stay
        on the GPU until a job with another VAE replaced them."""
        state = weakref.ref(self)

        def gone(ref: weakref.ref) -> None:
            owner = state()
            if owner is not None and getattr(owner, entry) is not None and getattr(owner, entry)[0] is ref:
                setattr(owner, entry, None)

        return weakref.ref(vae, gone)


_states: weakref.WeakKeyDictionary[torch.nn.Module, FastPathState] = weakref.WeakKeyDictionary()


def kept_state(unet: Any) -> FastPathState | None:  # noqa: ANN401
    """The fast-path state a UNet has, if any (none is made)."""
    return _states.get(unet) if isinstance(unet, torch.nn.Module) else None


def state_for(unet: torch.nn.Module, options: FastPathOptions | None = None) -> FastPathState:
    """The fast-path state of a UNet (it goes when the UNet does); ``options`` replace the ones it has."""
    state = _states.get(unet)
    if state is None or (options is not None and options != state.options):
        state = _states[unet] = FastPathState(unet, options or options_from_env())
    return state


def let_graphs_go(unet: torch.nn.Module) -> None:
    """The UNet's captured steps (and bfloat16 VAE copy) give their memory back: for a model kept aside on the GPU,
    whose graphs' pool the next model cannot use (nor does the memory plan count it as free:
    ``memory.graph_pools_free``)."""
    state = _states.get(unet)
    if state is not None and state.holds_memory():
        state.make_room(offload=False)


def bfloat16_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters()) * torch.finfo(torch.bfloat16).bits // 8


def dtypes_for(pipe: Any, device: DeviceInfo) -> DtypeChoice:  # noqa: ANN401
    """The precisions the fast path runs the pipeline's UNet and VAE in on ``device``."""
    capability = torch.cuda.get_device_capability(device.torch_device) if device.kind == "cuda" else None
    return choose_dtypes(capability, upcasts_float16_vae(pipe))  # the fast path runs the VAE in float16


@dataclass
class PreparedPipeline:
    """What ``prepare_pipeline`` changed, so ``release`` can put it back."""

    pipe: Any
    layout: UNetLayout
    processors: list[Any]  # the attention processors before the job
    dtypes: DtypeChoice | None = None
    graphed: GraphedUNet | None = None
    swapped_vae: Any = None  # the pipeline's own VAE while a bfloat16 copy stands in
    channels_last_vae: VaeLayout | None = None  # the VAE turned channels_last (turned back on release)


def prepare_pipeline(pipe: Any, device: DeviceInfo, state: FastPathState,
                     on_eager: Callable[[str], None], on_failure: Callable[[BaseException], None]) -> PreparedPipeline:
    """Switch the pipeline to the fast path for one job; on any error, undo what was done and raise."""
    unet, layout = pipe.unet, state.layout
    prepared = PreparedPipeline(pipe, layout, layout.processors())
    try:
        if not layout.fuse_qkv():
            layout.ensure_sdpa()
        vae = pipe.vae
        prepared.dtypes = dtypes_for(pipe, device)
        if prepared.dtypes.vae is not None:
            prepared.swapped_vae = vae
            pipe.vae = state.bf16_vae(vae)
        else:
            prepared.channels_last_vae = state.vae_layout(vae)
            prepared.channels_last_vae.set_format(torch.channels_last)
        if not state.cache.check(layout.fingerprint()):
            log.info("Fast path: new weights, so no captured graph is reused")
        step = _compiled_step(state, unet) if state.options.compile else None
        prepared.graphed = GraphedUNet(unet, state.cache, capture_cuda_graph, on_eager, on_failure, step,
                                       layout.attention_key())
        unet.forward = prepared.graphed
    except BaseException:
        release(prepared, state)
        raise
    return prepared


def release(prepared: PreparedPipeline, state: FastPathState | None = None) -> None:
    """Put the pipeline back as ``prepare_pipeline`` found it (graphs stay cached in the state)."""
    unet, graphed = prepared.pipe.unet, prepared.graphed
    if graphed is not None and unet.__dict__.get("forward") is graphed:
        del unet.forward
    prepared.layout.set_processors(prepared.processors)
    if prepared.swapped_vae is not None:
        prepared.pipe.vae = prepared.swapped_vae
    if prepared.channels_last_vae is not None:
        prepared.channels_last_vae.set_format(torch.contiguous_format)
    if state is not None and graphed is not None:
        state.captures.extend(graphed.captures)
        state.replays += graphed.replays
        graphed.captures, graphed.replays = [], 0


def _unet_forward(unet: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    return type(unet).forward(unet, *args, **kwargs)


def _compiled_step(state: FastPathState, unet: torch.nn.Module) -> Callable[..., Any]:
    if state.compiled is None:
        state.compiled = torch.compile(_unet_forward, mode=COMPILE_MODE)
    compiled = state.compiled
    return lambda *args, **kwargs: compiled(unet, *args, **kwargs)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__


class FastJob:
    """The fast path for one job. ``run(make_image)`` makes a picture with it, or eagerly after any failure."""

    def __init__(self, pipe: Any, device: DeviceInfo, note: Callable[[str], None], off: str | None,
                 eager: str | None, state: FastPathState | None = None) -> None:
        self.note = note
        self.reason = off or (f"This job ran without the fast path: {eager}." if eager else None)
        self.prepared: PreparedPipeline | None = None
        self.state = state
        if off is not None:
            log.debug(off)
            return
        if eager is not None:
            note(self.reason)
            return
        self.state = state or state_for(pipe.unet)
        try:
            self.prepared = prepare_pipeline(pipe, device, self.state, self._graph_skipped, self._capture_failed)
        except Exception as exc:  # noqa: BLE001 - the job goes on without it
            self._fail("preparing the pipeline", exc)

    @property
    def active(self) -> bool:
        return self.prepared is not None

    def run(self, make_image: Callable[[], T]) -> T:
        if self.prepared is None:
            return make_image()
        try:
            return make_image()
        except (JobCancelledError, StudioError):
            raise
        except Exception as exc:
            if self.prepared is None:  # the fast path was dropped during this picture: the failure is not its own
                raise
            out_of_memory = isinstance(exc, torch.OutOfMemoryError)
            if out_of_memory:
                self._out_of_memory(exc)
            else:
                self._fail("making the picture", exc)
        # Retried out of the except clause, its frames cleared: the traceback would keep the failed picture's tensors
        # (a VAE decode's activations) on the GPU through the retry.
        if out_of_memory:
            self.let_graphs_go()  # the graphs' memory, before the eager retry needs the room
            release_spare_memory(None)  # and a model kept aside for switching back
            torch.cuda.empty_cache()
        return make_image()

    @property
    def own_vae(self) -> Any:  # noqa: ANN401
        """The pipeline's own VAE while the bfloat16 copy stands in for it (it gets it back if the fast path is
        dropped mid-job), else None."""
        return self.prepared.swapped_vae if self.prepared is not None else None

    def let_graphs_go(self) -> None:
        """Mid-job, the captured steps give their memory pool back (to a VAE decode that ran out of memory after the
        steps) and the rest of the job runs its steps eagerly: captured again, they would take the memory back from
        the next picture's decode. The next job captures them again, in a new pool. The caller empties the cache."""
        if self.prepared is not None and self.prepared.graphed is not None:
            self.prepared.graphed.disabled = True
        if self.state is not None and len(self.state.cache):
            log.info("Fast path: the captured steps were let go to make room for the VAE")
            self.state.cache.clear()

    def close(self) -> None:
        prepared, self.prepared = self.prepared, None
        if prepared is not None:
            release(prepared, self.state)

    def _graph_skipped(self, why: str) -> None:
        self.reason = f"This job ran without the captured UNet step: {why}."
        self.note(self.reason)

    def _capture_failed(self, exc: BaseException) -> None:
        self._fail("capturing the UNet step", exc)

    def _out_of_memory(self, exc: BaseException) -> None:
        """The picture ran out of GPU memory: the rest of the job runs its steps eagerly (``let_graphs_go``), the rest
        of the fast path kept. It costs no memory of its own but the graphs', and its bfloat16 VAE copy decodes SDXL
        in half the memory of diffusers' float32 upcast of the pipeline's own VAE (weights and activations both)."""
        log.warning("Out of GPU memory with the fast path; making the picture again without its graphs", exc_info=exc)
        traceback.clear_frames(exc.__traceback__)
        self.reason = (f"The GPU ran out of memory making the picture ({_first_line(exc)}), so it was made again "
                       "with the UNet steps run one by one, without their captured graphs.")
        self.note(self.reason)

    def _fail(self, what: str, exc: BaseException) -> None:
        log.warning("Fast path failed while %s", what, exc_info=exc)
        # Whoever keeps the exception (a log handler, the caller) must not keep its frames' GPU tensors with it.
        traceback.clear_frames(exc.__traceback__)
        try:
            self.close()
        except Exception:
            log.exception("Undoing the fast path failed")
        self.reason = (f"The fast path failed while {what} ({_first_line(exc)}), so this job ran plain "
                       "diffusers instead.")
        self.note(self.reason)


@contextmanager
def fast_job(pipe: Any, device: DeviceInfo, plan: MemoryPlan | None, offloaded: bool,
             call_kwargs: Mapping[str, Any], note: Callable[[str], None],
             options: FastPathOptions | None = None) -> Iterator[FastJob]:
    """The fast path for the pictures of one job, when the device, the settings and the job allow it.
    ``options`` (from the Speed setting) replace the UNet's if they differ; None keeps what it has."""
    unet = getattr(pipe, "unet", None)
    state = _states.get(unet) if isinstance(unet, torch.nn.Module) else None
    wanted = options or (state.options if state is not None else options_from_env())
    off = platform_reason(device.kind, wanted)
    measures = plan.measures if plan else ()
    if state is not None and (offloaded or OFFLOAD in measures or SLICING in measures):
        state.make_room(offload=offloaded or OFFLOAD in measures)
    eager = None
    if off is None:
        state = state_for(unet, wanted) if isinstance(unet, torch.nn.Module) else None
        names = state.layout.processor_names() if state is not None else None
        eager = job_reason(pipe, call_kwargs, measures, offloaded, names)
    job = FastJob(pipe, device, note, off, eager, state)
    if job.state is not None and job.own_vae is None:  # the job decodes with the pipeline's own VAE
        job.state.let_vae_copy_go()
    try:
        yield job
    finally:
        job.close()
