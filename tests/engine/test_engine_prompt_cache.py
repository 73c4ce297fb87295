"""Prompt embeddings kept with the model: the real engine on the tiny SD and SDXL pipelines, and the cache itself."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from studio_testing import DirectContext, tiny_request
from tiny_loras import lora_state, save_lora_with_text_encoder, text_encoder_lora_state, tiny_unet
from tiny_models import build_tiny_sdxl

from studio.core.environment import GeneratorEnvironment
from studio.core.requests import GenerationRequest, LoraChoice
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.prompt_cache import prompts_cached


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory) -> Path:
    """A models folder with a LoRA whose text-encoder layers change what a prompt's embeddings are."""
    root = tmp_path_factory.mktemp("prompt-cache-models")
    save_lora_with_text_encoder(lora_state(tiny_unet(tiny_model_dir)), text_encoder_lora_state(tiny_model_dir),
                                root / "loras" / "words.safetensors")
    return root


def new_generator(models: Path, root: Path) -> DiffusersGenerator:
    return DiffusersGenerator(GeneratorEnvironment("cpu", root / "data", root / "cache", models))


def request(model: Path, **kwargs) -> GenerationRequest:  # noqa: ANN003
    return tiny_request(model, prepared=True, **kwargs)


def make(generator: DiffusersGenerator, req: GenerationRequest) -> list[np.ndarray]:
    return [np.asarray(image, dtype=np.int16) for image, _recipe in generator.generate(req, DirectContext())]


class EncoderRuns:
    """How many times each text encoder of the generator's model ran."""

    def __init__(self, generator: DiffusersGenerator) -> None:
        self.counts: Counter[str] = Counter()
        pipe = generator._model.text2img
        for name in ("text_encoder", "text_encoder_2"):
            encoder = getattr(pipe, name, None)
            if encoder is not None:
                encoder.register_forward_hook(lambda *_, _name=name: self.counts.update([_name]))

    def taken(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts


def test_a_batch_and_the_jobs_after_it_read_a_prompt_once(models, tiny_model_dir, tmp_path):
    generator = new_generator(models, tmp_path)
    make(generator, request(tiny_model_dir, prompt="a first job loads the model"))
    runs = EncoderRuns(generator)

    batch = make(generator, request(tiny_model_dir, seed=41, batch_count=3))
    assert runs.taken() == {"text_encoder": 2}  # the prompt and the negative prompt, for the first picture only
    again = make(generator, request(tiny_model_dir, seed=42))
    assert runs.taken() == {}  # an earlier job's prompt: nothing read
    assert np.array_equal(again[0], batch[1])  # and the picture is the one the batch made for that seed

    make(generator, request(tiny_model_dir, prompt="a grey wolf, snow"))
    assert runs.taken() == {"text_encoder": 2}
    make(generator, request(tiny_model_dir, negative_prompt="dark"))
    assert runs.taken() == {"text_encoder": 2}
    make(generator, request(tiny_model_dir, cfg_scale=1.0))  # no guidance: only the prompt, as its own entry
    assert runs.taken() == {"text_encoder": 1}
    init = np.full((64, 64, 3), 90, dtype=np.uint8)
    from PIL import Image

    make(generator, request(tiny_model_dir, seed=5, init_image=Image.fromarray(init), strength=0.7, steps=3))
    assert runs.taken() == {}  # img2img shares the text encoder, and its entries
    assert generator._model.text2img.__dict__.get("encode_prompt") is None  # the pipeline is left as it was


def test_a_lora_on_the_text_encoder_reads_the_prompt_again_and_its_removal_finds_the_base_entry(
        models, tiny_model_dir, tmp_path):
    generator = new_generator(models, tmp_path / "kept")
    plain = make(generator, request(tiny_model_dir))
    runs = EncoderRuns(generator)
    words = (LoraChoice("words", 1.0),)

    with_lora = make(generator, request(tiny_model_dir, loras=words))
    assert runs.taken() == {"text_encoder": 2}  # merged weights: the base model's entry is not theirs
    fresh = make(new_generator(models, tmp_path / "fresh"), request(tiny_model_dir, loras=words))
    assert np.array_equal(with_lora[0], fresh[0])  # what a generator that never saw the base prompt makes

    assert np.array_equal(make(generator, request(tiny_model_dir))[0], plain[0])
    assert runs.taken() == {}  # the base weights back, bit for bit: the base entry serves again
    make(generator, request(tiny_model_dir, loras=(LoraChoice("words", 0.5),)))
    assert runs.taken() == {"text_encoder": 2}  # another weight, other weights


def test_sdxl_keeps_both_encoders_embeddings_and_the_pooled_ones(tmp_path):
    model = build_tiny_sdxl(tmp_path / "tiny-xl")
    generator = new_generator(tmp_path / "models", tmp_path)
    make(generator, request(model, prompt="loads the model"))
    runs = EncoderRuns(generator)
    batch = make(generator, request(model, seed=7, batch_count=2))
    assert runs.taken() == {"text_encoder": 2, "text_encoder_2": 2}
    alone = make(generator, request(model, seed=8))
    assert runs.taken() == {}
    assert np.array_equal(alone[0], batch[1])


@pytest.fixture
def pipe(tiny_model_dir):  # noqa: ANN201 - a StableDiffusionPipeline
    return load_model(tiny_model_dir, select_device("cpu")).text2img


def encode(pipe, prompt: str = "a red fox", **kwargs):  # noqa: ANN001, ANN003, ANN201
    with torch.inference_mode():
        return pipe.encode_prompt(prompt, torch.device("cpu"), 1, True, "blurry", **kwargs)


def test_the_cache_gives_the_same_values_as_copies_and_lets_the_pipeline_go_back(pipe):
    truth = encode(pipe)
    calls = Counter()
    pipe.text_encoder.register_forward_hook(lambda *_: calls.update(["run"]))
    with prompts_cached(pipe):
        first, second = encode(pipe), encode(pipe)
        for a, b, c in zip(truth, first, second, strict=True):
            assert torch.equal(a, b) and torch.equal(a, c)
        assert first[0].data_ptr() != second[0].data_ptr()  # copies: the pipeline may do what it likes with them
        with torch.inference_mode():
            first[0].fill_(7.0)
        assert torch.equal(encode(pipe)[0], truth[0])
        assert calls["run"] == 2  # the prompt and the negative, once

        given = encode(pipe, prompt_embeds=truth[0])  # embeddings passed in: nothing to key, so no caching
        assert torch.equal(given[0], truth[0]) and calls["run"] == 3
        pipe.text_encoder.to(torch.bfloat16)  # another precision: other values, another entry
        assert encode(pipe)[0].dtype == torch.bfloat16 and calls["run"] == 5
        pipe.text_encoder.to(torch.float32)
    assert "encode_prompt" not in vars(pipe)
    with pytest.raises(RuntimeError, match="stops here"), prompts_cached(pipe):
        raise RuntimeError("a job stops here")
    assert "encode_prompt" not in vars(pipe)


def test_old_entries_go_first_and_attached_lora_layers_are_never_cached(pipe):
    from peft import LoraConfig, inject_adapter_in_model

    calls = Counter()
    pipe.text_encoder.register_forward_hook(lambda *_: calls.update(["run"]))
    with prompts_cached(pipe, size=2):
        for prompt in ("one", "two", "three", "three", "two"):
            encode(pipe, prompt)
        assert calls["run"] == 6  # one, two, three; three and two were kept
        encode(pipe, "one")
        assert calls["run"] == 8  # "one" was the oldest of three: it went

    inject_adapter_in_model(LoraConfig(r=2, target_modules=["q_proj"]), pipe.text_encoder)  # a plugin's, attached
    calls.clear()
    with prompts_cached(pipe):
        encode(pipe, "one")
        encode(pipe, "one")
    assert calls["run"] == 4  # its scales live in Python, where no key sees them
