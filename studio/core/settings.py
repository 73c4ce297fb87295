"""Typed settings, stored as TOML in the user config folder."""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from studio.core import hires as hires_fix
from studio.core.control import MAX_GUIDES, control_records
from studio.core.errors import StudioError, first_line
from studio.core.inpaint import INPAINT_FILLS
from studio.core.paths import StudioPaths, studio_paths
from studio.core.requests import (
    DEFAULT_SCHEDULER,
    MAX_CFG,
    MAX_LORA_WEIGHT,
    MAX_LORAS,
    MAX_SEED,
    MEMORY_MODES,
    SCHEDULER_NAMES,
    SPEED_MODES,
    canonical_scheduler,
)
from studio.core.settings_aside import keep_aside, where
from studio.core.units import is_finite_number

log = logging.getLogger(__name__)
# Each load note, as it is made: the window shows Settings.load_note itself; the studio command says what this
# logger says on stderr (studio.log alone would leave a command-line user unaware of settings reset or set aside).
load_notes = logging.getLogger(f"{__name__}.load_notes")


class Refused:
    """A list item the settings file holds but Studio cannot keep (a LoRA past the limit, a guide it cannot use),
    left in its place so that validating it fails there: load_settings then drops it and names it."""

    def __init__(self, why: str) -> None:
        self.why = why


def _not_refused(value: object) -> object:
    if isinstance(value, Refused):
        raise ValueError(value.why)  # pydantic reports it at the item's place
    return value


T = TypeVar("T")
Checked = Annotated[T, BeforeValidator(_not_refused)]  # a list item that may be Refused


class GenerationDefaults(BaseModel):
    """The prompt panel as the person last left it."""

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    steps: int = Field(20, ge=1, le=1000)
    cfg_scale: float = Field(7.0, ge=0, le=MAX_CFG)
    seed: int = Field(-1, ge=-1, le=MAX_SEED)  # -1: random
    scheduler: str = DEFAULT_SCHEDULER
    batch_count: int = Field(1, ge=1, le=100)
    strength: float = Field(0.75, gt=0, le=1)
    inpaint_masked_only: bool = True
    inpaint_padding: int = Field(32, ge=0, le=1024)
    inpaint_fill: str = "original"  # one of INPAINT_FILLS
    inpaint_feather: float = Field(8.0, ge=0, le=256)
    generator: str = "diffusers"  # or a plugin generator's id
    generator_params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # last values, per generator
    post: list[PostStepSetting] = Field(default_factory=list)  # applied to every result, in order
    loras: list[Checked[LoraSetting]] = Field(default_factory=list)  # for the next generation (at most MAX_LORAS)
    vae: str = ""  # a VAE name in <models>/vae, or a path; "" = the model's own
    hires: bool = False  # a hires fix for new pictures, with these settings (kept while it is off)
    hires_scale: float = Field(hires_fix.DEFAULT_SCALE, gt=1, le=hires_fix.MAX_SCALE)
    hires_steps: int = Field(0, ge=0, le=1000)
    hires_strength: float = Field(hires_fix.DEFAULT_STRENGTH, gt=0, le=1)
    hires_upscaler: str = hires_fix.LANCZOS
    # ControlNet guides as ControlGuide.to_record keeps them (the picture by its file's path), plus "enabled".
    controls: list[Checked[dict[str, Any]]] = Field(default_factory=list)

    # A value Studio cannot use raises: load_settings gives it its default and names it in Settings.load_note.
    _known_fill = field_validator("inpaint_fill")(lambda value: _one_of(value, INPAINT_FILLS, "fill"))

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        return _one_of(canonical_scheduler(value) or value, SCHEDULER_NAMES, "sampler")  # "euler_a" is Euler a

    @field_validator("loras", mode="before")
    @classmethod
    def _at_most_max_loras(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, list) or len(value) <= MAX_LORAS:
            return value
        if _reading_file(info):  # each LoRA past the limit is named in the load note
            return [*value[:MAX_LORAS], *[Refused(f"more than {MAX_LORAS} LoRAs")] * (len(value) - MAX_LORAS)]
        return value[:MAX_LORAS]

    @field_validator("controls", mode="before")
    @classmethod
    def _well_formed_guides(cls, value: object, info: ValidationInfo) -> object:
        """Guides a job could take once a ControlNet is chosen, at most MAX_GUIDES (a guide set up before there is
        a ControlNet for the model stays, its picture and values with it): a hand-edited file may hold anything, and
        one bad guide must not cost the person the rest of their settings. Read from the file, each other item is
        refused in its place, so the load note names it."""
        reading = _reading_file(info)
        if not isinstance(value, list):
            return value if reading else []
        guides: list[dict[str, Any] | Refused] = []
        for item in value:
            record = next(iter(control_records([item], unchosen_model=True)), None)
            if record is not None and sum(isinstance(guide, dict) for guide in guides) < MAX_GUIDES:
                guides.append({**record, "enabled": not (isinstance(item, dict) and item.get("enabled") is False)})
            elif reading:
                guides.append(Refused("not a control guide Studio can use" if record is None else
                                      f"more than {MAX_GUIDES} control guides"))
        return guides


class LoraSetting(BaseModel):
    """One chosen LoRA: its name in ``<models>/loras`` (or a .safetensors path) and its weight."""

    name: str
    weight: float = Field(1.0, ge=-MAX_LORA_WEIGHT, le=MAX_LORA_WEIGHT)

    _nearest_weight = field_validator("weight", mode="wrap")(lambda value, handler: _nearest_in_range(value, handler))


class PostStepSetting(BaseModel):
    """One post-processor applied after each generation, with the parameters last chosen for it."""

    processor: str
    params: dict[str, Any] = Field(default_factory=dict)
    strength: float = Field(1.0, ge=0, le=1)  # blend with the picture before the step


class GenerationPreset(BaseModel):
    """Named generation settings: model or generator, size, sampling, inpaint options and the chain."""

    name: str
    generation: GenerationDefaults


def _styled(style: str, text: str) -> str:
    if "{prompt}" in style:
        return style.replace("{prompt}", text)
    return ", ".join(part for part in (text.strip(), style.strip()) if part)


class PromptStyle(BaseModel):
    """A saved style: ``{prompt}`` in its prompt (or negative prompt) is replaced by the person's prompt (or
    negative prompt)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    prompt: str = "{prompt}"
    negative_prompt: str = ""

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        """The person's prompts with the style's, as AUTOMATIC1111 applies styles: each ``{prompt}`` in the style's
        prompt (and in its negative prompt) stands for the person's; without one, the style's words come after."""
        return _styled(self.prompt, prompt), _styled(self.negative_prompt, negative)


class WindowLayout(BaseModel):
    """How the person left the window: where it was and how big, where the panels were, and the brush and mask
    tools as they set them. A number past the tools' own limits takes the nearest one they allow (and is named in the
    load note); the window clamps them again when it applies them."""

    model_config = ConfigDict(extra="ignore")

    geometry: str = ""  # QMainWindow.saveGeometry(), base64: size, place, maximised
    docks: str = ""  # QMainWindow.saveState(), base64: which panels are shown, where, and how wide
    brush_size: float = Field(48.0, ge=1, le=1024)  # pixels, as the brush size box allows
    brush_hardness: float = Field(0.8, ge=0, le=1)
    mask_color: str = ""  # "" = the default colour
    mask_opacity: float = Field(0.5, ge=0, le=1)
    grow_pixels: int = Field(8, ge=1, le=256)  # as the grow box allows

    _nearest_tool_value = field_validator("brush_size", "brush_hardness", "mask_opacity", "grow_pixels", mode="wrap")(
        lambda value, handler: _nearest_in_range(value, handler))


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
    device: str = "auto"  # one of DEVICES
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
        if folder.is_file() and folder not in (info.context or {}).get(DEFAULT_FOLDERS, ()):
            raise ValueError("a file, not a folder")
        return folder

    @field_validator("extra_model_paths")
    @classmethod
    def _absolute_paths(cls, value: list[Path]) -> list[Path]:
        return [absolute_folder(path) for path in value]

    _known_device = field_validator("device")(lambda value: _one_of(value, DEVICES, "device"))
    _known_memory_mode = field_validator("memory")(lambda value: _one_of(value, MEMORY_MODES, "memory mode"))
    _known_speed = field_validator("speed")(lambda value: _one_of(value, SPEED_MODES, "speed"))

    @classmethod
    def defaults(cls, paths: StudioPaths) -> Settings:
        return cls.model_validate({"models_dir": paths.default_models_dir, "outputs_dir": paths.default_outputs_dir},
                                  context=_default_folders(paths))


DEVICES = ("auto", "cuda", "mps", "cpu")
DEFAULT_FOLDERS = "default_folders"
READING_FILE = "reading_file"


def _one_of(value: str, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise ValueError(f"not a {what} Studio has")
    return value


NEAREST_IN_RANGE = "nearest_in_range"


def _nearest_in_range(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:  # noqa: ANN401
    """For a number a person set by hand, where one a little past the range means its end (a LoRA weight of 4.5 is
    4): past the range, an error NEAREST_IN_RANGE with the nearest number in it, which load_settings uses and names.
    Anything else that is wrong (not a number, NaN, infinite) raises as it is, and takes its default."""
    try:
        return handler(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        limits = error.get("ctx") or {}
        if not is_finite_number(value) or error["type"] not in ("less_than_equal", "greater_than_equal"):
            raise
        more = error["type"] == "less_than_equal"
        raise PydanticCustomError(NEAREST_IN_RANGE, "{value} is {side} than {limit}", {
            "value": value, "side": "more" if more else "less", "limit": limits["le" if more else "ge"]}) from None


def _default_folders(paths: StudioPaths) -> dict[str, tuple[Path, ...]]:
    return {DEFAULT_FOLDERS: (paths.default_models_dir, paths.default_outputs_dir)}


def _reading_file(info: ValidationInfo) -> bool:
    """Whether the settings file is being read (load_settings names what it drops), not settings made in code (the
    window's own values, which are trimmed quietly to what a job can take)."""
    return bool((info.context or {}).get(READING_FILE))


def load_settings(paths: StudioPaths | None = None) -> Settings:
    """Read settings, so Studio always starts: a value that cannot be read takes its default and the rest are
    kept; a file that is not TOML at all is moved aside. Either way the original stays beside it
    (``settings.toml.broken``, or ``.broken-2`` … where an earlier copy is kept) and ``Settings.load_note`` says
    what happened and where the copy is, for the window to tell (and logs it on ``load_notes``)."""
    settings = _read_settings(paths or studio_paths())
    if settings.load_note:
        load_notes.warning("%s", settings.load_note)
    settings._links_on_disk = LinksOnDisk(list(settings.extra_model_paths))
    return settings


def _read_settings(paths: StudioPaths) -> Settings:
    file = paths.settings_file
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
            removed = _drop(merged, places)
            if removed:
                merged = {**defaults, **merged}  # a folder dropped takes the default folder
                named = (".".join(str(part) for part in place) for place in removed)
                dropped += [name for name in named if name not in dropped]  # a name dropped, then its style
                continue
            # Numbers past their range take the nearest allowed only once nothing more is dropped: a number in a
            # list item that is dropped whole (a LoRA without a name) is not named.
            past = [(e["loc"], e["ctx"]) for e in errors if e["type"] == NEAREST_IN_RANGE]
            past = [(place, why) for place, why in past if _set(merged, place, why["limit"])]
            if not past:
                break
            nearest += [f"The setting {'.'.join(str(part) for part in place)} was {_number(why['value'])}, "
                        f"{why['side']} than {_number(why['limit'])}; {_number(why['limit'])} is used."
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
        if move:
            file.unlink()
    except OSError as exc:
        log.warning("A copy of settings file %s could not be kept: %s", file, exc)
        return (f"no copy of the file could be kept ({exc.strerror or exc}); it was left as it is, and is "
                "replaced when Studio saves its settings.")
    log.warning("Settings file %s kept as %s", file, aside)
    return f"{'the file as it was is kept' if as_it_was else 'kept the file'} as {where(aside)}."


MAX_SETTINGS_REPAIRS = 20


def _drop(data: Any, places: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:  # noqa: ANN401
    """Remove the value at each place so it takes its default (a preset keeps its other values when its sampler
    is unknown); a value with no default (a style's missing name, an item of the wrong kind) takes the list item
    holding it with it. Every place is found before anything is removed, so no removal moves another; returns the
    places removed."""
    found = [(place, target) for place in places if (target := _removable(data, place)) is not None]
    for container, key in sorted({(id(c), k): (c, k) for _, (c, k) in found}.values(),
                                 key=lambda target: -target[1] if isinstance(target[1], int) else 0):
        del container[key]
    return [place for place, _ in found]


def _number(value: float) -> str:
    """A number as a person wrote it in the file: 300 (not 3e+02), 4.5."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _set(data: Any, place: tuple[Any, ...], value: object) -> bool:  # noqa: ANN401
    """Put ``value`` at ``place`` (which holds one); False where there is none."""
    *path, last = place
    for part in path:
        if not isinstance(data, dict | list) or not _holds(data, part):
            return False
        data = data[part]
    if not isinstance(data, dict | list) or not _holds(data, last):
        return False
    data[last] = value
    return True


def _holds(container: dict[Any, Any] | list[Any], key: object) -> bool:
    return key in container if isinstance(container, dict) else isinstance(key, int) and 0 <= key < len(container)


def _removable(data: Any, place: tuple[Any, ...]) -> tuple[Any, Any] | None:  # noqa: ANN401
    """The container and key to remove for ``place`` (see _drop), or None."""
    node, item = data, None
    for depth, part in enumerate(place):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            item = node, part
        elif not (isinstance(node, dict) and part in node):
            break  # a value that is missing, and has no default
        if depth == len(place) - 1:
            return node, part
        node = node[part]
    return item


SETTINGS_LOCK = ".settings.lock"  # beside settings.toml: held while the file is read, changed and written
SETTINGS_LOCK_TIMEOUT = 30.0  # seconds; each holder holds it for one read and write of a small file


def save_settings(settings: Settings, paths: StudioPaths | None = None) -> None:
    """Write the settings file, under the settings lock. Its linked folders are this Studio's changes (links added
    and removed since these settings were read or last saved) applied to the file as it is now: a folder another
    Studio linked meanwhile is not lost. Settings made in code, not read, are written as they are."""
    paths = paths or studio_paths()
    with _settings_file_locked(paths):
        record = settings._links_on_disk
        _write_settings(settings, paths, _merged_links(settings, paths.settings_file))
        if record is not None:
            record.paths = list(settings.extra_model_paths)


def update_settings(change: Callable[[Settings], bool], paths: StudioPaths | None = None) -> Settings:
    """Change the settings file as one step: read it afresh under the settings lock, apply ``change`` (which says
    whether it changed anything) and write it back. Two commands at once each keep their change: read at their
    start and saved whole, five of six ``studio models link`` run together were lost. Returns the settings as now
    on disk."""
    paths = paths or studio_paths()
    with _settings_file_locked(paths):
        settings = _read_settings(paths)
        if change(settings):
            _write_settings(settings, paths, settings.extra_model_paths)
    settings._links_on_disk = LinksOnDisk(list(settings.extra_model_paths))
    return settings


@contextmanager
def _settings_file_locked(paths: StudioPaths) -> Iterator[None]:
    from filelock import FileLock, Timeout  # here, not at import: the window's first frame does not wait for it

    try:
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(paths.config_dir / SETTINGS_LOCK, timeout=SETTINGS_LOCK_TIMEOUT):
            yield
    except Timeout:
        raise StudioError(f"Settings could not be saved to {paths.settings_file}: another Studio kept it busy for "
                          f"{SETTINGS_LOCK_TIMEOUT:g} s; try again.") from None
    except OSError as exc:
        raise StudioError(f"Settings could not be saved to {paths.settings_file}: {exc.strerror}.") from exc


def _write_settings(settings: Settings, paths: StudioPaths, links: list[Path]) -> None:
    import tomli_w

    from studio.core.images import write_atomically

    data = settings.model_dump(mode="json", exclude_none=True)
    data["extra_model_paths"] = [str(path) for path in links]
    write_atomically(paths.settings_file, tomli_w.dumps(data).encode("utf-8"))


def _merged_links(settings: Settings, file: Path) -> list[Path]:
    """The file's linked folders now, less those these settings unlinked and with those they linked since they were
    read or last saved; theirs alone where they were not read from the file, or the file cannot be read now."""
    ours, record = list(settings.extra_model_paths), settings._links_on_disk
    theirs = _links_in_file(file) if record is not None else None
    if record is None or theirs is None:
        return ours
    unlinked = [path for path in record.paths if path not in ours]
    linked = [path for path in ours if path not in record.paths and path not in theirs]
    return [path for path in theirs if path not in unlinked] + linked


def _links_in_file(file: Path) -> list[Path] | None:
    """The linked folders the settings file lists now; None where it cannot be read or they are not a list of
    paths (load_settings says what it makes of such a file; here ours are written)."""
    try:
        links = tomllib.loads(file.read_bytes().decode("utf-8-sig")).get("extra_model_paths", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(links, list) or not all(isinstance(path, str) and path.strip() for path in links):
        return None
    return [absolute_folder(Path(path)) for path in links]


class OrderedSaves:
    """Settings saved from more than one thread (the window's, a worker's) are written in the order their snapshots
    were taken: an older one that finishes later (a slow disk, an fsync) never overwrites a newer one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0
        self._written = 0

    def ticket(self) -> int:
        """Take one when the snapshot is taken (on the window's thread)."""
        with self._lock:
            self._taken += 1
            return self._taken

    def save(self, settings: Settings, ticket: int, paths: StudioPaths | None = None) -> None:
        with self._lock:
            if ticket < self._written:
                return  # a newer snapshot is on disk already
            save_settings(settings, paths)
            self._written = ticket
