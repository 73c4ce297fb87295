"""ControlNet guides in a picture's ``parameters`` text: what Studio writes reads back the same, and what
AUTOMATIC1111's sd-webui-controlnet writes (in its words of today and of older versions) is read."""

from __future__ import annotations

import pytest

from studio.core.control import CANNY, INVERT, ControlGuide, controls_from_settings
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


# -- AUTOMATIC1111's pictures: every guide is read, in any of sd-webui-controlnet's ways of writing it -------------

BASE = ("a cat\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, ")


def _guides(settings_text: str) -> list[tuple]:
    recipe = Recipe.from_parameters(BASE + settings_text + ", Version: v1.10.1")
    return [(r["model"], r["hash"], r["preprocessor"], r.get("module", ""), r["weight"], r["start"], r["end"],
             r.get("low"), r.get("high")) for r in recipe.controls]


def test_a_guide_whose_preprocessor_studio_lacks_is_kept_by_its_name_and_uses_its_picture_as_it_is() -> None:
    assert _guides('ControlNet 0: "Module: depth_midas, Model: control_v11f1p_sd15_depth [cfd03158], Weight: 0.8, '
                   'Resize Mode: Crop and Resize, Processor Res: 512, Guidance Start: 0.1, Guidance End: 0.9, '
                   'Pixel Perfect: False, Control Mode: Balanced", ControlNet 1: "Module: openpose_full, '
                   'Model: control_v11p_sd15_openpose [cab727d4], Weight: 1, Guidance Start: 0, Guidance End: 1", '
                   'ControlNet 2: "Module: None, Model: control_v11p_sd15_lineart [43d4be0d], Weight: 0.5"') == [
        ("control_v11f1p_sd15_depth", "cfd03158", "none", "depth_midas", 0.8, 0.1, 0.9, 100, 200),
        ("control_v11p_sd15_openpose", "cab727d4", "none", "openpose_full", 1.0, 0.0, 1.0, 100, 200),
        ("control_v11p_sd15_lineart", "43d4be0d", "none", "", 0.5, 0.0, 1.0, 100, 200)]


def test_the_older_lowercase_text_is_read_with_its_range_and_canny_s_thresholds() -> None:
    assert _guides('ControlNet 0: "preprocessor: canny, model: control_sd15_canny [fef5e48e], weight: 1, '
                   'starting/ending: (0, 1), resize mode: Crop and Resize, pixel perfect: False, control mode: '
                   'Balanced, preprocessor params: (512, 64, 128)", ControlNet 1: "preprocessor: '
                   'lineart_coarse, model: control_v11p_sd15_lineart [43d4be0d], weight: 0.6, starting/ending: '
                   '(0.1, 0.8), resize mode: Crop and Resize, pixel perfect: True, control mode: ControlNet is more '
                   'important, preprocessor params: (512, 32, 64)", ControlNet 2: "preprocessor: canny, model: c, '
                   'weight: 1.0, starting/ending: (0.0, 1.0), resize mode: ResizeMode.INNER_FIT, pixel perfect: '
                   'True, control mode: ControlMode.BALANCED, preprocessor params: (-1, -1, -1)"') == [
        ("control_sd15_canny", "fef5e48e", "canny", "", 1.0, 0.0, 1.0, 64, 128),
        ("control_v11p_sd15_lineart", "43d4be0d", "none", "lineart_coarse", 0.6, 0.1, 0.8, 100, 200),
        ("c", "", "canny", "", 1.0, 0.0, 1.0, 100, 200)]  # thresholds it did not set: Canny's usual ones
    # One unit written without its number, and 1.0's settings of their own (a unit switched off is no guide).
    assert _guides('ControlNet: "preprocessor: none, model: control_v1p_sd15_qrcode_monster [a6e58995], weight: '
                   '1.35, starting/ending: (0.05, 1), resize mode: Resize and Fill"')[0][:7] == (
        "control_v1p_sd15_qrcode_monster", "a6e58995", "none", "", 1.35, 0.05, 1.0)
    assert _guides("ControlNet-0 Enabled: True, ControlNet-0 Module: canny, ControlNet-0 Model: control_canny-fp16 "
                   "[e3fe7712], ControlNet-0 Weight: 0.55, ControlNet-0 Guidance Start: 0, ControlNet-0 Guidance "
                   "End: 1, ControlNet-1 Enabled: True, ControlNet-1 Module: depth, ControlNet-1 Model: "
                   "control_depth-fp16 [400750f6], ControlNet-1 Weight: 0.8, ControlNet-2 Enabled: False, "
                   "ControlNet-2 Module: hed, ControlNet-2 Model: control_hed-fp16 [13fee50b]") == [
        ("control_canny-fp16", "e3fe7712", "canny", "", 0.55, 0.0, 1.0, 100, 200),
        ("control_depth-fp16", "400750f6", "none", "depth", 0.8, 0.0, 1.0, 100, 200)]


def test_invert_is_written_in_sd_webui_controlnet_s_words_and_both_names_read_back() -> None:
    record = ControlGuide("scribble", preprocessor=INVERT).to_record()
    recipe = Recipe("a", "", 20, "Euler a", 7, 1, 512, 512, "model", controls=(record,))
    assert 'ControlNet 0: "Module: invert (from white bg & black line), Model: scribble, ' in recipe.to_parameters()
    assert Recipe.from_parameters(recipe.to_parameters()).controls == (record,)
    assert _guides('ControlNet 0: "Module: invert, Model: scribble, Weight: 1"')[0][2:4] == (INVERT, "")


def test_another_tool_s_preprocessor_stays_named_through_a_recipe_s_json_and_text() -> None:
    (record,) = Recipe.from_parameters(BASE + 'ControlNet 0: "Module: depth_midas, Model: depth, Weight: 1"').controls
    assert (record["preprocessor"], record["module"]) == ("none", "depth_midas")
    recipe = Recipe("a", "", 20, "Euler a", 7, 1, 512, 512, "model", controls=(record,))
    assert 'ControlNet 0: "Module: depth_midas, Model: depth, ' in recipe.to_parameters()
    assert Recipe.from_json(recipe.to_json()).controls == Recipe.from_parameters(recipe.to_parameters()).controls \
        == (record,)
    assert ControlGuide.from_record({"model": "m", "preprocessor": "lineart_realistic"}).module == "lineart_realistic"
    assert ControlGuide.from_record({"model": "m", "module": "x" * 201}) is None  # no name: a damaged record
    assert "module" not in ControlGuide("m", preprocessor=CANNY).to_record()  # Studio's own: no other name
