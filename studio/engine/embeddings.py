"""Textual inversions (A1111's "embeddings"): a word in the prompt that names a file in ``<models>/embeddings``
(or a linked folder's: ``library_embeddings.embeddings_for``) stands for the vectors the file holds, as in
AUTOMATIC1111 ("easynegative" in a negative prompt).

Files are found by name (case does not matter, as CLIP lower-cases the prompt) and read as safetensors only:
A1111's ``emb_params`` or ``string_to_param.*``, diffusers' one tensor named by its token, or SDXL's ``clip_l``
and ``clip_g`` (one set of vectors for each text encoder). ``studio.engine.prompt_weighting`` puts the vectors
in the place of the name when it reads the prompt; nothing is added to the tokenizer or the text encoder, so
a model kept for switching back, or a tokenizer shared between models, is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import torch

from studio.core.errors import ModelError
from studio.core.weight_files import check_weights_file

T = TypeVar("T")
KEEP_FILES = 64  # embedding files kept read (a few KB each)
_loaded: dict[tuple[Path, int, int], dict[str, torch.Tensor]] = {}  # (file, mtime, size) -> its tensors


def named_in(texts: Iterable[str], names: Iterable[str]) -> set[str]:
    """The names that stand as words in any of the texts (not as part of a longer word)."""
    text = "\n".join(texts).lower()
    return {name for name in names if re.search(word_pattern([name]), text)}


def word_pattern(names: Iterable[str]) -> str:
    """A regular expression for the names as whole words, longest first (so "bad-hands-5" beats "bad")."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return rf"(?<![\w-])(?:{alternatives})(?![\w-])"


def embedding_vectors(path: Path, widths: Sequence[int]) -> list[torch.Tensor]:
    """The file's vectors for each text encoder (``widths``: their embedding widths, in order), each
    ``[count, width]``; ModelError with one sentence if the file holds none that fit."""
    check_weights_file(path)
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _loaded:
        from safetensors.torch import load_file

        while len(_loaded) >= KEEP_FILES:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = load_file(str(path))
    tensors = _loaded[key]
    if len(widths) == 2:
        found = [tensors.get("clip_l"), tensors.get("clip_g")]
    elif {"clip_l", "clip_g"} <= set(tensors):
        raise ModelError(f"The embedding {path.stem} is made for SDXL (it holds clip_l and clip_g vectors), not for "
                         "this model.")
    else:
        found = [next((t for k, t in tensors.items() if k == "emb_params" or k.startswith("string_to_param.")),
                      next(iter(tensors.values())) if len(tensors) == 1 else None)]
        if found[0] is None and tensors:
            raise ModelError(f"The embedding {path.stem} holds {len(tensors)} tensors ({', '.join(tensors)}) and "
                             "none named emb_params, so Studio cannot tell which one to use.")
    vectors = [t.reshape(-1, t.shape[-1]) if t is not None and t.ndim in (1, 2) and t.numel() else None
               for t in found]
    if any(v is None or v.shape[-1] != width or len(v) == 0 for v, width in zip(vectors, widths, strict=True)):
        shapes = ", ".join(f"{k} {tuple(t.shape)}" for k, t in tensors.items())
        wanted = " and ".join(str(w) for w in widths)
        raise ModelError(f"The embedding {path.stem} does not fit this model: it holds {shapes or 'nothing'}, and "
                         f"this model's text encoders take vectors {wanted} wide.")
    counts = {len(v) for v in vectors}
    if len(counts) != 1:
        raise ModelError(f"The embedding {path.stem} has a different number of vectors for each text encoder.")
    return vectors  # type: ignore[return-value]


def embedding_widths(encoders: Sequence[torch.nn.Module]) -> list[int]:
    return [int(e.get_input_embeddings().weight.shape[-1]) for e in encoders]


def mentioned(prompts: Iterable[str], found: Mapping[str, T]) -> dict[str, T]:
    """The entries of ``found`` (by name in lower case) whose names stand as words in the prompts."""
    names = named_in(prompts, found)
    return {name: found[name] for name in sorted(names)}
