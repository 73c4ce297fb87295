"""Emphasis in prompts as A1111, ComfyUI and Fooocus write it, and Ctrl+Up/Down's edits of it."""

from __future__ import annotations

import pytest

from studio.core.prompt_syntax import ROUND, Fragment, change_emphasis, has_emphasis, parse_emphasis


@pytest.mark.parametrize(("prompt", "expected"), [
    ("a cat", [("a cat", 1.0)]),
    ("a (cat) on a [mat]", [("a ", 1.0), ("cat", ROUND), (" on a ", 1.0), ("mat", 1 / ROUND)]),
    ("((big)) dog", [("big", ROUND * ROUND), (" dog", 1.0)]),
    ("(red hair:1.4), blue eyes", [("red hair", 1.4), (", blue eyes", 1.0)]),
    ("(a (b:2):0.5)", [("a ", 0.5), ("b", 1.0)]),
    (r"\(artist\) name \\ x", [("(artist) name \\ x", 1.0)]),
    (r"back\slash (x:+1.5)", [("backslash ", 1.0), ("x", 1.5)]),  # as A1111: a lone backslash goes
    ("style: anime, 16:9", [("style: anime, 16:9", 1.0)]),
    ("(open to the end", [("open to the end", ROUND)]),
    ("closed) twice]", [("closed) twice]", 1.0)]),  # a bracket with none open is text
    ("a (b [c) d] e", [("a ", 1.0), ("b ", ROUND), ("c", 1.0), (" d", 1 / ROUND), (" e", 1.0)]),
    ("BREAKFAST, Blue", [("BREAKFAST, Blue", 1.0)]),
])
def test_parse_emphasis(prompt, expected):
    got = [(f.text, f.weight) for f in parse_emphasis(prompt)]
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_break_ends_a_chunk_and_only_real_emphasis_counts():
    assert parse_emphasis("fox BREAK snow") == [Fragment("fox "), Fragment("BREAK", is_break=True), Fragment(" snow")]
    assert not has_emphasis("a cat, 16:9, style: anime") and has_emphasis("a (cat)") and has_emphasis(r"a \(cat\)")


@pytest.mark.parametrize(("prompt", "selection", "step", "expected"), [
    ("a cat on a mat", (3, 3), 0.1, ("a (cat:1.1) on a mat", "cat")),  # the word at the cursor
    ("a cat on a mat", (2, 8), -0.1, ("a (cat on:0.9) a mat", "cat on")),
    ("a (cat:1.1) on a mat", (3, 6), 0.1, ("a (cat:1.2) on a mat", "cat")),  # the words inside
    ("a (cat:1.1) on a mat", (2, 11), 0.1, ("a (cat:1.2) on a mat", "cat")),  # the whole bracket
    ("a (cat:1.1) on a mat", (3, 6), -0.1, ("a cat on a mat", "cat")),  # back to 1: no brackets
    ("a  cat", (2, 2), 0.1, ("a  cat", "")),  # no word at the cursor: nothing changes
    ("(red:1.2)", (7, 7), 0.1, ("(red:1.3)", "red")),  # the cursor on the weight: the whole block
    ("(a:.5) b", (1, 1), 0.1, ("(a:0.6) b", "a")),  # a weight written as A1111 reads it
    ("(red fox:1.2)", (2, 2), 0.1, ("(red fox:1.3)", "red fox")),  # on a word of a block: the block
])
def test_change_emphasis(prompt, selection, step, expected):
    text, start, end = change_emphasis(prompt, *selection, step)
    assert (text, text[start:end]) == expected


def test_a_selection_of_two_weighted_blocks_is_wrapped_whole_not_unbalanced():
    """Ctrl+A, Ctrl+Down on "(a:1.2), b, (c:1.1)" read it as one block and left "a:1.2), b, (c"."""
    prompt = "(masterpiece:1.2), a cat on a sofa, (detailed:1.1)"
    down, start, end = change_emphasis(prompt, 0, len(prompt), -0.1)
    assert down == f"({prompt}:0.9)" and down[start:end] == prompt
    assert change_emphasis(prompt, 0, len(prompt), 0.1)[0] == f"({prompt}:1.1)"
    assert change_emphasis("(red hair:1.2)", 0, 14, 0.1)[0] == "(red hair:1.3)"  # one block is still reweighed
    assert change_emphasis(r"(\(x\):1.2)", 0, 11, 0.1)[0] == r"(\(x\):1.3)"
