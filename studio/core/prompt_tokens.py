"""How many CLIP tokens a prompt is, as the text encoder will read it (A1111's "12/75" counter).

Counted with the tokenizers library over the CLIP vocabulary Studio ships (``resources/model-configs/
clip-tokenizer``), set up as transformers' CLIP tokenizer is (lower case, CLIP's word split, byte-level BPE
with ``</w>`` ends), so the counts are the same; the emphasis brackets and weights are not counted, as the
engine does not read them as words (``studio.engine.prompt_weighting``).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from studio.core.paths import resources_dir
from studio.core.prompt_syntax import parse_emphasis

CHUNK = 75  # tokens per part of the prompt the text encoder reads (77 with its start and end)
_WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""  # CLIP's own word pattern


@cache
def clip_tokenizer() -> Any:  # noqa: ANN401 - a tokenizers.Tokenizer
    """Built once (about 60 ms: the vocabulary is read): call it off the UI thread the first time."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    folder = resources_dir() / "model-configs" / "clip-tokenizer"
    tokenizer = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                               end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                                 normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_WORDS), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    return tokenizer


def count_tokens(prompt: str) -> tuple[int, int]:
    """The prompt's tokens (without its emphasis syntax), and the parts of 75 it is read in (BREAK starts one)."""
    segments = [0]  # tokens between BREAKs
    for fragment in parse_emphasis(prompt):
        if fragment.is_break:
            segments.append(0)
        else:
            segments[-1] += len(clip_tokenizer().encode(fragment.text).ids)
    return sum(segments), sum(max(1, math.ceil(tokens / CHUNK)) for tokens in segments)
