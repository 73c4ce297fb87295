"""A1111's <lora:name:weight> tags: out of the prompt the model encodes, into the job's LoRAs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image, PngImagePlugin

from studio.core.errors import InvalidRequest
from studio.core.image_info import recipe_fields
from studio.core.image_inspection import inspect_image
from studio.core.images import read_recipe
from studio.core.metadata import LoraRecord
from studio.core.prompt_loras import (
    LORA_TAG,
    read_tags,
    tag_choices,
    tag_weight,
    take_lora_tags,
    the_one_named,
    with_tags,
    without_tags,
    written_prompt,
)
from studio.core.requests import MAX_LORAS, GenerationRequest, LoraChoice, prepare_request


@pytest.fixture
def base(tmp_path) -> GenerationRequest:
    model = tmp_path / "model"
    model.mkdir()
    return GenerationRequest(model=str(model), prompt="a fox", seed=5)


def refused(request: GenerationRequest) -> str:
    with pytest.raises(InvalidRequest) as err:
        prepare_request(request)
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message
    return message


@pytest.mark.parametrize(("prompt", "encoded"), [
    ("<lora:ink:0.8> fox", "fox"),
    ("fox, <lora:ink>", "fox"),
    ("masterpiece,<lora:ink:1>", "masterpiece"),
    ("a fox, <lora:ink:0.8>, snow", "a fox, snow"),
    ("a fox <lora:ink:0.6>, snow <lora:film grain:1>", "a fox, snow"),
    ("a <lora:ink> fox", "a fox"),
    ("a  <lora:ink>  fox", "a fox"),
    ("fox, <lora:a>, <lora:b:0.5>, snow", "fox, snow"),
    ("<lora:a>, <lora:b>, fox", "fox"),
    ("a,<lora:ink>,b", "a, b"),
    ("fox\n<lora:ink:0.8>\nsnow", "fox\nsnow"),
    ("fox <lyco:ink:0.8>", "fox"),  # A1111's other name for the same tags
    ("a fox, (snow:1.2), <3 hearts", "a fox, (snow:1.2), <3 hearts"),  # nothing that is no tag is touched
    ("<hypernet:x:1> fox", "<hypernet:x:1> fox"),  # other extra networks are not LoRAs
])
def test_tags_are_taken_out_and_the_prompt_is_left_tidy(prompt, encoded):
    assert without_tags(prompt) == encoded


@pytest.mark.parametrize(("prompt", "loras"), [
    ("<lora:ink> fox", [("ink", 1.0)]),
    ("fox <lora:ink:0.8>", [("ink", 0.8)]),
    ("fox <lora: film grain :-0.5>", [("film grain", -0.5)]),
    ("<lora:ink:0.8:0.8>", [("ink", 0.8)]),
    # A1111: <lora:name:te:unet>; Studio applies one weight to both, the UNet's.
    ("<lora:ink:0.5:0.9>", [("ink", 0.9)]),
    ("<lora:ink:te=0.5:unet=0.9>", [("ink", 0.9)]),
    ("<lora:ink:unet=0.3>", [("ink", 0.3)]),
    ("<lora:ink:te=0.6>", [("ink", 0.6)]),  # the UNet's weight is the text encoder's unless given
    ("<lora:a:0.5> <lyco:b:2>", [("a", 0.5), ("b", 2.0)]),
])
def test_each_tag_asks_for_its_lora_at_the_weight_studio_applies(prompt, loras):
    choices = tag_choices(prompt)
    assert [(c.name, c.weight) for c in choices] == loras
    assert [c.tag for c in choices] == [tag.text for tag in read_tags(prompt)]


@pytest.mark.parametrize(("prompt", "sentence"), [
    ("<lora:ink:abc> fox", "The tag <lora:ink:abc> in the prompt has the weight 'abc', which is not a number; write "
                           "<lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>."),
    ("<lora:ink:0.5:heavy>", "The tag <lora:ink:0.5:heavy> in the prompt has the weight 'heavy', which is not a "
                             "number; write <lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>."),
    ("<lora:ink:>", "The tag <lora:ink:> in the prompt has the weight '', which is not a number; write "
                    "<lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>."),
    ("<lora::0.8> fox", "The tag <lora::0.8> in the prompt names no LoRA; write <lora:NAME:WEIGHT>, e.g. "
                        "<lora:detail:0.8>."),
    ("<lora:ink:9>", "The weight of the LoRA ink (<lora:ink:9> in the prompt) must be between -4 and 4, not 9."),
    ("<lora:ink:nan>", "The weight of the LoRA ink (<lora:ink:nan> in the prompt) must be between -4 and 4, not nan."),
    ("<lora:ink:0.5> <lora:ink:0.8>", "The prompt tags the LoRA ink twice, as <lora:ink:0.5> and <lora:ink:0.8>; "
                                      "keep one tag, with one weight."),
])
def test_a_bad_tag_is_refused_with_one_sentence(base, prompt, sentence):
    assert refused(replace(base, prompt=prompt)) == sentence


def test_a_request_s_tags_become_its_loras_and_a_note_says_so(base):
    prepared = prepare_request(replace(base, prompt=" <lora:ink:0.8> a fox, <lora:film grain>, snow ",
                                       negative_prompt="blurry"))
    request = prepared.request
    assert request.prompt == "a fox, snow"  # what the text encoder reads, and the recipe records
    assert [(c.name, c.weight, c.tag) for c in request.loras] == [("ink", 0.8, "<lora:ink:0.8>"),
                                                                    ("film grain", 1.0, "<lora:film grain>")]
    assert prepared.notes == ("LoRAs from the prompt: ink (0.8), film grain (1).",)
    again = prepare_request(request)  # a prepared request is prepared alike: its tags' LoRAs stay
    assert (again.request.prompt, again.request.loras) == (request.prompt, request.loras)


def test_a_lora_both_chosen_and_tagged_is_applied_once_at_the_chosen_weight(base):
    prepared = prepare_request(replace(base, prompt="<lora:ink:0.8> fox <lora:grain:0.3>",
                                       loras=(LoraChoice("ink", 0.5),)))
    assert prepared.request.prompt == "fox"
    assert prepared.request.loras == (LoraChoice("ink", 0.5), LoraChoice("grain", 0.3))
    assert prepared.request.loras[0].tag == ""
    assert prepared.notes == ("LoRAs from the prompt: grain (0.3).",
                              "The LoRA ink is chosen at 0.5 and tagged in the prompt as <lora:ink:0.8>; it is "
                              "applied once, at the chosen 0.5.")
    # The same tag twice at one weight is the one LoRA; a name differing only in case is the same LoRA too.
    same = prepare_request(replace(base, prompt="<lora:Ink:0.8> fox <lora:ink:0.8>"))
    assert [(c.name, c.weight) for c in same.request.loras] == [("Ink", 0.8)]


def test_a_tag_the_window_or_cli_found_the_file_of_is_that_one(base):
    """The window and the CLI find a tag's file as they find a chosen LoRA's (a linked folder's, by its path) and
    hand it in the request: the tag is not taken twice."""
    found = LoraChoice("/a1111/models/Lora/ink.safetensors", 0.8, tag="<lora:ink:0.8>")
    chosen = LoraChoice("/a1111/models/Lora/ink.safetensors", 0.4)
    prompt, loras, notes = take_lora_tags("fox <lora:ink:0.8>", "", (found,))
    assert (prompt, loras, notes) == ("fox", (found,), ["LoRAs from the prompt: ink (0.8)."])
    prompt, loras, notes = take_lora_tags("fox <lora:ink:0.8>", "", (chosen, found))
    assert loras == (chosen,) and loras[0].weight == 0.4
    assert notes == ["The LoRA ink is chosen at 0.4 and tagged in the prompt as <lora:ink:0.8>; it is applied once, "
                     "at the chosen 0.4."]


def test_chosen_and_tagged_loras_count_together(base):
    chosen = tuple(LoraChoice(f"c{i}") for i in range(MAX_LORAS - 2))
    assert len(prepare_request(replace(base, prompt="<lora:t1> <lora:t2> fox", loras=chosen)).request.loras) \
        == MAX_LORAS
    assert refused(replace(base, prompt="<lora:t1> <lora:t2> <lora:t3> fox", loras=chosen)) == (
        f"At most {MAX_LORAS} LoRAs can be applied at once, not {MAX_LORAS + 1} ({MAX_LORAS - 2} chosen and 3 tagged "
        "in the prompt).")


def test_what_studio_applies_otherwise_than_a1111_is_noted(base):
    prepared = prepare_request(replace(base, prompt="<lora:ink:0.5:0.9> fox <lora:dots:1:1:8>"))
    assert [(c.name, c.weight) for c in prepared.request.loras] == [("ink", 0.9), ("dots", 1.0)]
    assert prepared.notes == (
        "LoRAs from the prompt: ink (0.9), dots (1).",
        "Studio applies a LoRA at one weight: <lora:ink:0.5:0.9> is applied at its UNet weight, 0.9, to its "
        "text-encoder layers too.",
        "dyn=8 in <lora:dots:1:1:8> is not used by Studio; the LoRA is applied whole.")
    chosen = prepare_request(replace(base, prompt="<lora:ink:0.5:0.9> fox", loras=(LoraChoice("ink", 0.2),)))
    assert chosen.notes == ("The LoRA ink is chosen at 0.2 and tagged in the prompt as <lora:ink:0.5:0.9>; it is "
                            "applied once, at the chosen 0.2.",)  # the tag's weights are not the ones applied


def test_the_negative_prompt_s_tags_are_words_as_in_a1111(base):
    prepared = prepare_request(replace(base, prompt="a fox", negative_prompt="blurry, <lora:ugly:1>"))
    assert (prepared.request.negative_prompt, prepared.request.loras) == ("blurry, <lora:ugly:1>", ())
    assert prepared.notes == ("The negative prompt's <lora:ugly:1> is read as words, as A1111 reads them: LoRAs are "
                              "taken from the prompt only.",)


def test_a_plugin_generator_s_prompt_loses_its_tags_and_the_loras_are_left_out_with_the_usual_note(base):
    prepared = prepare_request(replace(base, generator="procedural", prompt="<lora:ink:0.8> waves"))
    assert (prepared.request.prompt, prepared.request.loras) == ("waves", ())
    assert prepared.notes == ("LoRAs and the VAE choice apply to Studio's own generator only; they were left out.",)


def test_an_a1111_picture_gives_its_prompt_as_encoded_and_its_loras_once(tmp_path):
    text = ("a fox <lora:ink:0.6>, snow <lora:grain:0.5:0.7>\nNegative prompt: blurry\n"
            'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model: dreamy, '
            'Lora hashes: "ink: 0123456789ab", Version: v1.10.1')
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    fields = recipe_fields(inspect_image(path))
    assert fields["prompt"] == "a fox, snow" and fields["loras"] == [("ink", 0.6), ("grain", 0.7)]
    recipe = read_recipe(path)
    assert recipe.prompt == "a fox, snow"
    assert recipe.loras == (LoraRecord("ink", "0123456789ab", 0.6), LoraRecord("grain", "", 0.7))


@pytest.mark.parametrize(("text", "prompt"), [
    ("a fox, <lora:ink:0.8> <lora:grain:1>", "a fox,"),  # exact: the prompt's own comma stays
    ("a fox  <lora:ink:1>", "a fox "),
    ("<lora:ink:1> <lora:grain:1>", ""),
    ("a fox,<lora:ink:1>", None),  # not as Studio writes: read as A1111 reads any text
    ("a <lora:ink:1> fox", None),
    ("a fox", None),
])
def test_written_prompt_undoes_with_tags_only(text, prompt):
    assert written_prompt(text) == prompt
    if prompt is not None:
        assert with_tags(prompt, [m.group(0) for m in LORA_TAG.finditer(text)]) == text


@pytest.mark.parametrize(("weight", "text"), [(1.0, "1"), (0.8, "0.8"), (-1.5, "-1.5"), (0.1234567, "0.1234567"),
                                              (2, "2")])
def test_tag_weight_is_the_shortest_exact_text(weight, text):
    assert tag_weight(weight) == text and float(text) == weight


def _named(name: str, files: list[str]) -> str | None:
    """``name`` looked up among LoRA files named by their paths inside the LoRA folder, as the engine does."""
    return the_one_named(name, files, lambda path: (path,))


def test_a_name_but_for_case_names_the_one_file_it_matches():
    """The rule the engine, the command line and the window share: the same spelling first, else the only name
    equal but for letter case; .safetensors optional on either side; a path inside the LoRA folder counts."""
    files = ["ink.safetensors", "styles/Detail-Kohya.safetensors", "Film.safetensors", "film.safetensors"]
    assert _named("INK", files) == "ink.safetensors"
    assert _named("Ink.SafeTensors", files) == "ink.safetensors"
    assert _named("STYLES/detail-kohya", files) == "styles/Detail-Kohya.safetensors"
    assert _named("detail-kohya", files) is None  # a file in a subfolder is named by its path there
    assert _named("FILM", files) is None  # two differ only in case: not guessed between
    assert _named("film.safetensors", files) == "film.safetensors"  # unless one is spelled as named
    assert _named("sketch", files) is None
    items = [("Ink", "/loras/Ink.safetensors"), ("ink-v2", "/loras/ink-v2.safetensors")]
    assert the_one_named("ink", items, lambda item: item) == items[0]  # a name, its file's or its path
    assert the_one_named("/LORAS/INK-V2", items, lambda item: item) == items[1]


def test_two_items_of_the_same_exact_name_are_not_guessed_between():
    items = [("ink", "/loras/a/ink.safetensors"), ("ink", "/loras/b/ink.safetensors")]
    assert the_one_named("ink", items, lambda item: item) is None
    assert the_one_named("/loras/b/ink.safetensors", items, lambda item: item) == items[1]  # its path says which


def test_the_library_item_is_found_by_a_hash_recorded_at_another_length():
    """A picture records A1111's 10- or 12-character hash, where Studio may hold the whole sha256 (or the other
    way round): the item whose hash matches as far as both go is the one, in any case; a differing one is not."""
    from studio.core.prompt_loras import the_library_item

    items = {"renamed": "51333A97CDA7F00D", "other": "0123456789ab"}

    def found(digest: str) -> str | None:
        return the_library_item("ink", items, lambda item: (item,), lambda item: "", digest, items.get)

    assert found("51333a97cd") == "renamed"  # shorter than the library's
    assert found("51333a97cda7f00d0000") == "renamed"  # longer
    assert found("51333a97ce") is None
