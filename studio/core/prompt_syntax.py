"""Emphasis in prompts, written as AUTOMATIC1111, ComfyUI and Fooocus write it, so prompts copied from them
(and read from their pictures) mean what they meant there.

- ``(words)`` multiplies the words' weight by 1.1, ``[words]`` divides it by 1.1; they nest.
- ``(words:1.4)`` multiplies it by 1.4 (any number, negative too, for the inside of the brackets).
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the characters themselves.
- ``BREAK`` (capitals, on its own) starts a new 75-token chunk of the prompt.

Brackets left open hold to the end of the prompt; a closing bracket with none open is plain text, as in A1111.
This module only reads the text; the engine (``studio.engine.prompt_weighting``) turns it into embeddings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUND = 1.1  # what one pair of ( ) multiplies by; [ ] divides by it
BREAK = "BREAK"
_WEIGHT = r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*"  # the number in "(words:1.2)": read, and changed by Ctrl+Up/Down
_TOKEN = re.compile(rf"\\[()\[\]\\]|\\|\(|\[|:{_WEIGHT}\)|\)|]|\bBREAK\b|[^\\()\[\]:B]+|[:B]")


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float = 1.0
    is_break: bool = False


def parse_emphasis(prompt: str) -> list[Fragment]:
    """The prompt as runs of text with one weight each (neighbours of equal weight joined), and the BREAKs."""
    fragments: list[Fragment] = []
    # Where each open bracket's text starts in ``fragments``; round and square brackets close independently.
    round_open: list[int] = []
    square_open: list[int] = []

    def close(opened: list[int], multiplier: float) -> None:
        for index in range(opened.pop(), len(fragments)):
            if not fragments[index].is_break:
                fragments[index] = Fragment(fragments[index].text, fragments[index].weight * multiplier)

    for match in _TOKEN.finditer(prompt):
        token, number = match.group(0), match.group(1)
        if token.startswith("\\"):  # an escaped bracket or backslash; a lone backslash goes, as in A1111
            fragments.append(Fragment(token[1:]))
        elif token == "(":
            round_open.append(len(fragments))
        elif token == "[":
            square_open.append(len(fragments))
        elif number is not None and round_open:
            close(round_open, float(number))
        elif token == ")" and round_open:
            close(round_open, ROUND)
        elif token == "]" and square_open:
            close(square_open, 1 / ROUND)
        elif token == BREAK:
            fragments.append(Fragment(BREAK, is_break=True))
        else:
            fragments.append(Fragment(token))
    while round_open:  # left open: to the end of the prompt
        close(round_open, ROUND)
    while square_open:
        close(square_open, 1 / ROUND)
    return _joined(fragments)


def _joined(fragments: list[Fragment]) -> list[Fragment]:
    joined: list[Fragment] = []
    for fragment in fragments:
        if joined and not fragment.is_break and not joined[-1].is_break and joined[-1].weight == fragment.weight:
            joined[-1] = Fragment(joined[-1].text + fragment.text, fragment.weight)
        elif fragment.is_break or fragment.text:
            joined.append(fragment)
    return joined


def has_emphasis(prompt: str) -> bool:
    """Whether the prompt means anything other than its plain text to the text encoder."""
    fragments = parse_emphasis(prompt)
    return any(f.is_break or f.weight != 1.0 for f in fragments) or "".join(f.text for f in fragments) != prompt


def change_emphasis(prompt: str, start: int, end: int, step: float) -> tuple[str, int, int]:
    """Ctrl+Up / Ctrl+Down on the words from ``start`` to ``end`` (the word at ``start`` when nothing is selected):
    their ``(words:w)`` goes up or down by ``step``, and brackets that come back to 1.0 go away, as in A1111's
    box. Returns the new text and where the words now are."""
    start, end = sorted((max(0, start), min(len(prompt), end)))
    if start == end:
        start, end = _block_at(prompt, start) or _word_at(prompt, start)
        if start == end:
            return prompt, start, end
    words = prompt[start:end]
    weight = 1.0
    inside = re.fullmatch(rf"\((.*):{_WEIGHT}\)", words, re.S)
    around = re.match(rf":{_WEIGHT}\)", prompt[end:])
    if inside and _closes_at_end(words):  # the selection is "(words:1.2)" itself, one block
        words, weight = inside.group(1), float(inside.group(2))
    elif start > 0 and prompt[start - 1] == "(" and around:  # the selection is the words inside it
        start, end, weight = start - 1, end + around.end(), float(around.group(1))
    weight = round(weight + step, 2)
    if weight == 1.0:
        return prompt[:start] + words + prompt[end:], start, start + len(words)
    return prompt[:start] + f"({words}:{weight:g})" + prompt[end:], start + 1, start + 1 + len(words)


def _closes_at_end(text: str) -> bool:
    """Whether the bracket that opens ``text`` closes at its last character: "(a:1.2), b, (c:1.1)" is two blocks,
    which Ctrl+Up wraps whole rather than reading as one (unbalancing them)."""
    depth = 0
    for index, char in enumerate(text):
        if char == "\\":
            continue
        if char == "(" and (index == 0 or text[index - 1] != "\\"):
            depth += 1
        elif char == ")" and (index == 0 or text[index - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return index == len(text) - 1
    return False


def _block_at(prompt: str, position: int) -> tuple[int, int] | None:
    """The ``(words:w)`` the cursor is in (on its words or its weight), as A1111's box takes it."""
    for match in re.finditer(rf"\(([^()]*):{_WEIGHT}\)", prompt):
        if match.start() < position < match.end():
            return match.start(), match.end()
    return None


def _word_at(prompt: str, position: int) -> tuple[int, int]:
    """The word (letters, digits, ' and -) at or just before ``position``."""
    for match in re.finditer(r"[\w'-]+", prompt):
        if match.start() <= position <= match.end():
            return match.start(), match.end()
    return position, position
