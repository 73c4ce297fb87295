"""A pretend CUDA GPU on the CPU, for what the fast path keeps between jobs (Models in Memory lists it).

Jobs run on the CPU while the engine takes the device for an Ampere GPU: the fast path is on, its captures are stood
in for (``ReplayOnCpu``), each new set of graphs gets a memory pool the way ``torch.cuda.graph_pool_handle`` gives one
(a pair of ints), and PyTorch's memory snapshot lists that pool's segment.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from studio_testing import ReplayOnCpu

from studio.engine import diffusion, fast_path, fast_path_choices
from studio.engine.device import DeviceInfo
from studio.engine.memory import GIB


def pretend_ampere_gpu(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Jobs from now on take the device for an Ampere GPU with 80 GB free (they run on the CPU; captures are the
    caller's to stand in for). Returns PyTorch's memory snapshot's segments, empty until the caller adds some."""
    pretend_gpu = DeviceInfo("cuda", torch.device("cpu"), torch.float32, "pretend CUDA")
    monkeypatch.setattr(diffusion, "job_device", lambda device, fast, precision="": pretend_gpu)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (8, 6))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 0)
    segments: list[dict] = []
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: list(segments))
    return segments


def fast_path_on_pretend_gpu(monkeypatch: pytest.MonkeyPatch, pool_bytes: int,
                             bfloat16_vae: bool = False) -> list[dict]:
    """Jobs from now on run the fast path on a pretend Ampere GPU; each graph pool made holds ``pool_bytes``. With
    ``bfloat16_vae``, every model's VAE decodes from a bfloat16 copy (as SDXL's does). Returns the snapshot's
    segments (the allocator's own pool is not listed)."""
    segments = pretend_ampere_gpu(monkeypatch)
    pools = ((n, 0) for n in itertools.count(1))

    def capture(step, cache) -> ReplayOnCpu:  # noqa: ANN001 - unet_graph.CaptureFn's arguments
        if cache.pool is None:  # as capture_cuda_graph makes one at the first capture
            cache.pool = next(pools)
            segments.append({"device": 0, "segment_pool_id": cache.pool, "total_size": pool_bytes,
                             "allocated_size": pool_bytes // 4})
        return ReplayOnCpu(step, cache)

    monkeypatch.setattr(fast_path, "capture_cuda_graph", capture)
    if bfloat16_vae:
        monkeypatch.setattr(fast_path, "choose_dtypes", lambda *args: fast_path_choices.DtypeChoice(
            torch.float16, torch.bfloat16, "bfloat16 VAE, as for SDXL on an Ampere GPU"))
    return segments
