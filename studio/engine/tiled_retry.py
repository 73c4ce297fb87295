"""A picture whose VAE decode runs out of GPU memory is decoded again in tiles, not made again from the start (and
a canvas picture whose encode does, for img2img or inpainting, is encoded in tiles).

The decode comes after every denoising step, and at large sizes it needs more memory than the steps (SDXL's decoder
at 1536x1536 wants several GB). The memory plan turns tiling on where it foresees that; where it did not (another
program took the memory meanwhile, an estimate fell short), ComfyUI's answer is the one taken here: the same latents
decoded tile by tile (diffusers' ``enable_tiling``), with a note. Without it the fast path's retry redid all the steps
eagerly, then ran out of memory in the same decode.

Before the tiled try, what the decode can have back goes: the captured UNet steps' memory pool (the latents are made;
``make_room``), and if the tiles still do not fit, the models kept only for switching back (``release_spare_memory``).
An encode comes before the steps, which still want their graphs: only the allocator's cache and the kept models go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from studio.engine.device import DeviceInfo, release_spare_memory
from studio.engine.stand_in import standing_in

TILED_NOTE = ("The GPU ran out of memory {what} the picture, so it was {done} in tiles (slower; tile seams may show "
              "faintly). Memory: Low VRAM tiles the VAE from the start.")
WORDS = {"decode": ("decoding", "decoded"), "encode": ("encoding", "encoded")}


@contextmanager
def vae_tiled_on_oom(pipe: Any, device: DeviceInfo, note: Callable[[str], None],  # noqa: ANN401
                     make_room: Callable[[], object] = lambda: None, also: Any = None) -> Iterator[None]:  # noqa: ANN401
    """While the job runs, the pipeline's VAE retries a decode (or an img2img/inpaint picture's encode) that ran out
    of GPU memory in tiles, once a call, said once a job for each. ``make_room`` is called before a tiled decode (the
    fast path lets its captured steps go), not before a tiled encode (the steps come after it). ``also``: a VAE the
    pipeline gets back during the job (its own, where the fast path's bfloat16 copy stands in and the fast path is
    dropped mid-job), which retries the same way. Only on CUDA: there is no out-of-memory to recover from elsewhere."""
    found = (getattr(pipe, "vae", None), also)
    vaes = list({id(vae): vae for vae in found if vae is not None and hasattr(vae, "enable_tiling")}.values())
    if device.kind != "cuda" or not vaes:
        yield
        return
    said: set[str] = set()  # what was said this job, whichever VAE ran out
    with ExitStack() as stack:
        for vae in vaes:
            for what in ("decode", "encode"):
                retried = _tiled_on_oom(vae, getattr(vae, what), what, note, make_room, device, said)
                stack.enter_context(standing_in(vae, what, retried))
        yield


def _tiled_on_oom(vae: Any, run: Callable[..., Any], what: str, note: Callable[[str], None],  # noqa: ANN401
                  make_room: Callable[[], object], device: DeviceInfo, said: set[str]) -> Callable[..., Any]:
    def run_or_tiled(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if getattr(vae, "use_tiling", False):
            return run(*args, **kwargs)  # tiled already: nothing smaller to retry with
        try:
            return run(*args, **kwargs)
        except torch.OutOfMemoryError:
            pass
        # Retried out of the except clause: its traceback holds the failed attempt's activations.
        if what == "decode":
            make_room()
        torch.cuda.empty_cache()
        if what not in said:
            doing, done = WORDS[what]
            note(TILED_NOTE.format(what=doing, done=done))
            said.add(what)
        vae.enable_tiling()
        try:
            try:
                return run(*args, **kwargs)
            except torch.OutOfMemoryError:
                if not release_spare_memory(device):  # nothing more to give: the caller's retry, or its message
                    raise
            return run(*args, **kwargs)  # out of the except clause, as above
        finally:
            vae.disable_tiling()

    return run_or_tiled
