"""Fitting a job into the GPU memory the person has: estimate first, then pick the measures.

The setting is auto / high / low VRAM. High keeps everything on the GPU in half precision; low turns on
every measure diffusers has (attention slicing, VAE tiling, model CPU offload); auto estimates what the
model and this job need against the free VRAM and takes the least measure that fits. The estimate is
rough on purpose (weights are exact, activations are a rule of thumb), and the reason is said aloud.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from studio.engine.device import DeviceInfo, dtype_name

GIB = 2**30
HEADROOM = 1.15  # CUDA context, allocator fragmentation and the scheduler's own tensors
SLICING = "attention slicing"
TILING = "VAE tiling"
OFFLOAD = "model CPU offload"
COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "image_encoder")  # the parts that hold weights


@dataclass(frozen=True)
class MemoryPlan:
    measures: tuple[str, ...]  # what is turned on, in words; empty: everything on the device as it is
    reason: str  # one sentence: which measures and why
    model_bytes: int = 0
    job_bytes: int = 0
    free_bytes: int | None = None  # None when the device does not say (CPU, MPS)

    @property
    def offload(self) -> bool:
        return OFFLOAD in self.measures

    @property
    def fits(self) -> bool:
        """Whether the weights and the job fit in the free VRAM as they are (True where it is not known)."""
        return self.free_bytes is None or int((self.model_bytes + self.job_bytes) * HEADROOM) <= self.free_bytes


def weight_parts(pipe: Any) -> list[Any]:
    """The pipeline's modules that hold weights (UNet first, VAE, text encoders, image encoder)."""
    parts = (getattr(pipe, name, None) for name in COMPONENTS)
    return [part for part in parts if part is not None and hasattr(part, "parameters")]


def model_bytes(pipe: Any) -> int:
    """Bytes of the pipeline's weights (UNet, VAE, text encoders) in their current dtype."""
    return sum(p.numel() * p.element_size() for part in weight_parts(pipe) for p in part.parameters())


def resident_bytes(pipe: Any, device: DeviceInfo) -> int:
    """Bytes of the pipeline's weights already on ``device`` (a model kept there from the job before): they are out
    of the free VRAM measured and in ``model_bytes``, so the plan counts them as free."""
    return sum(p.numel() * p.element_size() for part in weight_parts(pipe) for p in part.parameters()
               if p.device == device.torch_device)


def job_bytes(width: int, height: int, element_size: int, decode_element_size: int | None = None,
              graph_pools_free: int | None = None) -> int:
    """Peak activations of one image: the UNet with CFG (two rows) and the VAE decode, whichever is larger. A batch
    needs no more: its pictures are made one after another, each by its own pipeline call.
    ``decode_element_size``: where the decode computes in another precision than the UNet (``decode_element_size``).
    ``graph_pools_free``: where the job captures a UNet step of a size no kept graph has, the bytes free in the
    captured graphs' pools (``graph_pools_free``). The capture keeps its step's activations in that pool, beyond
    what is free there, and the pool stays through the job's VAE decode (the graph is kept for the next job): the
    decode needs its own room beside that.

    Rules of thumb from the SD/SDXL architectures with SDPA attention: the UNet keeps about 40 tensors of
    (latent cells x 320 channels) alive; the VAE decoder about 6 of (pixels x 128 channels).
    """
    cells = (width // 8) * (height // 8)
    unet = 2 * cells * 320 * 40 * element_size
    vae = width * height * 128 * 6 * (decode_element_size or element_size)
    pool_growth = 0 if graph_pools_free is None else max(0, unet - graph_pools_free)
    return max(unet, pool_growth + vae)


def upcasts_float16_vae(pipe: Any) -> bool:  # noqa: ANN401
    """Whether the pipeline decodes its VAE in float32 when the VAE is in float16: SDXL's pipelines do for a VAE that
    overflows in float16 (its config's ``force_upcast``: SDXL's own; ``upcast_vae``). The one place that says so, for
    the memory plan (``decode_element_size``) and the fast path (which decodes such a VAE from a bfloat16 copy)."""
    force_upcast = bool(getattr(getattr(getattr(pipe, "vae", None), "config", None), "force_upcast", False))
    return force_upcast and "StableDiffusionXL" in type(pipe).__name__


@contextmanager
def vae_precision_kept(pipe: Any) -> Iterator[None]:  # noqa: ANN401
    """The pipeline's VAE is in its own precision after the call, whatever happened in it. SDXL's pipelines upcast a
    float16 VAE to float32 for the decode and cast it back after; a decode that fails (out of memory) skips the cast
    back, and the VAE stayed in float32, twice its weights, for every later job of the model (the fast path's retry
    made the picture again with it)."""
    vae = getattr(pipe, "vae", None)
    weight = next(vae.parameters(), None) if hasattr(vae, "parameters") else None
    dtype = None if weight is None else weight.dtype  # (``to`` changes the same Parameter objects in place)
    try:
        yield
    finally:
        if dtype is not None and next(vae.parameters()).dtype != dtype:
            vae.to(dtype=dtype)


def decode_element_size(pipe: Any, device: DeviceInfo, bfloat16_copy: bool = False) -> int:  # noqa: ANN401
    """Bytes per number in the job's VAE decode: float32's for a float16 VAE its pipeline upcasts
    (``upcasts_float16_vae``), twice float16's activations, unless the fast path decodes from its bfloat16 copy
    (``bfloat16_copy``); other VAEs decode in their own precision."""
    import torch

    vae = getattr(pipe, "vae", None)
    weight = next(vae.parameters(), None) if hasattr(vae, "parameters") else None
    if weight is None:
        return device.dtype.itemsize
    if weight.dtype == torch.float16 and upcasts_float16_vae(pipe):
        return torch.bfloat16.itemsize if bfloat16_copy else torch.float32.itemsize
    return weight.element_size()


def plan_memory(mode: str, device: DeviceInfo, weights: int, activations: int, free: int | None) -> MemoryPlan:
    """The measures for one job on ``device`` with ``free`` bytes of VRAM (None: unknown)."""
    if device.kind == "cpu":
        return MemoryPlan((), f"Running on the CPU in {dtype_name(device.dtype)}: system memory, so "
                              "no VRAM measure applies.",
                          weights, activations)
    if mode == "low":
        return MemoryPlan((SLICING, TILING, OFFLOAD),
                          "Low VRAM is on: attention slicing, VAE tiling and model CPU offload (slower, but needs "
                          f"about {gb(max(activations, weights // 3))} instead of {gb(weights + activations)}).",
                          weights, activations, free)
    if free is None:
        return MemoryPlan((), f"High VRAM: everything stays on the {device.kind.upper()} device "
                              "(it does not report free memory).", weights, activations, free)
    needed = int((weights + activations) * HEADROOM)
    if mode == "high":
        warning = "" if needed <= free else (f"; it may not fit (about {gb(needed)} needed, {gb(free)} free) — "
                                             "switch Memory to Low VRAM if it fails")
        return MemoryPlan((), f"High VRAM: everything stays on the GPU{warning}.", weights, activations, free)
    if needed <= free:
        return MemoryPlan((), f"Everything fits on the GPU: about {gb(needed)} needed, {gb(free)} free.",
                          weights, activations, free)
    if weights * HEADROOM + activations / 4 <= free:
        return MemoryPlan((SLICING, TILING),
                          f"The model fits but this job's size does not (about {gb(needed)} needed, {gb(free)} "
                          "free): using attention slicing and VAE tiling.", weights, activations, free)
    return MemoryPlan((SLICING, TILING, OFFLOAD),
                      f"The model does not fit in the free VRAM (weights {gb(weights)}, {gb(free)} free): using "
                      "model CPU offload, attention slicing and VAE tiling; it is slower.", weights, activations,
                      free)


def free_vram(device: DeviceInfo, in_graph_pools: int | None = None) -> int | None:
    """Free bytes on the CUDA device, counting what PyTorch's cache holds free for any use, else None.

    ``in_graph_pools``: ``graph_pools_free(device)``, where the caller has it from earlier in the same plan (None: read
    now); PyTorch's memory snapshot walks every segment, so a plan made again and again reads it once."""
    if device.kind != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(device.torch_device)
    cached = torch.cuda.memory_reserved(device.torch_device) - torch.cuda.memory_allocated(device.torch_device)
    if in_graph_pools is None:
        in_graph_pools = graph_pools_free(device)
    return int(free + max(0, cached - in_graph_pools))


def graph_pools_free(device: DeviceInfo) -> int:
    """Bytes free in the captured graphs' own memory pools: a step's temporaries, which every replay writes again, so
    free to no one else (counted as free, a job planned to fit ran out of memory in its VAE decode). 0 off CUDA."""
    if device.kind != "cuda":
        return 0
    import torch

    index = device.torch_device.index or 0
    return sum(segment["total_size"] - segment["allocated_size"] for segment in torch.cuda.memory_snapshot()
               if tuple(segment.get("segment_pool_id", (0, 0))) != (0, 0) and segment.get("device", index) == index)


def apply_plan(pipe: Any, plan: MemoryPlan, device: DeviceInfo, offloaded: bool,
               sliced: bool | None = None) -> tuple[bool, bool]:
    """Turn the plan's measures on and the others off; returns (CPU-offloaded now, attention sliced now).

    ``sliced`` is what the last job left (None: unknown): switching slicing walks every attention layer,
    so it is only done when it changes. A pipeline without one of diffusers' switches (a stand-in, a
    custom pipeline) simply goes without it.
    """
    slicing = SLICING in plan.measures
    switch = getattr(pipe, "enable_attention_slicing" if slicing else "disable_attention_slicing", None)
    if switch is not None and sliced is not slicing:
        switch()
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        vae.enable_tiling() if TILING in plan.measures else vae.disable_tiling()
    if plan.offload and not offloaded and hasattr(pipe, "enable_model_cpu_offload"):
        pipe.enable_model_cpu_offload(device=device.torch_device)
        # The weights now live on the CPU between their runs: copied once out of the model's file pages, or a file
        # cut short in place would be SIGBUS at the next move to the GPU.
        own_weights(pipe)
        return True, slicing
    if not plan.offload and offloaded:
        pipe.remove_all_hooks()
    if not plan.offload and hasattr(pipe, "to"):
        # Moving a pipeline walks every module (30-40 ms in diffusers): only when a part is elsewhere (a VAE
        # put back after an override job may be).
        if not _on_device(pipe, device):
            pipe.to(device.torch_device)
        return False, slicing
    return offloaded, slicing


def _on_device(pipe: Any, device: DeviceInfo) -> bool:
    for name in COMPONENTS:
        module = getattr(pipe, name, None)
        first = next(module.parameters(), None) if hasattr(module, "parameters") else None
        if first is not None and first.device != device.torch_device:
            return False
    return True


def oom_advice(plan: MemoryPlan | None, width: int, height: int) -> str:
    """What to change after the GPU ran out of memory, given what was already tried."""
    tried = plan.measures if plan is not None else ()
    if OFFLOAD not in tried:
        return "switch Memory to Low VRAM in Settings (CPU offload and VAE tiling), or make a smaller image"
    smaller = f"{max(64, width * 3 // 4 // 8 * 8)}x{max(64, height * 3 // 4 // 8 * 8)}"
    # Not "a batch of 1": a batch's pictures are made one at a time, so it needs no more memory than one.
    return f"even with Low VRAM measures it did not fit; try {smaller}, or close other programs using the GPU"


def gb(size: int) -> str:
    return f"{size / GIB:.1f} GB"


# Where CPU weights live. safetensors maps a model's files: weights nothing copied are pages of those files, and a
# file cut short in place while Studio runs turns the next read of them into SIGBUS.

def borrowed_weights(weights: Any) -> Iterator[Any]:  # noqa: ANN401 - a diffusers pipeline or a torch module
    """The CPU weights of a pipeline (each of its components) or of one torch module (an add-on: a ControlNet, a
    VAE, an image encoder) in memory torch did not allocate: pages of the model's files (safetensors maps them)
    where nothing copied them (``own_weights`` does, for what stays on the CPU)."""
    import torch

    modules = weights.components.values() if hasattr(weights, "components") else [weights]
    for module in modules:
        if isinstance(module, torch.nn.Module):
            for tensor in (*module.parameters(), *module.buffers()):
                # torch can resize the memory it allocates itself, never a mapped file's pages or a foreign buffer
                if tensor.device.type == "cpu" and not tensor.untyped_storage().resizable():
                    yield tensor


def own_weights(weights: Any) -> int:  # noqa: ANN401 - a diffusers pipeline or a torch module
    """Copy into the process's own memory, one at a time, the CPU weights of a pipeline or of one module (an
    add-on model) that are still pages of the model's files (safetensors maps them): a file cut short in place
    while a job runs would otherwise kill Studio with SIGBUS at the next read of those pages. Tensors converted
    while loading (another precision) own their memory already, and weights on a GPU hold no pages: both are left
    as they are. Returns the bytes copied."""
    copied = 0
    for tensor in list(borrowed_weights(weights)):
        tensor.data = tensor.data.clone()
        copied += tensor.nbytes
    return copied
