"""What the fast path keeps for a UNet between jobs (its layout, captured graphs, the bfloat16 VAE copy), held as
long as the UNet is, and letting that memory go."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch

from studio.engine.device import DeviceInfo
from studio.engine.fast_layout import UNetLayout, VaeLayout, bf16_copy
from studio.engine.fast_path_choices import FastPathOptions, options_from_env
from studio.engine.unet_graph import GraphCache


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
