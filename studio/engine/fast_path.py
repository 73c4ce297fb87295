"""The engine's fast path on CUDA: fused QKV attention, the UNet step as a CUDA graph, a faster VAE decode.

On by default on CUDA, off on MPS, and on the CPU only its bfloat16 precision (``cpu_precision``), where the
processor computes it; ``STUDIO_FAST_PATH=off`` turns it off, ``=compile`` also
runs the captured step through ``torch.compile`` (opt-in only: its warm-up took over six minutes on an H100).
A job runs it when nothing in the job needs the plain UNet (``job_reason``: offload, attention slicing,
unmerged LoRA layers, cross-attention options); such a job runs plain diffusers with a note, and any failure in
the fast path makes the job (or the rest of it) plain diffusers, with a note. Running out of GPU memory is not the
fast path's failure: the picture is made again, and the rest of the job made, with eager steps but the rest of the
fast path kept, its bfloat16 VAE copy included (half what diffusers' float32 decode of SDXL takes).
When it runs and in what precision is chosen in ``fast_path_choices``; what it keeps for a UNet between jobs is
``fast_path_state``.

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
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from studio.core.errors import JobCancelledError, StudioError, first_line
from studio.engine.device import DeviceInfo, release_spare_memory
from studio.engine.fast_layout import UNetLayout, VaeLayout
# platform_reason and choose_dtypes are looked up here: a test stands them in on this module.
from studio.engine.fast_path_choices import (
    DtypeChoice,
    FastPathOptions,
    choose_dtypes,
    job_reason,
    options_from_env,
    platform_reason,
)
from studio.engine.fast_path_state import FastPathState, kept_state, state_for
from studio.engine.memory import OFFLOAD, SLICING, MemoryPlan, upcasts_float16_vae
from studio.engine.unet_graph import GraphedUNet, capture_cuda_graph

log = logging.getLogger(__name__)
T = TypeVar("T")
COMPILE_MODE = "max-autotune-no-cudagraphs"  # the graph is ours; Inductor only fuses kernels




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
    state = kept_state(unet)
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
