"""What the fast path changes in a pipeline's parts, done cheaply enough to do for every job.

Walking the ~2,000 modules of an SDXL UNet (``unet.attn_processors``, ``set_attn_processor``,
``parameters()``) costs tens of milliseconds in Python on every call, a real share of a 0.25 s picture.
So a UNet's attention modules and tensors are found once (``UNetLayout``) and only looked at again when
one of their projection layers was replaced (PEFT's LoRA layers while LoRAs are loaded and merged, re-fused
weights). A UNet that still has LoRA layers runs eager, so the layout is only ever trusted for UNets without them.

A captured graph reads two kinds of weights: the UNet's own (``fingerprint``: when they move, every graph of
the UNet is stale) and an IP-Adapter's, attached for reference jobs only (``attention_key``: part of each
graph's key, so graphs with and without a reference, or of two adapters, live side by side).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Hashable
from typing import Any

import torch

_STAMP = "_studio_fused_from"  # on each Attention module: the source weights its fused layer was built from
_PROJECTIONS = ("to_q", "to_k", "to_v", "to_qkv", "to_kv")
_IP_ADAPTER = "IPAdapterAttnProcessor2_0"  # diffusers' SDPA IP-Adapter processor: left as it is when fusing
_SDPA = {"AttnProcessor", "AttnProcessor2_0", "FusedAttnProcessor2_0"}


class UNetLayout:
    """A UNet's attention modules (found once) and its tensors (found again when a projection changes)."""

    def __init__(self, unet: torch.nn.Module) -> None:
        from diffusers.models.attention_processor import Attention

        self._unet = weakref.ref(unet)  # the layout lives in state the UNet's lifetime decides
        self.attention = [m for m in unet.modules() if isinstance(m, Attention)]
        self._projections: tuple[Any, ...] = ()  # the layers themselves: compared by identity, ids get reused
        self._tensors: list[torch.Tensor] = []

    def processors(self) -> list[Any]:
        return [module.processor for module in self.attention]

    def processor_names(self) -> list[str]:
        return [type(module.processor).__name__ for module in self.attention]

    def set_processors(self, processors: list[Any]) -> None:
        for module, processor in zip(self.attention, processors, strict=True):
            module.set_processor(processor)

    def fingerprint(self) -> Hashable:
        """Where the UNet's own weights live (an adapter's are not its own): what every captured graph reads."""
        projections = tuple(getattr(m, name, None) for m in self.attention for name in _PROJECTIONS)
        unet = self._unet()
        replaced = len(projections) != len(self._projections) or any(
            a is not b for a, b in zip(projections, self._projections, strict=False))
        if replaced and unet is not None:  # layers were replaced: find the tensors again
            self._projections = projections
            named = (*unet.named_parameters(), *unet.named_buffers())
            self._tensors = [tensor for name, tensor in named if _own(name)]
        return hash(tuple(t.data_ptr() for t in self._tensors))

    def attention_key(self) -> Hashable:
        """Which attention runs, with an adapter's weights (where they live) and the numbers its processors keep
        (a scale a graph would freeze): what one captured graph is specific to beyond the UNet's own weights."""
        unet = self._unet()
        parts: list[Hashable] = []
        for module in self.attention:
            processor = module.processor
            own = _places(processor) if isinstance(processor, torch.nn.Module) else ()
            parts.append((type(processor).__name__, repr(getattr(processor, "scale", None)), own))
        projection = getattr(unet, "encoder_hid_proj", None)
        parts.append(_places(projection) if isinstance(projection, torch.nn.Module) else None)
        return hash(tuple(parts))

    def fuse_qkv(self) -> bool:
        """diffusers' fused QKV projections with SDPA (FusedAttnProcessor2_0); False where they do not apply.

        Unlike ``unet.fuse_qkv_projections()``, a fused layer that still matches its source weights is kept,
        so the weights a captured graph reads stay where they are from job to job. The fused layer lives outside
        the module tree and the separate layers become views of its rows: no extra memory, and memory plans,
        offload and LoRA loading see the UNet as it was.
        """
        from diffusers.models.attention_processor import FusedAttnProcessor2_0

        names = set(self.processor_names())
        if not self.attention or names - _SDPA - {_IP_ADAPTER}:
            return False
        # An IP-Adapter's processors run their own projections (a reference job): those modules stay as they are.
        plain = [m for m in self.attention if type(m.processor).__name__ != _IP_ADAPTER]
        sources = [[m.to_k, m.to_v] if m.is_cross_attention else [m.to_q, m.to_k, m.to_v] for m in plain]
        if any(type(layer) is not torch.nn.Linear for layers in sources for layer in layers):
            return False  # wrapped (e.g. by LoRA layers): leave them alone
        with torch.inference_mode(False), torch.no_grad():
            for module, layers in zip(plain, sources, strict=True):
                name = "to_kv" if module.is_cross_attention else "to_qkv"
                if module.__dict__.get(_STAMP) != _stamp(layers) or name not in module.__dict__:
                    module.fuse_projections(fuse=True)
                    # Out of the module tree: not counted (memory plans), saved, or moved by offload twice.
                    fused = module.__dict__[name] = module._modules.pop(name)
                    _share_storage(fused, layers)
                    module.__dict__[_STAMP] = _stamp(layers)
        fused = FusedAttnProcessor2_0()
        for module in plain:
            module.set_processor(fused)
        return True

    def drop_fused(self) -> bool:
        """Forget the fused layers (model offload moves the weights, which would leave them behind); True when there
        were any."""
        dropped = False
        for module in self.attention:
            for name in ("to_qkv", "to_kv", _STAMP):
                dropped = module.__dict__.pop(name, None) is not None or dropped
        return dropped

    def ensure_sdpa(self) -> bool:
        """Put SDPA attention back where something switched to diffusers' plain AttnProcessor."""
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        changed = False
        for module in self.attention:
            if type(module.processor) is AttnProcessor:
                module.set_processor(AttnProcessor2_0())
                changed = True
        return changed


def _own(name: str) -> bool:
    """A UNet tensor's name outside what an IP-Adapter attaches (its processors and image projection)."""
    return ".processor." not in name and not name.startswith("encoder_hid_proj.")


def _places(module: torch.nn.Module) -> tuple[tuple[int, tuple[int, ...], torch.dtype], ...]:
    return tuple((t.data_ptr(), tuple(t.shape), t.dtype) for t in module.parameters())


def _stamp(layers: list[torch.nn.Linear]) -> tuple[tuple[int, int], ...]:
    """Where the weights are and how often they were changed in place: a fused layer matches while this does."""
    return tuple((p.data_ptr(), p._version) for layer in layers for p in (layer.weight, layer.bias) if p is not None)


def _share_storage(fused: torch.nn.Linear, layers: list[torch.nn.Linear]) -> None:
    """Make the separate projections views of the fused layer's rows, so fusing costs no memory.

    Without this an SDXL UNet would carry a second copy of its q/k/v weights (about 1.2 GB in float16).
    Eager jobs (LoRAs attach to ``to_q``/``to_k``/``to_v``) read the same numbers through the views.
    """
    start = 0
    for layer in layers:
        rows = layer.weight.shape[0]
        layer.weight.data = fused.weight.data[start:start + rows]
        if layer.bias is not None:
            layer.bias.data = fused.bias.data[start:start + rows]
        start += rows


class VaeLayout:
    """A VAE's 4-D weights, found once, so switching their memory format skips ``Module.to``'s walk."""

    def __init__(self, vae: torch.nn.Module) -> None:
        self.weights = [p for p in vae.parameters() if p.dim() == 4]

    def set_format(self, memory_format: torch.memory_format) -> None:
        with torch.inference_mode(False), torch.no_grad():
            for weight in self.weights:
                if not weight.is_contiguous(memory_format=memory_format):
                    weight.data = weight.data.contiguous(memory_format=memory_format)


def bf16_copy(vae: Any) -> Any:
    """A bfloat16, channels_last copy of a VAE that casts what it is given (the pipeline hands it float16)."""
    twin = copy.deepcopy(vae).to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    twin.register_to_config(force_upcast=False)  # bfloat16 has float32's range: no pipeline upcast needed
    # Through the class and a weak reference: the twin's own methods kept in its __dict__ would be a reference cycle,
    # and its weights would stay on the GPU after it is dropped, until a garbage collection happened to find it.
    made, own = type(twin), weakref.ref(twin)
    twin.encode = lambda x, *args, **kwargs: made.encode(own(), x.to(torch.bfloat16), *args, **kwargs)
    twin.decode = lambda z, *args, **kwargs: made.decode(own(), z.to(torch.bfloat16), *args, **kwargs)
    return twin
