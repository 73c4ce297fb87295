"""The Depth preprocessor in core: recorded and written as sd-webui-controlnet's ``depth_anything_v2``, run through
the ``annotate`` the engine gives (core has no torch), and its model found in the models folder's annotators/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_files import write
from PIL import Image

from studio.core.annotators import (
    DEPTH_FILES,
    DEPTH_FOLDER,
    DEPTH_REPO,
    DOWNLOAD_COMMAND,
    depth_model_missing,
    find_depth_model,
)
from studio.core.control import DEPTH, NONE, ControlGuide, controls_from_settings, preprocess
from studio.core.errors import InvalidRequest
from studio.core.metadata import Recipe
from studio.core.model_library import scan_library

BASE = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: m, "


def test_a_depth_guide_is_written_as_depth_anything_v2_and_read_back_as_depth() -> None:
    record = ControlGuide("control_v11f1p_sd15_depth", preprocessor=DEPTH, weight=0.7).to_record("cfd03158")
    recipe = Recipe("a", "", 20, "Euler a", 7, 1, 512, 512, "model", controls=(record,))
    text = recipe.to_parameters()
    assert 'ControlNet 0: "Module: depth_anything_v2, Model: control_v11f1p_sd15_depth [cfd03158], Weight: 0.7' in text
    assert Recipe.from_parameters(text).controls == Recipe.from_json(recipe.to_json()).controls == (record,)
    assert (record["preprocessor"], "module" in record) == (DEPTH, False)
    assert ControlGuide.from_record(record) == ControlGuide("control_v11f1p_sd15_depth", preprocessor=DEPTH,
                                                            weight=0.7)


def test_an_a1111_depth_anything_v2_unit_is_studio_s_depth_and_its_other_depth_modules_stay_as_written() -> None:
    units = {"ControlNet 0": "Module: depth_anything_v2, Model: depth [cfd03158], Weight: 1",
             "ControlNet 1": "Module: depth_midas, Model: depth, Weight: 1",
             "ControlNet-2 Module": "depth", "ControlNet-2 Model": "control_depth-fp16"}  # 1.0's "depth": MiDaS
    assert [(r["preprocessor"], r.get("module")) for r in controls_from_settings(units)] == [
        (DEPTH, None), (NONE, "depth_midas"), (NONE, "depth")]
    (old,) = Recipe.from_parameters(BASE + "ControlNet-0 Module: depth, ControlNet-0 Model: d").controls
    assert 'Module: depth, Model: d' in Recipe("a", "", 20, "Euler a", 7, 1, 512, 512, "m",
                                               controls=(old,)).to_parameters()


def test_depth_runs_what_the_engine_gives_on_the_picture_as_it_is() -> None:
    picture = Image.new("RGBA", (6, 4), (10, 20, 30, 128))
    given = []

    def annotate(preprocessor: str, image: Image.Image) -> Image.Image:
        given.append((preprocessor, image))
        return Image.new("L", image.size, 200)

    made = preprocess(picture, DEPTH, annotate=annotate)
    assert given == [(DEPTH, picture)]  # the same object: the engine keeps its maps by the picture
    assert (made.mode, made.size, made.getpixel((0, 0))) == ("RGB", (6, 4), (200, 200, 200))
    with pytest.raises(InvalidRequest, match="runs a model"):
        preprocess(picture, DEPTH)
    ControlGuide("net", picture, preprocessor=DEPTH).check()  # a valid preprocessor for a job


def _depth_folder(folder: Path, files: tuple[str, ...] = DEPTH_FILES) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        if name.endswith(".safetensors"):
            write(folder / name, {"backbone.embeddings.cls_token": (1, 1, 4)})
        else:
            config = {"model_type": "depth_anything", "architectures": ["DepthAnythingForDepthEstimation"]}
            (folder / name).write_text(json.dumps(config if name == "config.json" else {}))
    return folder


def test_the_depth_model_is_found_whole_in_annotators_and_listed_as_a_depth_map_model(tmp_path: Path) -> None:
    assert find_depth_model(tmp_path) is None and find_depth_model(None) is None
    _depth_folder(tmp_path / "annotators" / "half", ("config.json", "model.safetensors"))  # no processor yet
    assert find_depth_model(tmp_path) is None
    base = _depth_folder(tmp_path / "annotators" / "depth-anything-v2-base")  # one a person put there
    assert find_depth_model(tmp_path) == base
    own = _depth_folder(tmp_path / DEPTH_FOLDER)
    assert find_depth_model(tmp_path) == own  # where the download puts it comes first
    (item,) = [i for i in scan_library(tmp_path) if i.path == own.resolve()]
    assert (item.kind, item.label, item.usable) == ("annotator", "Depth map model (Depth Anything)", True)


def test_the_missing_model_sentence_says_how_to_get_it(tmp_path: Path) -> None:
    said = depth_model_missing(tmp_path)
    assert said.startswith("The Depth preprocessor needs the Depth Anything V2 Small model (99 MB), which is not")
    # Said by the engine, for a job from the window or the command line: both ways to get it.
    assert (f"; download it with the button on a Depth guide's card or with `studio models download {DEPTH_REPO}`, "
            "or put its files") in said and str(tmp_path / DEPTH_FOLDER) in said
    assert f"; run `studio models download {DEPTH_REPO}`, or" in depth_model_missing(tmp_path, DOWNLOAD_COMMAND)
    assert "download it from the guide" in depth_model_missing(tmp_path, "download it from the guide")
