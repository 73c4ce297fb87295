"""Declarative parameters: a plugin says what it takes, Studio builds the form, the CLI flags and the checks.

A schema is a tuple of Param values. ``validate_params`` turns what a person entered (typed values
from the form, or text from the command line) into the values a plugin receives, or raises
InvalidRequest with one sentence naming the parameter and what was wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from PIL import Image

from studio.core.errors import InvalidRequest, StudioError
from studio.core.safe_text import hidden_character

PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = frozenset({"strength", "mask"})  # Studio's own, around every post-processor
# The options `studio generate` and `studio postprocess` have themselves: a plugin's parameter becomes a flag
# beside them (--name-with-dashes), so it may not have one of their names (a test keeps these up to date).
GENERATE_OPTIONS = frozenset({
    "help", "generator", "model", "prompt", "negative", "seed", "steps", "size", "cfg", "scheduler", "batch_count",
    "init_image", "strength", "mask", "masked_only", "whole_picture", "padding", "fill", "feather", "outpaint",
    "hires", "hires_steps", "hires_strength", "hires_upscaler", "lora", "vae", "device", "speed", "memory", "post",
    "output", "overwrite", "control", "control_preprocessor", "control_weight", "control_range", "canny"})
POSTPROCESS_OPTIONS = frozenset({"help", "output", "overwrite", "method", "strength", "mask"})
MAX_TEXT = 10_000
MAX_SEED = 2**32 - 1
SOURCE_KEY = "studio_source_file"  # in a checked picture's info: the file it was read from


@dataclass(frozen=True)
class Param:
    name: str  # lower_snake_case; the CLI flag is --name-with-dashes
    label: str = ""
    help: str = ""

    kind = "param"

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_value(self) -> Any:
        return getattr(self, "default", None)

    def check(self, value: Any, owner: str) -> Any:
        raise NotImplementedError

    def _bad(self, owner: str, what: str) -> InvalidRequest:
        return InvalidRequest(f"{owner}: {self.title} {what}.")

    def _number(self, value: Any, owner: str, parse: type, what: str, fits: Any) -> float:
        """A number from a value or text, checked against ``fits`` and the range; a sentence otherwise."""
        if isinstance(value, str):
            try:
                value = parse(value.strip())
            except ValueError:
                raise self._bad(owner, f"must be {what}, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not fits(value):
            raise self._bad(owner, f"must be {what}, not {value!r}")
        low, high = getattr(self, "min"), getattr(self, "max")
        if not low <= value <= high:
            shown = str if parse is int else (lambda v: f"{v:g}")  # whole numbers in full, others short
            raise self._bad(owner, f"must be between {shown(low)} and {shown(high)}, not {shown(value)}")
        return value


@dataclass(frozen=True)
class IntParam(Param):
    default: int = 0
    min: int = 0
    max: int = 100
    step: int = 1

    kind = "int"

    def check(self, value: Any, owner: str) -> int:
        return int(self._number(value, owner, int, "a whole number", lambda v: v == int(v)))


@dataclass(frozen=True)
class FloatParam(Param):
    default: float = 0.0
    min: float = 0.0
    max: float = 1.0
    step: float = 0.05
    decimals: int = 2

    kind = "float"

    def check(self, value: Any, owner: str) -> float:
        return float(self._number(value, owner, float, "a number", math.isfinite))


@dataclass(frozen=True)
class ChoiceParam(Param):
    choices: tuple[str, ...] = ()
    default: str = ""

    kind = "choice"

    @property
    def default_value(self) -> str:
        return self.default or (self.choices[0] if self.choices else "")

    def check(self, value: Any, owner: str) -> str:
        if value not in self.choices:
            raise self._bad(owner, f"must be one of {', '.join(self.choices)}, not {value!r}")
        return str(value)


@dataclass(frozen=True)
class TextParam(Param):
    default: str = ""
    multiline: bool = False
    max_length: int = MAX_TEXT

    kind = "text"

    def check(self, value: Any, owner: str) -> str:
        if not isinstance(value, str):
            raise self._bad(owner, f"must be text, not {type(value).__name__}")
        if len(value) > self.max_length:
            raise self._bad(owner, f"must be at most {self.max_length} characters long")
        return value


@dataclass(frozen=True)
class BoolParam(Param):
    default: bool = False

    kind = "bool"

    def check(self, value: Any, owner: str) -> bool:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise self._bad(owner, f"must be yes or no, not {value!r}")
        if not isinstance(value, bool):
            raise self._bad(owner, f"must be yes or no, not {value!r}")
        return value


@dataclass(frozen=True)
class SeedParam(Param):
    default: int = -1  # -1: a new random seed for every job

    kind = "seed"

    def check(self, value: Any, owner: str) -> int:
        return IntParam(self.name, self.label, min=-1, max=MAX_SEED).check(value, owner)


@dataclass(frozen=True)
class ImageParam(Param):
    """A picture: from a file (CLI, form) or the canvas (form). The plugin receives a PIL image of its own (a
    copy: the canvas picture it may have come from is the person's, and so is its undo history): RGBA where the
    picture has transparency (its hidden pixels are no part of it: colour transfer counts only what shows), RGB
    otherwise. A consumer that needs RGB converts it."""

    optional: bool = False

    kind = "image"

    def check(self, value: Any, owner: str) -> Image.Image | None:
        if value is None:
            if self.optional:
                return None
            raise self._bad(owner, "needs a picture")
        source = None
        if isinstance(value, str):
            from pathlib import Path

            from studio.core.images import open_image

            try:  # recorded whole: a rerun from another folder finds the same file
                source, value = str(Path(value).expanduser().resolve()), open_image(Path(value))
            except StudioError as exc:  # an ImageError: said as this parameter's, so the step is known
                raise InvalidRequest(f"{owner}: {self.title}: {mid_sentence(str(exc))}") from None
        if not isinstance(value, Image.Image):
            raise self._bad(owner, f"must be a picture, not {type(value).__name__}")
        from studio.core.images import rgb_or_rgba

        picture = rgb_or_rgba(value, drop_opaque_alpha=True)
        if picture is value and source is None:
            picture = value.copy()  # the caller's picture is never a plugin's to draw on (one just read is Studio's)
        if source is not None:
            picture.info[SOURCE_KEY] = source  # where it was read from: the history keeps that (params_for_record)
        return picture


class MissingPicture(InvalidRequest):
    """A picture parameter's file is gone (or cannot be read): a chain step is left out for it, with a note."""


def mid_sentence(sentence: str) -> str:
    """A sentence said after "Owner: Parameter: ", its opening article lower-cased ("…: Style picture: the image a.png
    does not exist."); one that opens with a name (a file's, Studio's) as it is."""
    first, _, rest = sentence.partition(" ")
    return f"{first.lower()} {rest}" if first in ("The", "A", "An") and rest else sentence


def check_picture_file(param: ImageParam, value: Any, owner: str) -> Any:
    """ImageParam.check without reading the picture: a file that exists and may be read (given as its whole
    path), or a picture as given; load_pictures reads and checks them later, off the window's thread (a 4096² file
    took it 0.7 s to decode)."""
    if value is None or isinstance(value, Image.Image):
        return param.check(value, owner) if value is None else value
    if not isinstance(value, str):
        raise param._bad(owner, f"must be a picture, not {type(value).__name__}")
    import os
    from pathlib import Path

    from studio.core.errors import ImageError
    from studio.core.images import check_image_file

    path = Path(value).expanduser()
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise MissingPicture(f"{owner}: {param.title}: the picture {path} does not exist.") from None
    except OSError:
        pass  # a name too long for the system, a loop of links: said next
    try:  # a folder, a named pipe (whose read would block for ever), such a name
        check_image_file(path)
    except ImageError as exc:
        raise MissingPicture(f"{owner}: {param.title}: {mid_sentence(str(exc))}") from None
    if not os.access(path, os.R_OK):
        raise MissingPicture(f"{owner}: {param.title}: Studio may not read the picture {path}: permission denied.")
    return str(path.resolve())


def load_pictures(schema: Sequence[Param], values: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The values with every picture parameter read and checked (ImageParam.check), for values validated with
    ``pictures_later``: slow work, for the engine thread."""
    kinds = {p.name: p for p in schema}
    return {name: kinds[name].check(value, owner) if isinstance(kinds.get(name), ImageParam) else value
            for name, value in values.items()}


PARAM_KINDS: dict[str, type[Param]] = {
    cls.kind: cls for cls in (IntParam, FloatParam, ChoiceParam, TextParam, BoolParam, SeedParam, ImageParam)
}


def check_names(schema: Sequence[Param], values: Mapping[str, Any], owner: str, also: Collection[str] = ()) -> None:
    """One sentence for a name the schema does not have, with every name there is: the schema's, and ``also``,
    what the caller takes beside them (``strength=`` of a ``--post`` step)."""
    known = {p.name for p in schema}
    unknown = sorted(set(values) - known - set(also))
    if unknown:
        offered = ", ".join(sorted(known | set(also))) or "none"
        raise InvalidRequest(f"{owner} has no parameter {unknown[0]!r}; its parameters are: {offered}.")


def validate_params(schema: Sequence[Param], values: Mapping[str, Any], owner: str,
                    pictures_later: bool = False, copies_later: bool = False) -> dict[str, Any]:
    """Every parameter of the schema, checked; defaults fill what is missing. Unknown names are refused.
    ``pictures_later``: picture files are only checked to exist (check_picture_file); load_pictures reads them.
    ``copies_later``: a picture given as one is kept as it is, neither converted nor copied (at 4096² that held the
    window's thread 40-100 ms); load_pictures makes the plugin's own copy, on the engine thread."""
    check_names(schema, values, owner)
    checked: dict[str, Any] = {}
    for param in schema:
        value = values.get(param.name, param.default_value)
        given = copies_later and isinstance(value, Image.Image)
        if isinstance(param, ImageParam) and (pictures_later or given):
            checked[param.name] = check_picture_file(param, value, owner)
        else:
            checked[param.name] = param.check(value, owner)
    return checked


def validate_settings(schema: Sequence[Param], values: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """validate_params for every parameter but pictures (read and checked where the slow work is done): what a
    form gives is checked before it is kept, so a value no job can run with is never saved (a seed too large)."""
    plain = [p for p in schema if not isinstance(p, ImageParam)]
    return validate_params(plain, {p.name: values[p.name] for p in plain if p.name in values}, owner)


def params_for_record(values: Mapping[str, Any], keep_files: bool = False) -> dict[str, Any]:
    """The values as they go into metadata and history: pictures are noted, not embedded. ``keep_files``: a
    picture read from a file is recorded as its path (the history, on this machine, can read it again for a
    rerun; a picture's own metadata, which travels, never names local files)."""
    def recorded(value: Any) -> Any:
        if not isinstance(value, Image.Image):
            return value
        source = value.info.get(SOURCE_KEY)
        return source if keep_files and isinstance(source, str) else f"<picture {value.width}x{value.height}>"

    return {name: recorded(v) for name, v in values.items()}


_SETTING_TYPES = {"int": ((int,), "a whole number"), "float": ((int, float), "a number"), "str": ((str,), "text"),
                  "bool": ((bool,), "true or false")}
WIDGET_LIMIT = 2**31 - 1  # what the form's spin boxes hold (Qt's int)


def _check_settings(cls: type[Param], row: Mapping[str, Any], who: str) -> None:
    """Each setting a manifest gives is of the type its parameter kind declares, and a number the form can show:
    TOML lets any value through (``min = "0"``, ``choices = 5``, ``max = 1e12``)."""
    for field in fields(cls):
        if field.name not in row or field.name == "name":
            continue
        value = row[field.name]
        if field.type.startswith("tuple"):
            fits = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            expected = "a list of texts"
        else:
            types, expected = _SETTING_TYPES.get(field.type, ((object,), "a value"))
            fits = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if fits and isinstance(value, int | float) and not isinstance(value, bool):
            fits = math.isfinite(value) and abs(value) <= WIDGET_LIMIT
            expected += f" between {-WIDGET_LIMIT:,} and {WIDGET_LIMIT:,}"
        if not fits:
            raise InvalidRequest(f"{who} has {field.name} = {value!r}, which is not {expected}.")


def schema_from_table(rows: Sequence[Mapping[str, Any]], owner: str,
                      options: frozenset[str] = frozenset()) -> tuple[Param, ...]:
    """Params from a manifest's ``[[...parameters]]`` tables. InvalidRequest names the first bad row.
    ``options``: the names of the command line's own options beside which these become flags."""
    params: list[Param] = []
    for row in rows:
        row = dict(row)
        kind = row.pop("type", None)
        cls = PARAM_KINDS.get(kind)
        name = row.get("name", "")
        if cls is None:
            raise InvalidRequest(f"{owner}: parameter {name or '?'!r} has unknown type {kind!r}; "
                                 f"use one of {', '.join(PARAM_KINDS)}.")
        if not isinstance(name, str) or not PARAM_NAME.match(name):
            raise InvalidRequest(f"{owner}: parameter name {name!r} must be lower_snake_case letters and digits.")
        if name in RESERVED_NAMES:
            raise InvalidRequest(f"{owner}: parameter name {name!r} is Studio's own (used around every "
                                 "post-processor); choose another.")
        if name in options:
            raise InvalidRequest(f"{owner}: parameter name {name!r} is one of Studio's own command-line options "
                                 f"(--{name.replace('_', '-')}); choose another.")
        if any(p.name == name for p in params):
            raise InvalidRequest(f"{owner}: parameter {name!r} is declared twice.")
        if any(f"no_{p.name}" == name and p.kind == "bool" or f"no_{name}" == p.name and kind == "bool"
               for p in params):  # a yes/no parameter's flag comes with --no-NAME
            raise InvalidRequest(f"{owner}: parameter {name!r} would have the same command-line option as the "
                                 "--no- form of a yes/no parameter; choose another name.")
        _check_settings(cls, row, f"{owner}: parameter {name!r}")
        for key in ("label", "help", "choices"):  # shown in the form and the command line's help
            for text in row.get(key, ()) if key == "choices" else (row.get(key, ""),):
                if (hidden := hidden_character(text, allowed="\n" if key == "help" else "")) is not None:
                    raise InvalidRequest(f"{owner}: parameter {name!r} has the control character {hidden} in its "
                                         f"{key}, which could disguise what Studio shows; only plain text is allowed.")
        if "choices" in row:
            row["choices"] = tuple(row["choices"])
        try:
            param = cls(**row)
        except TypeError as exc:
            raise InvalidRequest(f"{owner}: parameter {name!r} has a setting its type does not take ({exc}).") from None
        if param.kind in ("int", "float") and param.min > param.max:
            raise InvalidRequest(f"{owner}: parameter {name!r} has min above max.")
        if param.kind == "choice" and not param.choices:
            raise InvalidRequest(f"{owner}: parameter {name!r} has no choices.")
        if param.kind != "image":
            param.check(param.default_value, f"{owner} (default value)")
        params.append(param)
    return tuple(params)
