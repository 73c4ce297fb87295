"""The prompt token counter counts as transformers' CLIP tokenizer does, without the emphasis syntax."""

from __future__ import annotations

import pytest

from studio.core.paths import resources_dir
from studio.core.prompt_tokens import count_tokens


@pytest.mark.parametrize("prompt", [
    "a photo of an astronaut riding a horse on mars",
    "masterpiece, best quality, 1girl, silver hair, looking at viewer, don't",
    "一只可爱的猫 🦊, Ünïcödé  spaces\tand\nlines",
    "",
])
def test_counts_match_the_text_encoders_tokenizer(prompt):
    from transformers import CLIPTokenizer

    folder = resources_dir() / "model-configs" / "clip-tokenizer"
    reference = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    assert count_tokens(prompt)[0] == len(reference(prompt, add_special_tokens=False).input_ids)


def test_emphasis_is_not_counted_and_long_prompts_and_breaks_make_parts():
    assert count_tokens("(red hair:1.3), [blue eyes]") == count_tokens("red hair, blue eyes")
    assert count_tokens("x " * 75) == (75, 1) and count_tokens("x " * 76) == (76, 2)
    assert count_tokens("a cat BREAK a dog") == (4, 2)
