"""A1111's ``<hypernet:name:weight>`` tags, which Studio does not apply: taken out of the prompt the model encodes
(it read them as words), with a note that says each was left out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.core.prompt_loras import take_lora_tags, without_tags
from studio.core.requests import GenerationRequest, LoraChoice, prepare_request


@pytest.mark.parametrize(("prompt", "encoded", "notes"), [
    ("<hypernet:anime:0.6> a fox", "a fox", ["Hypernetworks are not supported; <hypernet:anime:0.6> left out."]),
    ("a fox, <hypernet:anime>, snow", "a fox, snow", ["Hypernetworks are not supported; <hypernet:anime> left out."]),
    ("a fox <lora:ink:0.8>, snow <hypernet:x:1>", "a fox, snow",
     ["LoRAs from the prompt: ink (0.8).", "Hypernetworks are not supported; <hypernet:x:1> left out."]),
    ("a fox, <3 hearts", "a fox, <3 hearts", []),
])
def test_a_hypernet_tag_is_taken_out_of_the_prompt_with_a_note(prompt, encoded, notes):
    taken, loras, said = take_lora_tags(prompt, "", ())
    assert (taken, said) == (encoded, notes)
    assert [c.name for c in loras] == (["ink"] if "<lora:" in prompt else [])


def test_a_hypernet_tag_stays_in_a_recorded_prompt_as_a1111_wrote_it():
    # Reading another tool's text takes its LoRA tags out (they come back as its LoRAs); a hypernetwork's stays,
    # so that using the prompt again says again that it is left out.
    assert without_tags("<lora:ink> a fox <hypernet:x:1>") == "a fox <hypernet:x:1>"


def test_a_request_s_prompt_is_encoded_without_its_hypernet_tags(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    request = GenerationRequest(model=str(model), prompt="<hypernet:anime:0.6> a fox", seed=5,
                                loras=(LoraChoice("ink", 0.5),))
    prepared = prepare_request(request)
    assert prepared.request.prompt == "a fox"
    assert "Hypernetworks are not supported; <hypernet:anime:0.6> left out." in prepared.notes
    assert prepare_request(replace(prepared.request)).request.prompt == "a fox"  # prepared twice: the same


def test_a_plugin_generator_s_hypernet_tag_is_left_out_with_the_same_note():
    # Its prompt lost the tag without a word: the notes of the prompt's tags were all dropped for a plugin's generator.
    request = GenerationRequest(model="", generator="procedural", prompt="a fox <hypernet:foo:0.5>", seed=5)
    prepared = prepare_request(request)
    assert prepared.request.prompt == "a fox"
    assert prepared.notes == ("Hypernetworks are not supported; <hypernet:foo:0.5> left out.",)
