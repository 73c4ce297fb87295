"""request_for_entry's sentence for a model that is gone: one shape for the window and the command line, the
model's name first and its path last (the window's status line cuts a long sentence off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import InvalidRequest
from studio.services.history_reuse import request_for_entry
from studio.services.history_store import HistoryEntry


def _refusal(entry: HistoryEntry, label: str | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        request_for_entry(entry, label=label)
    return str(caught.value)


def test_a_gone_model_is_said_by_its_name_first_and_its_path_last(tmp_path: Path):
    gone = tmp_path / "models" / "dreamy-v2.safetensors"
    entry = HistoryEntry("a fox", model_name="Dreamy v2", model_path=str(gone), id=3)
    assert _refusal(entry) == f"The model Dreamy v2 is gone, so history entry 3 cannot be run again; {gone} no " \
                              "longer exists."
    assert _refusal(entry, "the picture “a fox”") == f"The model Dreamy v2 is gone, so the picture “a fox” cannot be " \
                                                    f"run again; {gone} no longer exists."


@pytest.mark.parametrize(("file_name", "said"), [("dreamy-v2.safetensors", "dreamy-v2"), ("sd-1.5", "sd-1.5")])
def test_a_gone_model_without_a_recorded_name_is_named_by_its_file_or_folder(tmp_path: Path, file_name: str,
                                                                            said: str):
    gone = tmp_path / file_name  # a checkpoint file loses its extension; a diffusers folder keeps all its name
    entry = HistoryEntry("a fox", model_path=str(gone), id=3)
    assert _refusal(entry) == f"The model {said} is gone, so history entry 3 cannot be run again; {gone} no longer " \
                              "exists."


def test_the_usable_chain_keeps_steps_that_can_be_set_up_and_says_the_others(tmp_path: Path):
    """Load parameters sets the chain up from this: a damaged record is skipped, a step of a plugin that is not
    here is left out, style transfer without its weights is kept with its missing files named."""
    from studio.plugin_host.registry import builtin_registry
    from studio.services.history_reuse import usable_chain

    style = tmp_path / "style"
    style.mkdir()
    (style / "adain-vgg.safetensors").write_bytes(b"")
    entry = HistoryEntry("a fox", id=3, params={"post": [
        "junk", {"params": {}}, {"processor": "gone-plugin"},
        {"processor": "adain", "params": {"alpha": 0.5, "style": "<picture 8x8>"}, "strength": 7},
        {"processor": "color", "params": {}, "strength": 0.25}]})
    chain = usable_chain(entry.params["post"], builtin_registry(), style)
    assert [(s.processor, s.params, s.strength) for s in chain.steps] == [("adain", {"alpha": 0.5}, 1.0),
                                                                          ("color", {}, 0.25)]
    assert chain.notes == [
        "Its post-processing step 'gone-plugin' was left out of the chain: no installed and enabled plugin "
        "provides it.",
        f"Its Fast Style Transfer (AdaIN) step needs adain-decoder.safetensors, missing in {style}: until Filters › "
        "Style Weights… imports it, pictures are made without that step.",
        "Its Fast Style Transfer (AdaIN) step's picture was not kept; choose one for it in the post-processing chain."]
    assert usable_chain("junk", builtin_registry(), style) == ((), [])


def test_gone_model_names_only_a_stable_diffusion_model_that_is_gone(tmp_path: Path):
    from studio.services.history_reuse import gone_model

    assert gone_model(HistoryEntry("a", model_name="Dreamy", model_path=str(tmp_path / "dreamy"))) == "Dreamy"
    assert gone_model(HistoryEntry("a", model_path=str(tmp_path / "dreamy-v2.safetensors"))) == "dreamy-v2"
    assert gone_model(HistoryEntry("a", model_path=str(tmp_path))) is None  # there
    assert gone_model(HistoryEntry("a", model_path="")) is None
    assert gone_model(HistoryEntry("a", model_path=str(tmp_path / "x"), generator="noise")) is None  # a plugin's


def test_a_rerun_asks_for_the_precision_its_entry_recorded_and_speed_stays_the_persons(tmp_path: Path):
    # The window's Run again computed in the precision the person's Speed picks now: a picture made in bfloat16 came
    # back in float32 under Plain diffusers, 8 grey levels apart in places, without a word.
    from studio.core.settings import Settings

    model = tmp_path / "m"
    model.mkdir()
    entry = HistoryEntry("a fox", model_path=str(model), id=3, params={"precision": "bfloat16"})
    request = request_for_entry(entry, Settings(models_dir=tmp_path, outputs_dir=tmp_path, speed="eager"))
    assert (request.precision, request.speed) == ("bfloat16", "eager")
    assert request_for_entry(HistoryEntry("a fox", model_path=str(model), params={"precision": 16})).precision == ""
