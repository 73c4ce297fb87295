"""Typed settings, stored as TOML in the user config folder."""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from studio.core.errors import first_line
from studio.core.paths import StudioPaths, config_folder_problem, is_link_loop, studio_paths
from studio.core.requests import MEMORY_MODES, SPEED_MODES
from studio.core.settings_aside import keep_aside, where
from studio.core.settings_checks import (
    DEFAULT_FOLDERS,
    NEAREST_IN_RANGE,
    READING_FILE,
    known_device,
    one_of,
    reading_file,
)
from studio.core.settings_repair import (
    MAX_SETTINGS_REPAIRS,
    drop_places,
    number_text,
    set_at,
)
from studio.core.settings_sections import (
    GenerationDefaults,
    GenerationPreset,
    PromptStyle,
    WindowLayout,
)

log = logging.getLogger(__name__)
# Each load note, as it is made: the window shows Settings.load_note itself; the studio command says what this
# logger says on stderr (studio.log alone would leave a command-line user unaware of settings reset or set aside).
load_notes = logging.getLogger(f"{__name__}.load_notes")
FOLDER_NOTES = "folder_notes"  # in the validation context: folder settings that name a file, said by load_settings


class LinksOnDisk:
    """The linked folders as the settings file held them when these settings were read, or as these settings last
    saved them. A save compares with them, so that a folder another Studio linked or unlinked meanwhile (``studio
    models link`` while the window is open) stays as that one left it. A copy of the settings (a background save's
    snapshot) shares this record with its original: it is where both came from, not a value of either."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __deepcopy__(self, memo: dict[int, object]) -> LinksOnDisk:
        return self

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, LinksOnDisk)  # not a value: two settings equal in value are equal

    __hash__ = None  # type: ignore[assignment]


def absolute_folder(path: Path) -> Path:
    """A folder as written in settings.toml, made absolute: ``~`` is the home folder, and so is the start of a relative
    path. Taken as it is, "~/Pictures" was a folder named "~" wherever Studio started, and the history recorded
    pictures there by relative paths, which a later Delete, started elsewhere, resolved to another folder's files."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path.home() / path


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    models_dir: Path
    outputs_dir: Path
    extra_model_paths: list[Path] = Field(default_factory=list)  # diffusers folders picked by hand
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps (known_device)
    memory: str = "auto"  # GPU memory: auto (estimate, then choose) | high (all on the GPU) | low (offload, tiling)
    speed: str = "fast"  # on CUDA: fast (graphs) | eager (plain diffusers) | compile (fast + torch.compile, opt-in)
    generation: GenerationDefaults = Field(default_factory=GenerationDefaults)
    styles: list[PromptStyle] = Field(default_factory=list)
    presets: list[GenerationPreset] = Field(default_factory=list)
    filter_params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # last values, per post-processor
    plugin_index: str = ""  # URL or file of a plugin index (a JSON list of name, version, summary, url, sha256)
    window: WindowLayout = Field(default_factory=WindowLayout)
    load_note: str = Field("", exclude=True)  # what load_settings had to set aside, for the window to say once
    _links_on_disk: LinksOnDisk | None = PrivateAttr(default=None)  # None: made in code, not read from the file
    _folder_notes: list[str] = PrivateAttr(default_factory=list)  # a folder setting naming a file: load_settings says

    @field_validator("models_dir", "outputs_dir", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # Path("") is the folder Studio happens to start in
            raise ValueError("no folder is named")
        return value

    @field_validator("models_dir", "outputs_dir")
    @classmethod
    def _absolute_folder(cls, value: Path, info: ValidationInfo) -> Path:
        folder = absolute_folder(value)
        # A file named where a folder should be (outputs_dir = "/etc/passwd") takes the default. The default is
        # taken whatever is there (else there would be no folder at all): saving into it says what is wrong.
        defaults: dict[str, Path] = (info.context or {}).get(DEFAULT_FOLDERS, {})
        if folder.is_file() and folder not in defaults.values():
            if not reading_file(info):
                raise ValueError("a file, not a folder")
            # Read fine, so no "could not be read" and no .broken copy: the note says what it is, and what is used.
            default = defaults[info.field_name]
            info.context.setdefault(FOLDER_NOTES, []).append(
                f"The setting {info.field_name} is {folder}, which is a file, not a folder; the default {default} "
                "is used.")
            return default
        return folder

    @model_validator(mode="after")
    def _keep_folder_notes(self, info: ValidationInfo) -> Settings:
        self._folder_notes = list((info.context or {}).get(FOLDER_NOTES, ()))
        return self

    @field_validator("extra_model_paths")
    @classmethod
    def _absolute_paths(cls, value: list[Path]) -> list[Path]:
        return [absolute_folder(path) for path in value]

    _known_device = field_validator("device")(known_device)
    _known_memory_mode = field_validator("memory")(lambda value: one_of(value, MEMORY_MODES, "memory mode"))
    _known_speed = field_validator("speed")(lambda value: one_of(value, SPEED_MODES, "speed"))

    @classmethod
    def defaults(cls, paths: StudioPaths) -> Settings:
        return cls.model_validate({"models_dir": paths.default_models_dir, "outputs_dir": paths.default_outputs_dir},
                                  context=_default_folders(paths))


def _default_folders(paths: StudioPaths) -> dict[str, dict[str, Path]]:
    """The validation context naming each folder setting's default, by the setting's name."""
    return {DEFAULT_FOLDERS: {"models_dir": paths.default_models_dir, "outputs_dir": paths.default_outputs_dir}}


def load_settings(paths: StudioPaths | None = None) -> Settings:
    """Read settings, so Studio always starts: a value that cannot be read takes its default and the rest are
    kept; a file that is not TOML at all is moved aside. Either way the original stays beside it
    (``settings.toml.broken``, or ``.broken-2`` … where an earlier copy is kept) and ``Settings.load_note`` says
    what happened and where the copy is, for the window to tell (and logs it on ``load_notes``)."""
    paths = paths or studio_paths()
    settings = read_settings(paths)
    settings.load_note = " ".join(filter(None, [*settings._folder_notes, settings.load_note]))
    if problem := config_folder_problem(paths):  # no settings file can be there: said, not silently the defaults
        settings.load_note = (f"The settings file {paths.settings_file} cannot be there: {problem}; Studio started "
                              "with its defaults and cannot save its settings until that file is moved away.")
    if settings.load_note:
        load_notes.warning("%s", settings.load_note)
    settings._links_on_disk = LinksOnDisk(list(settings.extra_model_paths))
    return settings


def broken_link_problem(file: Path) -> str:
    """Why the settings file, a symbolic link (kept with dotfiles), leads to no file, as the end of a sentence
    without its full stop ("is a loop of symbolic links"); "" where it is no link or its target is there."""
    if not file.is_symlink():
        return ""
    if is_link_loop(file):
        return "is a loop of symbolic links"
    if not file.exists():
        return f"is a symbolic link to {os.readlink(file)}, which is not there"
    return ""


def read_settings(paths: StudioPaths) -> Settings:
    file = paths.settings_file
    if problem := broken_link_problem(file):  # defaults, said: the link is the person's; a save would not replace it
        settings = Settings.defaults(paths)
        settings.load_note = (f"The settings file {file} {problem}; Studio started with its defaults, and does not "
                              "save settings there until the link is fixed.")
        return settings
    if not file.exists():
        return Settings.defaults(paths)
    try:
        raw = file.read_bytes()
    except OSError as exc:  # a folder by that name, a file Studio may not read: left as it is
        settings = Settings.defaults(paths)
        what = "is a folder, not a file" if file.is_dir() else f"could not be read ({exc.strerror or exc})"
        settings.load_note = (f"The settings file {file} {what}; Studio started with its defaults and left it as it "
                              "is.")
        return settings
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))  # Windows Notepad starts UTF-8 with a byte-order mark
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        log.warning("Settings file %s could not be read (%s); using defaults.", file, exc)
        settings = Settings.defaults(paths)
        settings.load_note = (f"The settings file could not be read ({first_line(exc)}); Studio started with its "
                              f"defaults and {_set_aside(file, raw, move=True)}")
        return settings
    defaults = Settings.defaults(paths).model_dump()
    merged = {**defaults, **data}
    dropped: list[str] = []
    nearest: list[str] = []
    for _ in range(MAX_SETTINGS_REPAIRS):
        try:
            settings = Settings.model_validate(merged, context={**_default_folders(paths), READING_FILE: True})
        except ValidationError as exc:
            errors = exc.errors()
            places = sorted({tuple(e["loc"]) for e in errors if e["type"] != NEAREST_IN_RANGE}, reverse=True,
                            key=lambda place: [(0, part) if isinstance(part, int) else (1, str(part))
                                               for part in place])
            removed = drop_places(merged, places)
            if removed:
                merged = {**defaults, **merged}  # a folder dropped takes the default folder
                named = (".".join(str(part) for part in place) for place in removed)
                dropped += [name for name in named if name not in dropped]  # a name dropped, then its style
                continue
            # Numbers past their range take the nearest allowed only once nothing more is dropped: a number in a
            # list item that is dropped whole (a LoRA without a name) is not named.
            past = [(e["loc"], e["ctx"]) for e in errors if e["type"] == NEAREST_IN_RANGE]
            past = [(place, why) for place, why in past if set_at(merged, place, why["limit"])]
            if not past:
                break
            nearest += [f"The setting {'.'.join(str(part) for part in place)} was {number_text(why['value'])}, "
                        f"{why['side']} than {number_text(why['limit'])}; {number_text(why['limit'])} is used."
                        for place, why in past]
            continue
        if dropped or nearest:
            aside = _set_aside(file, raw, move=False, as_it_was=True)
            last = (f"Some settings could not be read ({', '.join(dropped)}) and take their defaults; {aside}"
                    if dropped else f"{aside[0].upper()}{aside[1:]}")
            settings.load_note = " ".join([*nearest, last])
            log.warning("Settings file %s: %s", file, settings.load_note)
        return settings
    settings = Settings.defaults(paths)
    settings.load_note = ("The settings could not be read; Studio started with its defaults and "
                          f"{_set_aside(file, raw, move=True)}")
    return settings


def _set_aside(file: Path, raw: bytes, move: bool, as_it_was: bool = False) -> str:
    """Keep ``raw`` (the file as read) beside ``file`` under a name no earlier copy has, and move the file away when
    ``move``; the end of a sentence saying where the copy is (or why there is none)."""
    try:
        aside = keep_aside(file, raw)
        if move and not file.is_symlink():  # a link is the person's (dotfiles): the next save writes through it
            file.unlink()
    except OSError as exc:
        log.warning("A copy of settings file %s could not be kept: %s", file, exc)
        return (f"no copy of the file could be kept ({exc.strerror or exc}); it was left as it is, and is "
                "replaced when Studio saves its settings.")
    log.warning("Settings file %s kept as %s", file, aside)
    return f"{'the file as it was is kept' if as_it_was else 'kept the file'} as {where(aside)}."


