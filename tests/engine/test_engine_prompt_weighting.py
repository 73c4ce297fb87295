"""Emphasis and long prompts read as A1111 reads them: the chunks, the weights, and the real engine's pictures."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from studio_testing import DirectContext, tiny_request
from tiny_models import build_tiny_sdxl

from studio.core.environment import GeneratorEnvironment
from studio.core.metadata import Recipe
from studio.core.prompt_syntax import parse_emphasis
from studio.engine.device import select_device
from studio.engine.diffusion import DiffusersGenerator
from studio.engine.loader import load_model
from studio.engine.prompt_weighting import CHUNK_TOKENS, chunk_tokens, embeddings_named, prompts_weighted


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):  # noqa: ANN001, ANN201
    return load_model(tiny_model_dir, select_device("cpu")).text2img


def encode(pipe, prompt: str, negative: str | None = "blurry", pictures: int = 1):  # noqa: ANN001, ANN201
    return pipe.encode_prompt(prompt=prompt, device=pipe.device, num_images_per_prompt=pictures,
                              do_classifier_free_guidance=True, negative_prompt=negative)


def painted(generator: DiffusersGenerator, model, prompt: str) -> tuple[np.ndarray, str]:  # noqa: ANN001
    """The picture a tiny job with this prompt makes, as numbers, and the prompt its recipe records."""
    [(image, recipe)] = generator.generate(tiny_request(model, prepared=True, prompt=prompt), DirectContext())
    return np.asarray(image, dtype=np.int16), recipe.prompt


def chunks_of(pipe, prompt: str) -> list[tuple[str, list[float]]]:  # noqa: ANN001
    return [(pipe.tokenizer.decode(c.tokens), c.weights) for c in chunk_tokens(pipe.tokenizer, parse_emphasis(prompt))]


def test_long_prompts_go_into_chunks_of_75_ending_at_a_comma_or_a_break(pipe):
    # The tiny tokenizer makes a token of every character: 100 letters are 100 tokens.
    chunks = chunks_of(pipe, "x" * 100)
    assert [len(c[1]) for c in chunks] == [CHUNK_TOKENS, 25]
    # A comma in a full chunk's last 20 tokens ends it, so the words after it stay together in the next.
    chunks = chunks_of(pipe, "a" * 60 + ", " + "b" * 30)
    assert [text.replace(" ", "") for text, _ in chunks] == ["a" * 60 + ",", "b" * 30]
    chunks = chunks_of(pipe, "a" * 40 + ", " + "b" * 50)  # the comma is 35 tokens back: no
    assert [len(w) for _, w in chunks] == [CHUNK_TOKENS, 16]
    chunks = chunks_of(pipe, "red fox BREAK (snow:1.5)")
    assert [(text.replace(" ", ""), weights[-1]) for text, weights in chunks] == [("redfox", 1.0), ("snow", 1.5)]
    assert chunks_of(pipe, "") == [("", [])]


def test_a_plain_prompt_is_left_to_diffusers_and_its_embeddings_stay_as_they_were(pipe):
    plain = encode(pipe, "a red fox, snow")
    with prompts_weighted(pipe):
        assert pipe.encode_prompt.__wrapped__ == pipe.__class__.encode_prompt.__get__(pipe)
        same = encode(pipe, "a red fox, snow")
        # Brackets that weigh nothing: read through Studio's own chunks, to the same values as diffusers.
        unit = encode(pipe, "a (red fox:1), snow")
    for ours, theirs in zip((*same, *unit), (*plain, *plain), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6)
    assert "encode_prompt" not in vars(pipe)  # the pipeline's own method answers again


@pytest.fixture
def biased(pipe):  # noqa: ANN001, ANN201
    """The tiny encoder's last layer norm with a bias, as real CLIPs have: its embeddings get a mean to keep."""
    bias = pipe.text_encoder.final_layer_norm.bias
    with torch.no_grad():
        bias.fill_(0.3)
    yield pipe
    with torch.no_grad():
        bias.zero_()


def test_emphasis_multiplies_the_tokens_and_keeps_the_chunks_mean(biased):
    pipe = biased
    plain, _ = encode(pipe, "a red fox")
    with prompts_weighted(pipe):
        weighted, negative = encode(pipe, "a (red:1.5) fox")
        halved, _ = encode(pipe, "a [[red]] fox")
    scale = torch.ones(77)
    scale[2:5] = 1.5  # after the start token and "a": r-e-d
    expected = plain * scale[None, :, None]
    expected *= plain.mean() / expected.mean()
    assert torch.allclose(weighted, expected, atol=1e-5)
    assert not torch.allclose(halved, plain, atol=1e-3) and not torch.allclose(halved, weighted, atol=1e-3)
    assert torch.allclose(negative, encode(pipe, "a fox")[1], atol=1e-6)  # "blurry", as diffusers reads it


def test_a_long_prompt_is_read_whole_and_the_negative_gets_as_many_chunks(pipe):
    words = "a red fox in the snow, " * 5  # 17 tokens each: the first chunk ends at the fourth comma
    with prompts_weighted(pipe):
        prompt, negative = encode(pipe, words, pictures=2)
        first, _ = encode(pipe, "(" + words[:4 * 23] + ":1)")  # the first chunk on its own
    assert prompt.shape == negative.shape == (2, 2 * 77, 32)
    assert torch.allclose(prompt[:1, :77], first, atol=1e-6)
    empty_chunk = encode(pipe, "", None)[1]
    assert torch.allclose(negative[:1, 77:], empty_chunk, atol=1e-6)  # padded with an empty chunk


def test_sdxl_reads_both_encoders_per_chunk_and_keeps_the_first_chunks_pooled(tmp_path):
    pipe = load_model(build_tiny_sdxl(tmp_path / "tiny-xl"), select_device("cpu")).text2img
    words = "a red fox in the snow, " * 5
    plain = encode(pipe, words[:4 * 23], None)
    with prompts_weighted(pipe):
        prompt, negative, pooled, negative_pooled = encode(pipe, words, None)
        unit = encode(pipe, "(" + words[:4 * 23] + ":1)", None)
    assert prompt.shape == (1, 154, 72) and torch.allclose(prompt[:, :77], plain[0], atol=1e-5)
    fox = encode(pipe, "a red fox", None)[0]
    with prompts_weighted(pipe):
        loud = encode(pipe, "a (red:1.5) fox", None)[0]
    scale = torch.ones(77)
    scale[2:5] = 1.5
    parts = []
    for part in (fox[..., :32], fox[..., 32:]):  # each encoder's part keeps its own mean, as in A1111
        weighted = part * scale[None, :, None]
        parts.append(weighted * (part.mean() / weighted.mean()))
    assert torch.allclose(loud, torch.cat(parts, dim=-1), atol=1e-5)
    assert torch.allclose(pooled, plain[2], atol=1e-5)
    assert not negative.any() and not negative_pooled.any()  # SDXL's zeros for an empty negative prompt
    assert negative.shape == prompt.shape
    for ours, theirs in zip(unit, plain, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_engine_paints_emphasis_and_records_the_prompt_as_written(tiny_model_dir, tmp_path):
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache"))

    def make(prompt: str) -> tuple[np.ndarray, str]:
        return painted(generator, tiny_model_dir, prompt)

    plain, _ = make("a red fox, snow")
    unit, _ = make("a (red fox:1), snow")
    loud, written = make("a (red fox:4), snow")
    reads: list[int] = []
    generator._model.text2img.text_encoder.register_forward_hook(lambda *_: reads.append(1))
    again, _ = make("a (red fox:4), snow")
    assert reads == []  # kept by the prompt cache like any other prompt
    assert np.abs(unit - plain).max() <= 1  # the same embeddings, to rounding
    assert np.abs(loud - plain).mean() > 2 and np.array_equal(loud, again)  # the tiny model hears little
    assert written == "a (red fox:4), snow"


# -- textual inversions ----------------------------------------------------------------------------------

def rows_of(encoder, tokenizer, word: str) -> torch.Tensor:  # noqa: ANN001
    """The token embeddings a word is read as: an embedding holding these means the word itself."""
    ids = tokenizer(word, add_special_tokens=False).input_ids
    return encoder.get_input_embeddings().weight[ids].detach().clone()


def test_an_embedding_named_in_the_prompt_stands_for_its_vectors(pipe, tmp_path):
    from safetensors.torch import save_file

    from studio.core.library_embeddings import embeddings_for

    folder = tmp_path / "models" / "embeddings"
    folder.mkdir(parents=True)
    save_file({"emb_params": rows_of(pipe.text_encoder, pipe.tokenizer, "red")}, folder / "MyRed.safetensors")
    save_file({"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(2, 1280)}, folder / "xl-only.safetensors")
    found = embeddings_for(tmp_path / "models").files
    assert set(found) == {"myred", "xl-only"}
    named = embeddings_named(pipe, found, ("a MyRed fox", "xl-only"))
    notes = named.notes
    assert named.paths == {"myred": found["myred"]}
    plain = encode(pipe, "a red fox", "xl-only")
    with prompts_weighted(pipe, named.vectors):
        named, negative = encode(pipe, "a MyRed fox", "xl-only")
        weighed, _ = encode(pipe, "a (myred:1.2) fox, myredder", "xl-only")
    assert torch.allclose(named, plain[0], atol=1e-5)  # the vectors of "red", put where "myred" stood
    assert torch.allclose(negative, plain[1], atol=1e-6)  # an embedding for SDXL is read as words on SD
    assert notes == ["The embedding xl-only is made for SDXL (it holds clip_l and clip_g vectors), not for this "
                     "model. It was read as words."]
    assert not torch.allclose(weighed[:, :6], named[:, :6], atol=1e-3)
    chunks = chunk_tokens(pipe.tokenizer, parse_emphasis("x" * 73 + " myred"), {"myred": 3})
    assert [len(c.tokens) for c in chunks] == [73, 3] and chunks[1].vectors == {0: ("myred", 0), 1: ("myred", 1),
                                                                                  2: ("myred", 2)}


def test_sdxl_embeddings_give_each_text_encoder_its_own_vectors(tmp_path):
    from safetensors.torch import save_file

    pipe = load_model(build_tiny_sdxl(tmp_path / "tiny-xl"), select_device("cpu")).text2img
    folder = tmp_path / "models" / "embeddings"
    folder.mkdir(parents=True)
    save_file({"clip_l": rows_of(pipe.text_encoder, pipe.tokenizer, "red"),
               "clip_g": rows_of(pipe.text_encoder_2, pipe.tokenizer_2, "red")}, folder / "myred.safetensors")
    from studio.core.library_embeddings import embeddings_for

    plain = encode(pipe, "a red fox", None)
    vectors = embeddings_named(pipe, embeddings_for(tmp_path / "models").files, ("a myred fox",)).vectors
    with prompts_weighted(pipe, vectors):
        named = encode(pipe, "a myred fox", None)
    for ours, theirs in zip(named, plain, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_engine_uses_embeddings_from_the_models_folder_and_notices_a_new_one(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file

    models = tmp_path / "models"
    (models / "embeddings").mkdir(parents=True)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))

    def make(prompt: str) -> np.ndarray:
        return painted(generator, tiny_model_dir, prompt)[0]

    as_words = make("a myred fox, snow")
    pipe = generator._model.text2img
    save_file({"emb_params": rows_of(pipe.text_encoder, pipe.tokenizer, "red")},
              models / "embeddings" / "myred.safetensors")
    with_vectors = make("a myred fox, snow")  # the same prompt: the cache must not answer with the words' reading
    assert np.abs(with_vectors - make("a red fox, snow")).max() <= 1
    [(_, recipe)] = generator.generate(tiny_request(tiny_model_dir, prepared=True, prompt="a myred fox"),
                                       DirectContext())
    digest = hashlib.sha256((models / "embeddings" / "myred.safetensors").read_bytes()).hexdigest()[:12]
    assert recipe.ti_hashes == f"myred: {digest}"  # as A1111 writes them
    assert f'TI hashes: "myred: {digest}"' in recipe.to_parameters()
    assert Recipe.from_parameters(recipe.to_parameters()).ti_hashes == f"myred: {digest}"
    assert np.abs(with_vectors - as_words).max() > 0


def test_chunks_follow_a1111_at_a_comma_and_around_long_embeddings(pipe):
    # A comma as the 76th token starts the next chunk; the comma before it does not pull words back.
    chunks = chunks_of(pipe, "a" * 60 + "," + "b" * 14 + ",c")
    assert [text.replace(" ", "") for text, _ in chunks] == ["a" * 60 + "," + "b" * 14, ",c"]
    # An embedding never goes back to a comma, and is never cut: past 75 vectors it goes on in the next chunk.
    chunks = chunk_tokens(pipe.tokenizer, parse_emphasis("a" * 55 + "," + "b" * 19 + " big"), {"big": 60})
    assert [len(c.tokens) for c in chunks] == [75, 60]
    chunks = chunk_tokens(pipe.tokenizer, parse_emphasis("huge"), {"huge": 80})
    assert [len(c.tokens) for c in chunks] == [75, 5]
    assert [row for c in chunks for _, row in c.vectors.values()] == list(range(80))


def test_broken_embedding_files_are_sentences_said_at_every_job(pipe, tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "embeddings"
    folder.mkdir()
    save_file({"emb_params": torch.zeros(0)}, folder / "empty.safetensors")
    save_file({"a": torch.zeros(2, 32), "b": torch.zeros(2, 32)}, folder / "two.safetensors")
    (folder / "junk.safetensors").write_bytes(b"not a weights file")
    found = {p.stem: p for p in folder.iterdir()}
    named = embeddings_named(pipe, found, ("empty two junk", ""))
    notes = named.notes
    assert named.paths == {} and named.vectors == {}
    assert len(notes) == 3 and all(n.endswith("It was read as words.") for n in notes)
    assert any("holds 2 tensors (a, b) and none named emb_params" in n for n in notes)
    with prompts_weighted(pipe, {}):
        encode(pipe, "empty two junk")  # none usable: read as words, no error


def test_embeddings_in_a_folder_linked_later_are_used_without_reloading_the_model(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file

    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache",
                                                        tmp_path / "models"))

    def make(prompt: str) -> np.ndarray:
        return painted(generator, tiny_model_dir, prompt)[0]

    red = make("a red fox, snow")
    pipe = generator._model.text2img
    comfy = tmp_path / "ComfyUI" / "models"
    (comfy / "embeddings").mkdir(parents=True)
    save_file({"emb_params": rows_of(pipe.text_encoder, pipe.tokenizer, "red")},
              comfy / "embeddings" / "myred.safetensors")
    generator.use_linked_dirs((comfy,))
    assert np.abs(make("a myred fox, snow") - red).max() <= 1
    assert generator._model.text2img is pipe  # nothing was loaded again


def test_embeddings_in_a_linked_invokeai_folder_are_used_and_a_wide_one_is_said_not_to_fit(tiny_model_dir, tmp_path):
    """InvokeAI keeps them in models/<base>/embedding: the library listed them, and jobs never looked there."""
    from safetensors.torch import save_file

    invoke = tmp_path / "invokeai"
    (invoke / "models" / "sd-1" / "main").mkdir(parents=True)
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache",
                                                        tmp_path / "models", (invoke,)))
    [(red, _)] = generator.generate(tiny_request(tiny_model_dir, prepared=True, prompt="a red barn, snow",
                                                 negative_prompt="InvNeg768"), DirectContext())
    pipe = generator._model.text2img
    folder = invoke / "models" / "sd-1" / "embedding"
    folder.mkdir()
    save_file({"emb_params": rows_of(pipe.text_encoder, pipe.tokenizer, "red")}, folder / "InvRed.safetensors")
    save_file({"emb_params": torch.zeros(1, 768)}, folder / "InvNeg768.safetensors")
    context = DirectContext()
    [(image, recipe)] = generator.generate(tiny_request(tiny_model_dir, prepared=True, prompt="a InvRed barn, snow",
                                                        negative_prompt="InvNeg768"), context)
    digest = hashlib.sha256((folder / "InvRed.safetensors").read_bytes()).hexdigest()[:12]
    assert recipe.ti_hashes == f"InvRed: {digest}"  # by its file name, as A1111 writes them
    assert any(note.startswith("The embedding InvNeg768 does not fit this model") for note in context.notes)
    assert np.abs(np.asarray(image, dtype=np.int16) - np.asarray(red, dtype=np.int16)).max() <= 1


def test_a_pickle_embedding_the_prompt_names_is_a_note_of_the_job(tiny_model_dir, tmp_path):
    """A1111's bad_prompt_v2.pt in a negative prompt was read as words without a word said."""
    import pickle

    models = tmp_path / "models"
    (models / "embeddings").mkdir(parents=True)
    (models / "embeddings" / "bad_prompt_v2.pt").write_bytes(pickle.dumps({"string_to_param": {}}))
    generator = DiffusersGenerator(GeneratorEnvironment("cpu", tmp_path / "data", tmp_path / "cache", models))
    context = DirectContext()
    list(generator.generate(tiny_request(tiny_model_dir, prepared=True, negative_prompt="blurry, bad_prompt_v2"),
                            context))
    assert [n for n in context.notes if "bad_prompt_v2" in n] == [
        "bad_prompt_v2 is a .pt embedding, which Studio does not load (pickle files can run code), so it was read as "
        f"words; convert it with `studio models import --convert {models / 'embeddings' / 'bad_prompt_v2.pt'}`."]
    context = DirectContext()
    list(generator.generate(tiny_request(tiny_model_dir, prepared=True, negative_prompt="bad_prompt"), context))
    assert not [n for n in context.notes if "bad_prompt" in n]  # not named as a whole word: nothing to say
