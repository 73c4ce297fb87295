"""Pictures the VAE has encoded, kept with the VAE: img2img and inpaint start from the same canvas picture again
and again (every picture of a batch, every new seed for it), and each time diffusers encoded it anew.

On one CPU thread in bfloat16 a full-size SD 1.5 VAE took 0.37 s to encode a 256x256 picture and 2.0 s at
512x512; on a GPU it is one more pass of the VAE's encoder per picture, outside the captured UNet step (not
yet measured there). What is kept is the encoder's output, the latent distribution (its mean and variance): the
pipeline still samples from it with the picture's own seeded generator, so the pictures are bit for bit what they were.

An entry holds the encoded picture itself (on the device) and is taken only for a tensor equal to it, encoded by
the same VAE (a weak key: a VAE let go takes its entries along) in the same precision, memory layout, tiling and
slicing, with its weights where they were (outside the encode: on the CPU while model CPU offload keeps them there).
The pipeline gets a distribution of its own, so nothing it does to one reaches the kept one. Entries kept while the
weights were elsewhere (a job with offload after one without, or the other way round) can never be taken again, yet
hold GPU memory: each job lets them go as it starts.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from studio.engine.stand_in import standing_in

ENTRIES_PER_VAE = 4  # an inpainting model encodes two pictures per job (the picture and its masked part)


class _State(NamedTuple):
    """What the encoding depends on beside the picture."""

    dtype: str
    device: str  # where the weights are, outside the encode
    channels_last: bool
    tiled: bool
    sliced: bool


@dataclass(eq=False)
class _Entry:
    state: _State | None
    picture: torch.Tensor
    output: Any


_kept: weakref.WeakKeyDictionary[torch.nn.Module, list[_Entry]] = weakref.WeakKeyDictionary()


def _state(vae: torch.nn.Module) -> _State | None:
    weight = next(vae.parameters(), None)
    if weight is None:
        return None
    layout = weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last)
    return _State(str(weight.dtype), str(weight.device), layout, bool(getattr(vae, "use_tiling", False)),
                  bool(getattr(vae, "use_slicing", False)))


def _device(state: _State | None) -> str | None:
    return state.device if state is not None else None


def _fresh(output: Any) -> Any:  # noqa: ANN401
    dist = output.latent_dist
    return type(output)(latent_dist=type(dist)(dist.parameters.clone(), deterministic=dist.deterministic))


def _keepable(output: Any) -> bool:  # noqa: ANN401
    dist = getattr(output, "latent_dist", None)
    return isinstance(getattr(dist, "parameters", None), torch.Tensor) and hasattr(dist, "deterministic")


@contextmanager
def encodings_cached(pipe: Any, size: int = ENTRIES_PER_VAE) -> Iterator[None]:  # noqa: ANN401
    """While in the block, the pipeline's VAE answers a picture it has encoded before from what it kept."""
    vae = getattr(pipe, "vae", None)
    encode = getattr(vae, "encode", None)
    if not isinstance(vae, torch.nn.Module) or encode is None or getattr(encode, "keeps_encodings", False):
        yield  # no VAE, or its encodings are kept already
        return
    entries = _kept.setdefault(vae, [])
    here = _device(_state(vae))
    entries[:] = [entry for entry in entries if _device(entry.state) == here]  # the others can match no more

    def cached(x: torch.Tensor, return_dict: bool = True) -> Any:  # noqa: ANN401
        if not return_dict or not isinstance(x, torch.Tensor):
            return encode(x, return_dict)
        state = _state(vae)
        for index, entry in enumerate(entries):
            if (entry.state == state and entry.picture.shape == x.shape and entry.picture.dtype == x.dtype
                    and entry.picture.device == x.device and torch.equal(entry.picture, x)):
                entries.insert(0, entries.pop(index))
                return _fresh(entry.output)
        output = encode(x, return_dict)
        if _keepable(output):
            entries.insert(0, _Entry(state, x.clone(), _fresh(output)))
            del entries[size:]
        return output

    cached.keeps_encodings = True
    with standing_in(vae, "encode", cached):  # over a VAE's own encode too (the bfloat16 copy casts in one)
        yield
