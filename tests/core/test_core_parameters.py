"""Declared parameters: checking values (typed from the form, text from the command line) and reading
declarations from a manifest, each refusal one sentence naming the parameter."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.parameters import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    SeedParam,
    TextParam,
    params_for_record,
    schema_from_table,
    validate_params,
)

SCHEMA = (
    IntParam("octaves", default=4, min=1, max=8),
    FloatParam("scale", label="Zoom", default=2.0, min=0.1, max=10.0),
    ChoiceParam("pattern", choices=("clouds", "marble")),
    TextParam("caption", max_length=5),
    BoolParam("tile"),
    SeedParam("noise_seed"),
    ImageParam("reference", optional=True),
)


def refused(values: dict) -> str:
    with pytest.raises(InvalidRequest) as err:
        validate_params(SCHEMA, values, "Fields")
    return str(err.value)


def test_defaults_fill_what_is_not_given():
    assert validate_params(SCHEMA, {}, "Fields") == {
        "octaves": 4, "scale": 2.0, "pattern": "clouds", "caption": "", "tile": False, "noise_seed": -1,
        "reference": None}


def test_text_from_the_command_line_is_converted():
    values = validate_params(SCHEMA, {"octaves": " 6", "scale": "0.5", "tile": "yes", "noise_seed": "12"}, "F")
    assert (values["octaves"], values["scale"], values["tile"], values["noise_seed"]) == (6, 0.5, True, 12)


@pytest.mark.parametrize(("values", "message"), [
    ({"octaves": 9}, "Fields: Octaves must be between 1 and 8, not 9."),
    ({"octaves": "many"}, "Fields: Octaves must be a whole number, not 'many'."),
    ({"octaves": 2.5}, "Fields: Octaves must be a whole number, not 2.5."),
    ({"octaves": True}, "Fields: Octaves must be a whole number, not True."),
    ({"scale": 0}, "Fields: Zoom must be between 0.1 and 10, not 0."),
    ({"scale": float("nan")}, "Fields: Zoom must be a number, not nan."),
    ({"pattern": "waves"}, "Fields: Pattern must be one of clouds, marble, not 'waves'."),
    ({"caption": "too long"}, "Fields: Caption must be at most 5 characters long."),
    ({"tile": "maybe"}, "Fields: Tile must be yes or no, not 'maybe'."),
    ({"noise_seed": -2}, "Fields: Noise seed must be between -1 and 4294967295, not -2."),
    ({"reference": 3}, "Fields: Reference must be a picture, not int."),
    ({"colour": "red"}, "Fields has no parameter 'colour'; its parameters are: caption, noise_seed, octaves, "
                        "pattern, reference, scale, tile."),
])
def test_bad_values_are_one_sentence_naming_the_parameter(values, message):
    assert refused(values) == message


def test_pictures_are_converted_and_only_noted_in_records(tmp_path):
    path = tmp_path / "ref.png"
    Image.new("LA", (6, 4), (90, 255)).save(path)  # grey with an alpha that hides nothing
    values = validate_params(SCHEMA, {"reference": str(path)}, "F")
    assert values["reference"].mode == "RGB" and values["reference"].size == (6, 4)
    assert params_for_record(values)["reference"] == "<picture 6x4>"
    with pytest.raises(InvalidRequest, match="needs a picture"):
        validate_params((ImageParam("style"),), {}, "F")


def test_declarations_from_a_manifest_table():
    schema = schema_from_table([
        {"name": "level", "type": "int", "default": 3, "min": 0, "max": 9, "help": "How much"},
        {"name": "look", "type": "choice", "choices": ["a", "b"], "default": "b"},
    ], "gen")
    assert schema == (IntParam("level", help="How much", default=3, min=0, max=9),
                      ChoiceParam("look", choices=("a", "b"), default="b"))
    assert schema[0].flag == "--level" and schema[1].title == "Look"


@pytest.mark.parametrize(("row", "message"), [
    ({"name": "x", "type": "colour"}, "unknown type 'colour'"),
    ({"name": "Bad-Name", "type": "int"}, "must be lower_snake_case"),
    ({"name": "x", "type": "int", "colour": 1}, "has a setting its type does not take"),
    ({"name": "x", "type": "int", "min": 5, "max": 1}, "has min above max"),
    ({"name": "x", "type": "choice"}, "has no choices"),
    ({"name": "x", "type": "int", "default": 50, "max": 10}, "(default value): X must be between 0 and 10"),
    # TOML lets any value through; each setting must be what its kind declares, and fit the form's widgets.
    ({"name": "x", "type": "int", "min": "0"}, "parameter 'x' has min = '0', which is not a whole number."),
    ({"name": "x", "type": "choice", "choices": 5}, "has choices = 5, which is not a list of texts."),
    ({"name": "x", "type": "choice", "choices": [1, 2]}, "has choices = [1, 2], which is not a list of texts."),
    ({"name": "x", "type": "int", "help": 5}, "has help = 5, which is not text."),
    ({"name": "x", "type": "bool", "default": "yes"}, "has default = 'yes', which is not true or false."),
    ({"name": "x", "type": "int", "default": True}, "has default = True, which is not a whole number."),
    ({"name": "x", "type": "int", "max": 10**10}, "which is not a whole number between -2,147,483,647 and"),
    ({"name": "x", "type": "float", "max": float("inf")}, "has max = inf, which is not a number between"),
])
def test_bad_declarations_are_refused(row, message):
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        schema_from_table([row], "gen")
    with pytest.raises(InvalidRequest, match="declared twice"):
        schema_from_table([{"name": "a", "type": "bool"}, {"name": "a", "type": "bool"}], "gen")


def test_a_picture_file_that_cannot_be_read_is_said_as_the_parameters(tmp_path):
    # "Colour Transfer: Style: The image …": the image's own sentence was joined on with its capital T.
    with pytest.raises(InvalidRequest) as err:
        validate_params((ImageParam("style"),), {"style": str(tmp_path / "gone.png")}, "Colour Transfer")
    assert str(err.value) == f"Colour Transfer: Style: the image {tmp_path / 'gone.png'} does not exist."
    (tmp_path / "Folder.png").mkdir()  # a sentence that opens with a name keeps it as it is
    with pytest.raises(InvalidRequest) as err:
        validate_params((ImageParam("style"),), {"style": str(tmp_path / "Folder.png")}, "Colour Transfer")
    assert str(err.value) == f"Colour Transfer: Style: {tmp_path / 'Folder.png'} is a folder, not an image file."


def test_a_picture_given_by_a_relative_path_is_recorded_by_its_whole_path(tmp_path, monkeypatch):
    Image.new("RGB", (4, 4)).save(tmp_path / "ref.png")
    monkeypatch.chdir(tmp_path)
    values = validate_params((ImageParam("style"),), {"style": "ref.png"}, "Colour Transfer")
    assert params_for_record(values, keep_files=True) == {"style": str(tmp_path.resolve() / "ref.png")}
    assert params_for_record(values) == {"style": "<picture 4x4>"}  # what travels in metadata names no file


def test_copies_later_keeps_a_given_picture_as_it_is_and_checks_the_rest_as_before(tmp_path):
    """A generator's picture is checked at submit, on the window's thread, without the copy or conversion that
    held it 40-100 ms at 4096²: load_pictures makes the plugin's own RGB copy later. A file is still read, and
    every refusal is the same sentence."""
    from studio.core.parameters import load_pictures

    grey = Image.new("L", (6, 4), 90)
    values = validate_params(SCHEMA, {"reference": grey}, "Fields", copies_later=True)
    assert values["reference"] is grey
    own = load_pictures(SCHEMA, values, "Fields")["reference"]
    assert own is not grey and own.mode == "RGB" and grey.mode == "L"
    Image.new("RGB", (4, 4)).save(tmp_path / "ref.png")
    read = validate_params(SCHEMA, {"reference": str(tmp_path / "ref.png")}, "Fields", copies_later=True)
    assert isinstance(read["reference"], Image.Image)
    assert params_for_record(read, keep_files=True)["reference"] == str((tmp_path / "ref.png").resolve())
    for given, message in (({"reference": 3}, "Fields: Reference must be a picture, not int."),
                           ({"reference": str(tmp_path / "gone.png")},
                            f"Fields: Reference: the image {tmp_path / 'gone.png'} does not exist.")):
        with pytest.raises(InvalidRequest) as err:
            validate_params(SCHEMA, given, "Fields", copies_later=True)
        assert str(err.value) == message
    with pytest.raises(InvalidRequest, match="^F: Style needs a picture.$"):
        validate_params((ImageParam("style"),), {}, "F", copies_later=True)


@pytest.mark.parametrize(("name", "flag"), [("prompt", "--prompt"), ("output", "--output"),
                                            ("batch_count", "--batch-count"), ("help", "--help")])
def test_a_parameter_cannot_take_a_command_line_option_s_name(name, flag):
    from studio.core.parameters import GENERATE_OPTIONS

    with pytest.raises(InvalidRequest) as err:
        schema_from_table([{"name": name, "type": "text"}], "Gen", GENERATE_OPTIONS)
    assert str(err.value) == (f"Gen: parameter name {name!r} is one of Studio's own command-line options ({flag}); "
                              "choose another.")
    with pytest.raises(InvalidRequest, match="the --no- form of a yes/no parameter"):
        schema_from_table([{"name": "sharp", "type": "bool"}, {"name": "no_sharp", "type": "int"}], "Gen")


def test_validate_settings_checks_all_but_pictures():
    from studio.core.parameters import MAX_SEED, validate_settings

    schema = (ImageParam("style"), SeedParam("seed"), IntParam("steps", default=2, min=1, max=9))
    assert validate_settings(schema, {"style": "/no/such/file.png", "seed": 5}, "Neural") == {"seed": 5, "steps": 2}
    with pytest.raises(InvalidRequest, match=f"Neural: Seed must be between -1 and {MAX_SEED}, not 9999999999"):
        validate_settings(schema, {"seed": 9999999999}, "Neural")


def test_a_picture_with_transparency_keeps_its_alpha(tmp_path):
    """Converted to RGB, a transparent reference's hidden pixels counted as colours (colour transfer's own
    alpha handling never ran)."""
    path = tmp_path / "half.png"
    picture = Image.new("RGBA", (6, 4), (220, 30, 30, 255))
    picture.paste((0, 0, 0, 0), (3, 0, 6, 4))
    picture.save(path)
    for value in (str(path), picture, picture.convert("PA")):
        checked = validate_params(SCHEMA, {"reference": value}, "F")["reference"]
        assert checked.mode == "RGBA" and checked.getpixel((4, 1))[3] == 0 and checked is not value


def test_a_16_bit_grey_picture_parameter_keeps_its_range():
    """Picture parameters had their own RGB conversion, which clipped 16-bit grey to nearly white."""
    import numpy as np

    ramp = Image.fromarray(np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1)))
    assert ramp.mode == "I;16"
    picture = ImageParam("style").check(ramp, "Filter")
    assert picture.mode == "RGB" and 120 < np.asarray(picture).mean() < 135


def test_a_picture_file_that_is_no_regular_file_is_said_before_it_is_read(tmp_path):
    """A named pipe was taken as a picture (its read would block for ever); a name too long for the system raised
    OSError out of the check (a traceback in `studio generate --generator`)."""
    import os

    from studio.core.parameters import MissingPicture, check_picture_file

    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    with pytest.raises(MissingPicture) as err:
        check_picture_file(ImageParam("style"), str(pipe), "Colour Transfer")
    assert str(err.value) == (f"Colour Transfer: Style: {pipe} is a named pipe (FIFO), not an image file; Studio "
                              "reads pictures from regular files.")
    long_name = tmp_path / ("a" * 300 + ".png")
    with pytest.raises(MissingPicture) as err:
        check_picture_file(ImageParam("style"), str(long_name), "Colour Transfer")
    assert str(err.value) == f"Colour Transfer: Style: {long_name}: the file name is too long for this file system."
    with pytest.raises(MissingPicture) as err:
        check_picture_file(ImageParam("style"), str(tmp_path / "gone.png"), "Colour Transfer")
    assert str(err.value) == f"Colour Transfer: Style: the picture {tmp_path / 'gone.png'} does not exist."
