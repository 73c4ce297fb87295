"""Models with the same tokenizer files share one tokenizer: only the first load builds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import build_tiny_sd

from studio.engine import shared_tokenizers
from studio.engine.device import select_device
from studio.engine.loader import load_model


@pytest.fixture
def fresh(monkeypatch) -> None:
    """No tokenizer known from other tests' loads."""
    monkeypatch.setattr(shared_tokenizers, "_known", type(shared_tokenizers._known)())


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """The tokenizers transformers builds from files, by folder."""
    from transformers import CLIPTokenizer

    folders: list[str] = []
    original = CLIPTokenizer.from_pretrained.__func__

    def counted(cls, path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        folders.append(Path(path).parent.name)
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(CLIPTokenizer, "from_pretrained", classmethod(counted))
    return folders


def picture(pipe) -> np.ndarray:  # noqa: ANN001
    with torch.inference_mode():
        return pipe("a red fox, snow", num_inference_steps=2, width=64, height=64, guidance_scale=5.0,
                    generator=torch.Generator("cpu").manual_seed(3), output_type="np").images[0]


def test_a_second_model_with_the_same_tokenizer_files_takes_the_first_ones(tiny_model_dir, tmp_path, fresh, built):
    cpu = select_device("cpu")
    other = build_tiny_sd(tmp_path / "other", seed=1)  # other weights, the same tokenizer files
    first = load_model(tiny_model_dir, cpu)
    second = load_model(other, cpu)
    assert built == ["tiny-sd"]  # the second model's tokenizer was not built again
    assert second.text2img.tokenizer is first.text2img.tokenizer

    shared_tokenizers._known.clear()
    own = load_model(other, cpu)  # as before: its own tokenizer, built from its files
    assert built == ["tiny-sd", "other"] and own.text2img.tokenizer is not first.text2img.tokenizer
    assert np.array_equal(picture(second.text2img), picture(own.text2img))


def test_a_tokenizer_whose_files_differ_is_not_shared(tiny_model_dir, tmp_path, fresh, built):
    cpu = select_device("cpu")
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    config = other / "tokenizer" / "tokenizer_config.json"
    settings = json.loads(config.read_text())
    settings["model_max_length"] = 32  # the same vocabulary, cut at another length
    config.write_text(json.dumps(settings))
    first = load_model(tiny_model_dir, cpu)
    second = load_model(other, cpu)
    assert built == ["tiny-sd", "other"]
    assert second.text2img.tokenizer is not first.text2img.tokenizer
    assert second.text2img.tokenizer.model_max_length == 32


def test_only_the_last_few_tokenizers_are_kept(fresh) -> None:
    class Pipe:
        def __init__(self, number: int) -> None:
            self.tokenizer = f"tokenizer {number}"

    for number in range(shared_tokenizers.KEPT + 2):
        shared_tokenizers.remember_tokenizers({"tokenizer": f"digest {number}"}, Pipe(number))
    shared_tokenizers.known_tokenizers({"tokenizer": "digest 2"})  # used: kept longer
    shared_tokenizers.remember_tokenizers({"tokenizer": "digest 9"}, Pipe(9))
    assert list(shared_tokenizers._known) == ["digest 4", "digest 5", "digest 2", "digest 9"]
    assert shared_tokenizers.known_tokenizers({"tokenizer": "digest 0", "tokenizer_2": "digest 5"}) == {
        "tokenizer_2": "tokenizer 5"}
