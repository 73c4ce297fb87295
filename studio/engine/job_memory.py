"""Planning a job's memory: what it needs against the free VRAM, and what Studio lets go for room (a kept depth
model, unused ControlNets, models kept for switching back) before taking measures (offloading, slicing, tiling)."""

from __future__ import annotations

from typing import Any

from studio.core.generation import JobContext
from studio.core.requests import GenerationRequest
from studio.engine import depth_maps
from studio.engine.control_nets import ControlNets
from studio.engine.device import DeviceInfo, hand_back
from studio.engine.fast_path_choices import options_for
from studio.engine.fast_path_memory import captures_new_step, vae_copy_bytes
from studio.engine.memory import (
    MemoryPlan,
    decode_element_size,
    free_vram,
    graph_pools_free,
    job_bytes,
    model_bytes,
    plan_memory,
    resident_bytes,
)
from studio.engine.model_keeping import KeptModels


def plan_job_memory(request: GenerationRequest, pipe: Any, call_kwargs: dict[str, Any], context: JobContext,
                    device: DeviceInfo, controls: ControlNets, kept: KeptModels, extra: int = 0) -> MemoryPlan:
    """Estimate what the job needs against the free VRAM, letting kept parts go (each said) while that saves a
    measure; returns the plan, whose measures the caller applies (apply_plan). ``call_kwargs``: the pipeline's
    arguments (some make the job run without the fast path); ``extra``: bytes of weights the job will add (a
    reference picture's adapter). ``controls`` and ``kept``: the generator's ControlNets and models kept for
    switching back."""
    # The fast path's bfloat16 VAE copy (SDXL on a recent GPU) is on the GPU beside the weights while it runs;
    # a job without the fast path decodes SDXL in float32, and lets a copy kept from the job before go.
    options = options_for(request.speed)
    vae_copy, vae_copy_there = vae_copy_bytes(pipe, device, options, call_kwargs)
    # Read once for all the plans below (PyTorch's snapshot walks every segment): what they let go holds no
    # captured graph (a kept model's went when it was kept), so those pools stay as they are meanwhile.
    in_graph_pools = graph_pools_free(device)
    # A new capture's graph pool keeps its step's activations through the decode.
    rows = 2 if request.cfg_scale > 1 else 1
    captures = captures_new_step(pipe, device, options, call_kwargs, request.width, request.height, rows)
    activations = job_bytes(request.width, request.height, device.dtype.itemsize,
                            decode_element_size(pipe, device, bfloat16_copy=vae_copy > 0),
                            in_graph_pools if captures else None)
    # It and resident_bytes walk every parameter: once, however often planned.
    weights = model_bytes(pipe) + extra + vae_copy
    # The model's own weights on the GPU already (from its last job) are in ``weights``: not out of the free
    # memory too, or a model that fits would be sliced or offloaded from its second job on.
    resident = resident_bytes(pipe, device) + vae_copy_there

    def plan() -> MemoryPlan:
        free = free_vram(device, in_graph_pools)
        return plan_memory(request.memory, device, weights, activations, None if free is None else free + resident)

    # What is already on the device (a depth model that made this job's maps) is out of the free VRAM measured.
    job_plan = plan()
    if (job_plan.measures or not job_plan.fits) and depth_maps.let_gpu_copies_go():
        context.note("The depth model, kept from making depth maps, was let go to make room on the GPU.")
        hand_back(device)
        job_plan = plan()
    if (job_plan.measures or not job_plan.fits) and controls.let_unused_go(pipe):
        context.note("ControlNets kept from an earlier job were let go to make room on the GPU.")
        hand_back(device)
        job_plan = plan()
    # A model kept for switching back must not cost this job a measure: the oldest goes, the plan is redone.
    while (job_plan.measures or not job_plan.fits) and (oldest := kept.let_oldest_on_gpu_go()):
        context.note(f"{oldest.name}, kept loaded for switching back, was let go to make room on the GPU.")
        oldest = None  # no reference here may keep its memory from the collection
        hand_back(device)
        job_plan = plan()
    return job_plan
