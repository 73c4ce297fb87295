"""ControlNet guides in a picture's ``parameters`` text: what Studio writes reads back the same, and what
AUTOMATIC1111's sd-webui-controlnet writes (in its words of today and of older versions) is read."""

from __future__ import annotations

import pytest

from studio.core.control import CANNY, ControlGuide, controls_from_settings
from studio.core.metadata import Recipe


def _text_round_trip(record: dict) -> tuple[dict, ...]:
    recipe = Recipe("a cat", "", 20, "Euler a", 7, 1, 512, 512, "model", model_hash="0123456789", controls=(record,))
    return Recipe.from_parameters(recipe.to_parameters()).controls


@pytest.mark.parametrize("name", ["plain", "sd15/canny", "canny, v2", "canny: v2", 'my "best" net', "lineart [v1.1]",
                                  "x [y]", "a, Weight: 2", "a, Model: b", "tile, Guidance End: 0.5 [v2]"])
@pytest.mark.parametrize("digest", ["d14c016b", ""])
def test_a_model_name_with_commas_colons_quotes_or_brackets_reads_back_as_written(name: str, digest: str) -> None:
    record = ControlGuide(name, preprocessor=CANNY, weight=0.5, start=0.1, end=0.8).to_record(digest)
    (read,) = _text_round_trip(record)
    assert (read["model"], read["hash"]) == (name, digest)
    assert read == {**record, "image": ""}  # and the values after the name are its own


def test_only_eight_hex_digits_in_brackets_at_the_end_are_a_hash() -> None:
    settings = {f"ControlNet {i}": f"Module: none, Model: {model}, Weight: 1" for i, model in enumerate(
        ["control_v11p_sd15_canny [d14c016b]", "lineart [v1.1]", "net [d14c016]", "net [D14C016B] x", "net[d14c016b]"])}
    assert [(r["model"], r["hash"]) for r in controls_from_settings(settings)] == [
        ("control_v11p_sd15_canny", "d14c016b"), ("lineart [v1.1]", ""), ("net [d14c016]", ""),
        ("net [D14C016B] x", ""), ("net[d14c016b]", "")]
