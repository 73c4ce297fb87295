"""The UNet step as a CUDA graph: static input buffers, one captured graph per input layout, replayed each step.

A denoising step on a fast GPU is bound by Python and kernel launches, not FLOPs (see DESIGN.md): replaying
a captured graph launches the whole UNet at once. ``GraphedUNet`` stands in for ``unet.forward`` for one
job. Each call's inputs are reduced to a key (the nesting of the arguments, every tensor's shape and dtype,
every None/bool/str): the latent shape, the batch rows (batch x 2 with CFG, x 1 without), the dtype and the
conditioning layout. The first call with a key captures a graph over static copies of the inputs; later calls
copy their inputs into those buffers and replay. ``GraphCache`` keeps the last few keys (LRU) so memory stays
bounded, and drops every graph when the weights behind them move (a new model, re-fused projections).

Only ``capture_cuda_graph`` touches CUDA graphs. Keys, the cache, the buffer copying and every fallback run
on any device, so they are tested on the CPU with a stand-in capture function.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from studio.engine.device import dtype_name

log = logging.getLogger(__name__)

WARMUP_RUNS = 3  # eager runs on a side stream before capture: cuBLAS/cuDNN pick and cache their kernels


class Unsupported(Exception):
    """An input a captured graph cannot take; the message says which, as a phrase."""


@dataclass(frozen=True)
class _Slot:
    index: int
    shape: tuple[int, ...]
    dtype: torch.dtype


@dataclass(frozen=True)
class _Node:
    kind: str  # "dict" | "list" | "tuple"
    items: tuple[tuple[Hashable, Any], ...]


@dataclass(frozen=True)
class GraphKey:
    """Everything a captured graph is specific to; equal keys replay the same graph."""

    template: Any  # (args, kwargs) with tensors replaced by _Slot
    attention: Hashable = None  # the attention that runs (UNetLayout.attention_key): an IP-Adapter's weights

    @property
    def latents(self) -> _Slot | None:
        """The first input's shape and dtype (the latents: rows, channels, height, width), if it has one."""
        return _first_slot(self.template)

    def describe(self) -> str:
        first = self.latents
        if first is None or len(first.shape) != 4:
            return "this input layout"
        rows, channels, height, width = first.shape
        dtype = dtype_name(first.dtype)
        text = f"{channels}x{height}x{width} latents, {rows} row{'s' * (rows != 1)}, {dtype}"
        text += ", with a reference picture" * _has_key(self.template, "image_embeds")
        return text + ", with control guides" * _has_key(self.template, "mid_block_additional_residual")


def graph_key(args: tuple[Any, ...], kwargs: dict[str, Any],
              attention: Hashable = None) -> tuple[GraphKey, list[torch.Tensor]]:
    """The key of a UNet call and its tensors in slot order; Unsupported for inputs a graph would freeze."""
    leaves: list[torch.Tensor] = []
    positional = _Node("tuple", tuple((i, _template(v, leaves, f"argument {i + 1}")) for i, v in enumerate(args)))
    template = (positional, _template(kwargs, leaves, ""))
    if not leaves:
        raise Unsupported("the UNet was called without tensors")
    return GraphKey(template, attention), leaves


def _template(value: Any, leaves: list[torch.Tensor], path: str) -> Any:
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return _Slot(len(leaves) - 1, tuple(value.shape), value.dtype)
    if value is None or isinstance(value, (bool, str)):
        return value  # part of the key: a different flag needs a different graph
    if isinstance(value, dict):
        return _Node("dict", tuple((k, _template(v, leaves, path or str(k))) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return _Node(kind, tuple((i, _template(v, leaves, path)) for i, v in enumerate(value)))
    # A Python number (a LoRA scale, a float timestep) would be baked into the graph as a constant.
    raise Unsupported(f"the UNet's input {path} holds a Python {type(value).__name__}, which a captured graph "
                      "would freeze")


def _fill(template: Any, tensors: list[torch.Tensor]) -> Any:
    if isinstance(template, _Slot):
        return tensors[template.index]
    if isinstance(template, _Node):
        values = [(k, _fill(v, tensors)) for k, v in template.items]
        if template.kind == "dict":
            return dict(values)
        items = [v for _, v in values]
        return items if template.kind == "list" else tuple(items)
    return template


def _has_key(template: Any, name: str) -> bool:
    if isinstance(template, _Node):
        return any((template.kind == "dict" and k == name) or _has_key(v, name) for k, v in template.items)
    return isinstance(template, tuple) and any(_has_key(part, name) for part in template)


def _first_slot(template: Any) -> _Slot | None:
    if isinstance(template, _Slot):
        return template
    children = template.items if isinstance(template, _Node) else template if isinstance(template, tuple) else ()
    for child in children:
        found = _first_slot(child[1] if isinstance(template, _Node) else child)
        if found is not None:
            return found
    return None


class Captured(Protocol):
    """A captured step: ``replay()`` recomputes ``output`` in place from the static inputs."""

    output: torch.Tensor

    def replay(self) -> None: ...


CaptureFn = Callable[[Callable[[], torch.Tensor], "GraphCache"], Captured]


class _CudaGraphStep:
    def __init__(self, graph: Any, output: torch.Tensor) -> None:
        self.graph = graph
        self.output = output

    def replay(self) -> None:
        self.graph.replay()


_warmup_stream: Any = None  # the side stream warm-up runs use (made at the first capture)


def capture_cuda_graph(step: Callable[[], torch.Tensor], cache: GraphCache) -> Captured:
    """Capture ``step`` (reading only static tensors) in a CUDA graph, after warm-up runs on a side stream.

    The cache's graphs share one memory pool: they never run at once, each one's output stays referenced,
    and only their temporaries overlap, so the pool holds one step's activations, not one per graph.
    """
    global _warmup_stream
    if cache.pool is None:
        cache.pool = torch.cuda.graph_pool_handle()
    if _warmup_stream is None:
        # One for every capture: cuBLAS keeps a workspace (up to 32 MB) for each stream it ever ran on.
        _warmup_stream = torch.cuda.Stream()
    stream = _warmup_stream
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_RUNS):
            step()
    ambient = torch.cuda.current_stream()
    ambient.wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    try:
        # thread_local: only this (the engine) thread's CUDA calls can break the capture.
        with torch.cuda.graph(graph, pool=cache.pool, capture_error_mode="thread_local"):
            output = step()
    except BaseException:
        # A step that broke the capture (a sync, a call a graph cannot hold) makes ending it fail, and
        # torch.cuda.graph then leaves its capture stream current: the eager fallback and every later job would
        # run there, out of order with the pictures' copies on the ambient stream.
        torch.cuda.set_stream(ambient)
        raise
    return _CudaGraphStep(graph, output)


@dataclass
class _Entry:
    captured: Captured
    statics: list[torch.Tensor]


class GraphCache:
    """The last ``capacity`` captured graphs by key (least recently used goes first), for one set of weights."""

    def __init__(self, capacity: int = 3) -> None:
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[GraphKey, _Entry] = OrderedDict()
        self.fingerprint: Hashable | None = None
        self.evictions = 0
        self.pool: Any = None  # the CUDA memory pool its graphs share (made at the first capture)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[GraphKey]:
        return list(self._entries)

    def get(self, key: GraphKey) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: GraphKey, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)  # its graph and memory pool go with the last reference
            self.evictions += 1

    def check(self, fingerprint: Hashable) -> bool:
        """Keep the graphs if they were captured over these weights; else drop them all. True when kept."""
        if fingerprint == self.fingerprint:
            return True
        self.clear()
        self.fingerprint = fingerprint
        return False

    def clear(self) -> None:
        self._entries.clear()
        # The next capture gets a new pool: PyTorch refuses (an internal assert) to capture into a pool whose graphs
        # are all gone but which still holds memory, as the first capture's pool holds cuBLAS's workspace for good.
        self.pool = None


class GraphedUNet:
    """Stands in for ``unet.forward`` during one job: replays a captured graph when it can, else runs eager.

    ``on_eager(reason)`` is told once when an input cannot be graphed; ``on_failure(exc)`` when a capture
    fails. Either way the rest of the job runs the UNet's own forward.
    """

    def __init__(self, unet: torch.nn.Module, cache: GraphCache, capture: CaptureFn,
                 on_eager: Callable[[str], None], on_failure: Callable[[BaseException], None],
                 step: Callable[..., Any] | None = None, attention: Hashable = None) -> None:
        self._eager = type(unet).forward.__get__(unet)  # the class's forward: this object replaces the instance's
        self._step = step or self._eager  # what is captured (a torch.compile'd forward when opted in)
        self._cache = cache
        self._capture = capture
        self._on_eager = on_eager
        self._on_failure = on_failure
        self._attention = attention  # the same for the whole job: the processors do not change during it
        self.disabled = False
        self.captures: list[tuple[str, float]] = []  # (key description, seconds) for this job
        self.replays = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return self._eager(*args, **kwargs)
        return_dict = kwargs.pop("return_dict", True)
        try:
            key, leaves = graph_key(args, kwargs, self._attention)
        except Unsupported as exc:
            self.disabled = True
            self._on_eager(str(exc))
            return self._eager(*args, return_dict=return_dict, **kwargs)
        entry = self._cache.get(key)
        if entry is None:
            try:
                entry = self._capture_entry(key, leaves)
            except Exception as exc:  # noqa: BLE001 - a failed capture means eager, never a failed job
                self.disabled = True
                self._on_failure(exc)
                # Whoever keeps the exception must not keep the failed capture's activations and half-made graph.
                traceback.clear_frames(exc.__traceback__)
        if entry is None:  # eager out of the except clause, whose traceback holds those frames until it ends
            return self._eager(*args, return_dict=return_dict, **kwargs)
        for static, leaf in zip(entry.statics, leaves, strict=True):
            static.copy_(leaf)
        entry.captured.replay()
        self.replays += 1
        sample = entry.captured.output.clone()  # the next replay overwrites the static output
        if not return_dict:
            return (sample,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=sample)

    def _capture_entry(self, key: GraphKey, leaves: list[torch.Tensor]) -> _Entry:
        device = leaves[0].device  # the latents': a CPU-side timestep must not copy inside the graph
        statics = [leaf.detach().to(device, copy=True) for leaf in leaves]
        args, kwargs = (_fill(part, statics) for part in key.template)

        def step() -> torch.Tensor:
            return self._step(*args, return_dict=False, **kwargs)[0]

        started = time.perf_counter()
        captured = self._capture(step, self._cache)
        seconds = time.perf_counter() - started
        entry = _Entry(captured, statics)
        self._cache.put(key, entry)
        self.captures.append((key.describe(), seconds))
        log.info("Captured the UNet step for %s in %.2f s", key.describe(), seconds)
        return entry
