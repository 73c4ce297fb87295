"""A picture whose VAE decode runs out of GPU memory is decoded again in tiles, not made again from the start.

The decode comes after every denoising step, and at large sizes it needs more memory than the steps (SDXL's decoder
at 1536x1536 wants several GB). The memory plan turns tiling on where it foresees that; where it did not (another
program took the memory meanwhile, an estimate fell short), ComfyUI's answer is the one taken here: the same latents
decoded tile by tile (diffusers' ``enable_tiling``), with a note. Without it the fast path's retry redid all the steps
eagerly, then ran out of memory in the same decode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from studio.engine.device import DeviceInfo

TILED_NOTE = ("The GPU ran out of memory decoding the picture, so it was decoded in tiles (slower; tile seams may "
              "show faintly). Memory: Low VRAM tiles every decode from the start.")


@contextmanager
def decode_tiled_on_oom(pipe: Any, device: DeviceInfo, note: Callable[[str], None]) -> Iterator[None]:  # noqa: ANN401
    """While the job runs, ``pipe.vae.decode`` retries a decode that ran out of GPU memory in tiles (once a picture;
    said once a job). Only on CUDA: there is no out-of-memory to recover from elsewhere."""
    vae = getattr(pipe, "vae", None)
    if device.kind != "cuda" or vae is None or not hasattr(vae, "enable_tiling"):
        yield
        return
    own = vae.__dict__.get("decode")  # a decode the instance already has (the fast path's bfloat16 copy casts)
    decode = vae.decode
    said = False

    def decode_or_tiled(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        nonlocal said
        if getattr(vae, "use_tiling", False):
            return decode(*args, **kwargs)  # tiled already: nothing smaller to retry with
        try:
            return decode(*args, **kwargs)
        except torch.OutOfMemoryError:
            pass
        # Retried out of the except clause: its traceback holds the failed decode's activations.
        torch.cuda.empty_cache()
        if not said:
            note(TILED_NOTE)
            said = True
        vae.enable_tiling()
        try:
            return decode(*args, **kwargs)
        finally:
            vae.disable_tiling()

    vae.decode = decode_or_tiled
    try:
        yield
    finally:
        if own is None:
            del vae.decode
        else:
            vae.decode = own
