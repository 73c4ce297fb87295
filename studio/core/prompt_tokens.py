"""How many CLIP tokens a prompt is, as the text encoder will read it (A1111's "12/75" counter).

CLIP's byte-level BPE over the merges Studio ships (``resources/model-configs/clip-tokenizer``): lower case,
CLIP's word pattern, each word's bytes merged pair by pair in the merges' order, ``</w>`` at a word's end.
The tests check the counts against transformers' CLIP tokenizer. It is written out here, not taken from the
tokenizers library, because building that one holds the interpreter for about 60 ms at once (the window
would stall); this one reads the merges a line at a time, so the window's thread gets its turns. The emphasis
brackets and weights are not counted, as the engine does not read them as words
(``studio.engine.prompt_weighting``).
"""

from __future__ import annotations

import math
import unicodedata
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from studio.core.paths import resources_dir
from studio.core.prompt_syntax import parse_emphasis

if TYPE_CHECKING:
    import regex

CHUNK = 75  # tokens per part of the prompt the text encoder reads (77 with its start and end)
_WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""  # CLIP's own word pattern


@cache
def _word_pattern() -> regex.Pattern[str]:
    import regex  # 16 ms: not while the window starts

    return regex.compile(_WORDS)


@cache
def _merge_ranks() -> dict[tuple[str, str], int]:
    lines = (resources_dir() / "model-configs" / "clip-tokenizer" / "merges.txt").read_text(encoding="utf-8")
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(lines.splitlines()[1:]):  # the first line is a version
        first, _, second = line.partition(" ")
        ranks[(first, second)] = rank
    return ranks


@cache
def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte-to-character table: printable bytes stand for themselves, the rest for characters past 255."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = (b for b in range(256) if b not in kept)
    return {b: chr(b) for b in kept} | {b: chr(256 + n) for n, b in enumerate(extra)}


@lru_cache(maxsize=4096)
def _word_tokens(word: str) -> int:
    symbols = [_byte_symbols()[b] for b in word.encode("utf-8")]
    symbols[-1] += "</w>"
    ranks = _merge_ranks()
    while len(symbols) > 1:
        pairs = {(a, b): ranks[(a, b)] for a, b in zip(symbols, symbols[1:], strict=False) if (a, b) in ranks}
        if not pairs:
            break
        first, second = min(pairs, key=pairs.__getitem__)
        merged, at = [], 0
        while at < len(symbols):
            if at + 1 < len(symbols) and symbols[at] == first and symbols[at + 1] == second:
                merged.append(first + second)
                at += 2
            else:
                merged.append(symbols[at])
                at += 1
        symbols = merged
    return len(symbols)


def _tokens(text: str) -> int:
    text = " ".join(unicodedata.normalize("NFC", text).split()).lower()
    return sum(_word_tokens(word) for word in _word_pattern().findall(text))


def count_tokens(prompt: str) -> tuple[int, int]:
    """The prompt's tokens (without its emphasis syntax), and the parts of 75 it is read in (BREAK starts one)."""
    segments = [0]  # tokens between BREAKs
    for fragment in parse_emphasis(prompt):
        if fragment.is_break:
            segments.append(0)
        else:
            segments[-1] += _tokens(fragment.text)
    return sum(segments), sum(max(1, math.ceil(tokens / CHUNK)) for tokens in segments)
