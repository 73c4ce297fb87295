"""ControlNet guides: checks, preprocessors, fitting, and how recipes record them (A1111's words)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from studio.core.control import (
    CANNY,
    INVERT,
    MAX_GUIDES,
    NONE,
    ControlGuide,
    check_guides,
    controls_from_settings,
    extend_guide,
    fit_control,
    place_control,
    preprocess,
    resolved_controls,
    shareable_controls,
)
from studio.core.errors import InvalidRequest
from studio.core.metadata import Recipe
from studio.core.requests import GenerationRequest, prepare_request


def _square() -> Image.Image:
    picture = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(picture).rectangle((16, 16, 47, 47), fill="black")
    return picture


def guide(**values) -> ControlGuide:
    return ControlGuide(**{"model": "canny-net", "image": _square(), **values})


def test_canny_finds_the_edges_of_a_shape_and_nothing_inside_it() -> None:
    edges = np.asarray(preprocess(_square(), CANNY).convert("L"))
    assert edges[16, 30] == 255 or edges[15, 30] == 255  # on the square's top edge
    assert edges[32, 32] == 0 and edges[2, 2] == 0  # inside, and the flat background
    assert set(np.unique(edges)) <= {0, 255}


def test_invert_turns_a_sketch_on_white_into_white_lines_on_black() -> None:
    inverted = np.asarray(preprocess(_square(), INVERT))
    assert tuple(inverted[2, 2]) == (0, 0, 0) and tuple(inverted[32, 32]) == (255, 255, 255)


def test_transparent_parts_are_black_and_sixteen_bit_grey_keeps_its_range() -> None:
    clear = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    assert preprocess(clear, NONE).getextrema() == ((0, 0), (0, 0), (0, 0))
    grey = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert preprocess(grey, NONE).getextrema()[0] == (255, 255)


def test_a_sketch_on_a_transparent_layer_keeps_its_lines_under_invert_and_canny() -> None:
    """Black lines drawn on a transparent layer: invert and Canny read the clear parts as white paper (as
    sd-webui-controlnet does); a picture taken as it is reads them as black, "nothing to follow"."""
    sketch = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(sketch).line((5, 5, 60, 60), fill=(0, 0, 0, 255), width=3)
    inverted = np.asarray(preprocess(sketch, INVERT).convert("L"))
    assert inverted[32, 32] == 255 and inverted[5, 58] == 0  # the line white, the clear paper black
    edges = np.asarray(preprocess(sketch, CANNY).convert("L"))
    assert edges[20:45, 20:45].max() == 255 and edges[:, 50:][:20].max() == 0  # along the line, not elsewhere
    assert preprocess(sketch, NONE).getextrema() == ((0, 0), (0, 0), (0, 0))


def test_fit_control_covers_the_size_and_keeps_the_centre() -> None:
    wide = Image.new("RGB", (200, 100), "black")
    ImageDraw.Draw(wide).rectangle((90, 0, 109, 99), fill="white")  # a bar in the middle
    fitted = fit_control(wide, 64, 64)
    assert fitted.size == (64, 64)
    assert fitted.getpixel((32, 32)) == (255, 255, 255) and fitted.getpixel((2, 32)) == (0, 0, 0)



def test_fit_control_scales_only_the_part_it_keeps(monkeypatch) -> None:  # noqa: ANN001
    """A 3000x1 strip fitted to 512x512 is cut before it is scaled (scaled whole first, it was 1,536,000 x 512 pixels:
    3.4 GB), and gives what cutting the scaled strip gave."""
    strip = Image.fromarray(np.arange(3000, dtype=np.uint8).reshape(1, 3000).repeat(3, 0).T.reshape(1, 3000, 3))
    seen = []
    real = Image.Image.resize

    def resize(image: Image.Image, size: tuple[int, int], *args, **kwargs) -> Image.Image:  # noqa: ANN002, ANN003
        seen.append(size)
        return real(image, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    fitted = fit_control(strip, 512, 512)
    assert fitted.size == (512, 512) and seen == [(512, 512)]
    middle = np.asarray(strip)[0, 1499:1501].astype(int).mean(axis=0)
    assert np.abs(np.asarray(fitted)[256, 256].astype(int) - middle).max() <= 2


def test_place_control_follows_the_start_picture_of_an_image_to_image_job() -> None:
    """img2img stretches its start picture to the job's size: a control picture of the start picture's size is
    stretched the same way, one of other proportions is first fitted to the start picture (crop and resize)."""
    start = Image.new("RGB", (128, 64), "black")
    ImageDraw.Draw(start).rectangle((4, 10, 11, 50), fill="white")
    stretched = start.resize((64, 64), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(place_control(start, (64, 64), (128, 64))), np.asarray(stretched))
    assert np.asarray(place_control(start, (64, 64)))[:, :16].max() == 0  # a new picture: the middle only
    square = Image.new("RGB", (64, 64), "black")  # fitted to 128x64 first: its middle rows, then stretched
    ImageDraw.Draw(square).rectangle((0, 16, 63, 47), fill="white")
    placed = np.asarray(place_control(square, (32, 32), (128, 64)).convert("L"))
    assert placed.min() > 200
    cut = np.asarray(place_control(start, (16, 16), (128, 64), (0, 0, 32, 32)).convert("L"))
    assert cut[8, 2] > 128 and cut[1, 12] == 0  # an inpainting box: cut from the fitted picture, then scaled


@pytest.mark.parametrize("preprocessor", [NONE, CANNY, INVERT])
def test_an_extended_guide_is_what_its_controlnet_saw_in_black_margins(preprocessor: str) -> None:
    """Outpainting: the margins are added after the preprocessor, so they are black (nothing to follow) whatever it
    is: Canny finds no edge along the old border, invert does not turn them white."""
    made = guide(preprocessor=preprocessor, low_threshold=50, image_path="/pictures/square.png")
    extended = extend_guide(made, (64, 64), (16, 8, 0, 24))
    assert extended.image.size == (80, 96)
    assert (extended.preprocessor, extended.image_path, extended.model) == (NONE, "", made.model)
    seen = np.asarray(extended.image)
    assert np.array_equal(seen[8:72, 16:], np.asarray(preprocess(made.image, preprocessor, 50)))
    assert seen[:8].max() == 0 and seen[72:].max() == 0 and seen[:, :16].max() == 0
    assert np.array_equal(np.asarray(extended.control_picture(80, 96, (80, 96))), seen)
    assert extend_guide(made, (32, 32), (16, 8, 0, 24)) is made  # made for another picture: fitted as ever
    assert extend_guide(made, (64, 64), (0, 0, 0, 0)) is made


@pytest.mark.parametrize(("values", "words"), [
    ({"model": " "}, "no ControlNet model"),
    ({"image": None}, "no control picture"),
    ({"preprocessor": "depth_midas"}, "not one of"),
    ({"weight": 2.5}, "weight must be between 0 and 2"),
    ({"weight": float("nan")}, "weight"),
    ({"start": 0.6, "end": 0.4}, "must start before it ends"),
    ({"preprocessor": CANNY, "low_threshold": 200, "high_threshold": 100}, "Canny thresholds"),
])
def test_a_guide_that_cannot_run_is_refused_in_a_sentence(values: dict, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        guide(**values).check()


def test_a_job_takes_a_few_guides_and_names_the_one_that_is_wrong(tmp_path) -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_GUIDES}"):
        check_guides((guide(),) * (MAX_GUIDES + 1))
    with pytest.raises(InvalidRequest, match="Control guide 2's weight"):
        check_guides((guide(), guide(weight=-1)))
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(InvalidRequest, match="Control guide 2"):
        prepare_request(GenerationRequest(model=str(model), prompt="a", controls=(guide(), guide(end=0))))
    prepared = prepare_request(GenerationRequest(model="", prompt="a", generator="procedural", controls=(guide(),)))
    assert prepared.request.controls == () and any("Control guides" in note for note in prepared.notes)


def test_a_recipe_writes_guides_as_sd_webui_controlnet_does_and_reads_them_back() -> None:
    record = guide(preprocessor=CANNY, weight=0.8, start=0.1, end=0.9, image_path="/kept/c.png").to_record("d14c016b")
    recipe = Recipe("a cat", "", 20, "Euler a", 7, 1, 512, 512, "model", controls=(record,))
    text = recipe.to_parameters()
    assert ('ControlNet 0: "Module: canny, Model: canny-net [d14c016b], Weight: 0.8, Guidance Start: 0.1, '
            'Guidance End: 0.9, Threshold A: 100, Threshold B: 200"') in text
    assert Recipe.from_parameters(text).controls == ({**record, "image": ""},)  # the text keeps no file
    assert Recipe.from_json(recipe.to_json()).controls == (record,)


def test_guides_from_automatic1111_and_damaged_records_are_read_safely() -> None:
    settings = {"ControlNet 0": "Module: invert (from white bg & black line), Model: control_v11p_sd15_scribble "
                                "[d4ba51ff], Weight: 1, Resize Mode: Crop and Resize, Processor Res: 512, "
                                "Guidance Start: 0, Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced",
                "ControlNet 1": "Module: openpose_full, Model: control_v11p_sd15_openpose [cab727d4], Weight: 1"}
    scribble, pose = controls_from_settings(settings)  # a preprocessor Studio lacks: named, its picture used as is
    assert (pose["preprocessor"], pose["module"]) == (NONE, "openpose_full")
    assert scribble["model"] == "control_v11p_sd15_scribble" and scribble["hash"] == "d4ba51ff"
    assert scribble["preprocessor"] == INVERT
    damaged = [{"model": "x", "weight": "strong"}, {"model": 3}, "text", {"model": "y", "start": 1, "end": 0.5},
               {"model": "ok", "weight": True}]
    assert Recipe.from_json(Recipe("a", "", 1, "Euler", 7, 1, 8, 8, "m", controls=tuple(damaged)).to_json()).controls \
        == ()
    assert ControlGuide.from_record({"model": "ok", "weight": 1.5}).weight == 1.5


def test_an_automatic1111_unit_without_a_controlnet_is_no_guide() -> None:
    settings = {"ControlNet 0": "Module: reference_only, Model: None, Weight: 1, Guidance Start: 0, Guidance End: 1",
                "ControlNet 1": "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1"}
    assert [record["model"] for record in controls_from_settings(settings)] == ["control_v11p_sd15_canny"]


def test_a_shared_recipe_names_kept_pictures_relative_to_the_outputs_and_other_files_by_name(tmp_path):
    outputs = tmp_path / "outputs"
    kept = outputs / "2026-12-07" / "sources" / "0123456789abcdef-control.png"
    records = (ControlGuide("canny", image_path=str(kept)).to_record("abc"),
               ControlGuide(str(tmp_path / "nets" / "lineart.safetensors"),
                            image_path=str(tmp_path / "photos" / "castle.png")).to_record(),
               ControlGuide("depth").to_record())
    shared = shareable_controls(records, outputs)
    assert [r["image"] for r in shared] == ["2026-12-07/sources/0123456789abcdef-control.png", "castle.png", ""]
    assert [r["model"] for r in shared] == ["canny", "lineart.safetensors", "depth"]
    assert shared[0]["hash"] == "abc" and str(tmp_path) not in repr(shared)
    # Read back: a relative path is in the outputs folder now; an absolute one (an older picture's) is as written.
    assert [r["image"] for r in resolved_controls(shared, outputs)] == [
        str(kept), str(outputs / "castle.png"), ""]
    assert resolved_controls(records[:1], tmp_path / "elsewhere") == records[:1]
    climbing = ({**records[0], "image": "../../etc/picture.png"},)
    assert resolved_controls(climbing, outputs)[0]["image"] == str(outputs / "picture.png")


def test_a_kept_picture_under_a_linked_outputs_folder_is_still_relative(tmp_path):
    real = tmp_path / "real"
    (real / "2026-12-07" / "sources").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    record = ControlGuide("canny", image_path=str(real / "2026-12-07" / "sources" / "a-control.png")).to_record()
    assert shareable_controls((record,), link)[0]["image"] == "2026-12-07/sources/a-control.png"
    assert Path(resolved_controls(shareable_controls((record,), link), link)[0]["image"]).parent.is_dir()
