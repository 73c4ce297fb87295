"""ControlNet guides: a picture (edges, a sketch, a depth map) that steers the composition of a new one.

Every tool in this field has them (AUTOMATIC1111's sd-webui-controlnet, ComfyUI's Apply ControlNet, InvokeAI's
and krita-ai-diffusion's control layers). A guide is a ControlNet model, its control picture, what is done to
that picture first (the preprocessor: A1111's "Module"), how strongly it steers (its weight) and over which part
of the steps (guidance start and end, as fractions). Recipes record guides in A1111's words
(``ControlNet 0: "Module: canny, Model: name [hash], Weight: 1, ..."``) so pictures read the same everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.paths import path_inside
from studio.core.units import finite_or, is_finite_number, short_number

NONE, CANNY, INVERT, DEPTH = "none", "canny", "invert", "depth"
# What each preprocessor does, as the window lists it; the keys are A1111's module names.
PREPROCESSORS: dict[str, str] = {
    NONE: "As it is (an edge, line, depth or pose picture made already)",
    CANNY: "Canny edges of a photo or painting",
    INVERT: "Invert (black lines on white, as sketches are drawn)",
    DEPTH: "A depth map of a photo or painting, made by Depth Anything V2 (near is white)",
}
# The preprocessors that run a model: the engine runs them (an ``Annotate`` it gives), as core has no torch.
MODEL_PREPROCESSORS = frozenset({DEPTH})
# (preprocessor, the picture as given) -> the picture it makes, as RGB.
Annotate = Callable[[str, Image.Image], Image.Image]
# Other tools' module names for the same preprocessors, and the one Studio writes for each (sd-webui-controlnet's:
# it recognises its own long name of invert, not Studio's short one). Its other depth modules (depth_midas,
# depth_zoe, depth_leres, depth_anything v1) run other models: kept by their names, their pictures used as they are.
_MODULE_ALIASES = {"invert (from white bg & black line)": INVERT, "canny": CANNY, "none": NONE,
                   "depth_anything_v2": DEPTH}
_A1111_MODULES = {NONE: "none", CANNY: "canny", INVERT: "invert (from white bg & black line)",
                  DEPTH: "depth_anything_v2"}
# sd-webui-controlnet's names that mean another preprocessor than Studio's of that name: its 1.0 "depth" was MiDaS.
_OTHER_MEANINGS = frozenset({DEPTH})
MAX_MODULE_NAME = 200  # another tool's preprocessor name, kept for display: longer is no name
MAX_GUIDES = 3  # at once in one job; more only slows every step down
MAX_WEIGHT = 2.0
DEFAULT_LOW, DEFAULT_HIGH = 100, 200  # Canny's hysteresis thresholds, as A1111's defaults
_RECORD_KEYS = ("model", "hash", "preprocessor", "weight", "start", "end", "low", "high", "image")
# sd-webui-controlnet's keys in a ``ControlNet N`` value, lower-cased: its ControlNetUnit's fields ("_" as " ";
# written capitalised since 1.1.4xx), and the keys of its 1.1.1xx-2xx text ("preprocessor: canny, model: …").
_A1111_KEYS = frozenset({
    "module", "model", "weight", "resize mode", "low vram", "processor res", "threshold a", "threshold b",
    "guidance start", "guidance end", "pixel perfect", "control mode", "inpaint crop input image", "hr option",
    "save detected map", "union control type", "mask", "mask image",
    "preprocessor", "starting/ending", "preprocessor params"})
_KEY_AT = re.compile(r"(?:^|, )([A-Za-z][A-Za-z0-9 /_-]*): ")  # where a key may start
_HASHED = re.compile(r"(.*) \[([0-9a-fA-F]{8})\]", re.DOTALL)


@dataclass(frozen=True)
class ControlGuide:
    """One ControlNet guide of a job. ``image`` is the control picture as given (the preprocessor runs when the
    job does); ``image_path`` is where it is kept, so a rerun finds it ("" for a picture not kept yet)."""

    model: str  # a name in <models>/controlnet, or a path to a ControlNet folder or file
    image: Image.Image | None = field(default=None, compare=False, repr=False)
    preprocessor: str = NONE
    weight: float = 1.0  # diffusers' controlnet_conditioning_scale
    start: float = 0.0  # the fraction of the steps where guidance starts
    end: float = 1.0  # ... and ends
    low_threshold: int = DEFAULT_LOW  # Canny only
    high_threshold: int = DEFAULT_HIGH
    image_path: str = ""
    # The preprocessor as the tool that made the picture named it, when Studio has none like it (AUTOMATIC1111's
    # depth_midas, openpose_full…): ``preprocessor`` is then none, so its picture is used as it is. "" otherwise.
    module: str = ""

    def check(self, label: str = "The control guide") -> None:
        """InvalidRequest, in one sentence, for what a job could not run with."""
        if not self.model.strip():
            raise InvalidRequest(f"{label} has no ControlNet model chosen.")
        if self.image is None:
            raise InvalidRequest(f"{label} has no control picture.")
        self._check_values(label)

    def _check_values(self, label: str) -> None:
        """``check`` past the model and the picture: the preprocessor, the weight, the range and the thresholds."""
        if self.preprocessor not in PREPROCESSORS:
            raise InvalidRequest(f"{label}'s preprocessor {self.preprocessor!r} is not one of: "
                                 f"{', '.join(PREPROCESSORS)}.")
        if not (is_finite_number(self.weight) and 0 <= self.weight <= MAX_WEIGHT):
            raise InvalidRequest(f"{label}'s weight must be between 0 and {MAX_WEIGHT:g}, not {self.weight}.")
        if not (is_finite_number(self.start) and is_finite_number(self.end) and 0 <= self.start < self.end <= 1):
            raise InvalidRequest(f"{label} must start before it ends, both between 0 and 1 of the steps "
                                 f"(not {self.start:g} to {self.end:g}).")
        if self.preprocessor == CANNY and not (0 <= self.low_threshold <= self.high_threshold <= 255):
            raise InvalidRequest(f"{label}'s Canny thresholds must be 0 to 255 with the low one at most the high "
                                 f"one, not {self.low_threshold} and {self.high_threshold}.")

    def control_picture(self, width: int, height: int, start: tuple[int, int] | None = None,
                        box: tuple[int, int, int, int] | None = None, annotate: Annotate | None = None
                        ) -> Image.Image:
        """The picture the ControlNet sees: preprocessed, then placed in the job as ``place_control`` says (the
        engine and the window's thumbnail both come here, so they cannot disagree). ``annotate`` runs a model
        preprocessor (depth): the engine's."""
        return place_control(self.preprocessed(annotate), (width, height), start, box)

    def preprocessed(self, annotate: Annotate | None = None) -> Image.Image:
        """Its picture after its preprocessor, at the picture's size."""
        if self.image is None:
            raise InvalidRequest("The control guide has no control picture.")
        return preprocess(self.image, self.preprocessor, self.low_threshold, self.high_threshold, annotate)

    def to_record(self, model_hash: str = "") -> dict[str, Any]:
        """As the history and Studio's JSON recipe keep it (no pixels: ``image`` is the kept file's path)."""
        record = {"model": self.model, "hash": model_hash, "preprocessor": self.preprocessor, "weight": self.weight,
                  "start": self.start, "end": self.end, "low": self.low_threshold, "high": self.high_threshold,
                  "image": self.image_path}
        return {**record, "module": self.module} if self.module else record

    @classmethod
    def from_record(cls, value: object, *, unchosen_model: bool = False) -> ControlGuide | None:
        """A recorded guide (history params, a JSON recipe, A1111's text), which is untrusted: None if malformed.
        The picture is not opened here: ``image_path`` says where it was kept. A preprocessor Studio does not have
        (another tool's) becomes none, its name kept as ``module``. ``unchosen_model``: a guide with no ControlNet
        chosen yet is well formed (the settings keep a guide being set up, its picture and values)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("model"), str) or \
                not (value["model"] or unchosen_model):
            return None
        preprocessor, module = studio_preprocessor(value.get("preprocessor", NONE))
        if isinstance(written := value.get("module"), str) and written.strip() and not module:
            module = written.strip()
        numbers = {k: value.get(k, default) for k, default in
                   (("weight", 1.0), ("start", 0.0), ("end", 1.0), ("low", DEFAULT_LOW), ("high", DEFAULT_HIGH))}
        if (not all(is_finite_number(v) for v in numbers.values()) or preprocessor is None
                or len(module) > MAX_MODULE_NAME):
            return None
        image = value.get("image", "")
        guide = cls(model=value["model"], preprocessor=preprocessor, weight=float(numbers["weight"]),
                    start=float(numbers["start"]), end=float(numbers["end"]), low_threshold=int(numbers["low"]),
                    high_threshold=int(numbers["high"]), image_path=image if isinstance(image, str) else "",
                    module=module)
        try:
            guide._check_values("The control guide")
        except InvalidRequest:
            return None
        return guide


def preprocess(image: Image.Image, preprocessor: str, low: int = DEFAULT_LOW, high: int = DEFAULT_HIGH,
               annotate: Annotate | None = None) -> Image.Image:
    """The control picture after its preprocessor, as RGB. Transparent parts are flattened as each preprocessor
    reads them: on black for a picture taken as it is (a ControlNet reads black as "no line, no edge"), on white for
    invert and Canny, as sd-webui-controlnet does, so black lines drawn on a transparent layer stay lines. A model
    preprocessor (depth) is ``annotate``'s, given the picture as it is (it keeps what it made by the picture)."""
    if preprocessor in MODEL_PREPROCESSORS:
        if annotate is None:  # a caller's slip, never the person's: every caller that can see depth passes one
            raise InvalidRequest(f"The {preprocessor} preprocessor runs a model, and nothing was given to run it.")
        return annotate(preprocessor, image).convert("RGB")
    rgb = _flattened(image, (0, 0, 0) if preprocessor == NONE else (255, 255, 255))
    if preprocessor == CANNY:
        import cv2  # opencv-python-headless: the Canny that every ControlNet annotator uses

        edges = cv2.Canny(np.asarray(rgb), low, high)
        return Image.fromarray(edges, "L").convert("RGB")
    if preprocessor == INVERT:
        return Image.fromarray(255 - np.asarray(rgb), "RGB")
    if preprocessor != NONE:
        raise InvalidRequest(f"The preprocessor {preprocessor!r} is not one of: {', '.join(PREPROCESSORS)}.")
    return rgb


def fit_control(image: Image.Image, width: int, height: int) -> Image.Image:
    """A1111's "Crop and Resize": scaled to cover width x height, keeping its proportions, and centred."""
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    # Only the part that covers the box is scaled: a 3000x1 strip scaled whole to cover 512x512 was 1,536,000 x 512
    # pixels (3.4 GB) before its middle was cut out.
    part_width, part_height = min(image.width, width / scale), min(image.height, height / scale)
    left, top = (image.width - part_width) / 2, (image.height - part_height) / 2
    box = (left, top, left + part_width, top + part_height)
    return image.resize((width, height), Image.Resampling.LANCZOS, box=box)


def place_control(picture: Image.Image, size: tuple[int, int], start: tuple[int, int] | None = None,
                  box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A control picture at ``size``, the size the pipeline works at, with its lines where the job's picture has
    them. A new picture (``start`` None): A1111's crop and resize (``fit_control``). A job that starts from a picture
    of the size ``start`` (img2img, inpainting): the control picture is fitted to that picture first (one made from
    it, the canvas picture, is left as it is), then cut to ``box``, the part of it the pipeline works on (all of it
    when None), and scaled to ``size`` as that part is, stretched as img2img stretches its start picture."""
    if start is None:
        return fit_control(picture, *size)
    fitted = fit_control(picture, *start)
    cut = fitted if box is None or box == (0, 0, *start) else fitted.crop(box)
    return cut if cut.size == size else cut.resize(size, Image.Resampling.LANCZOS)


def extend_guide(guide: ControlGuide, size: tuple[int, int], amounts: tuple[int, int, int, int],
                 annotate: Annotate | None = None) -> ControlGuide:
    """The guide of a picture of ``size`` that is extended by ``amounts`` (left, top, right, bottom: outpainting), so
    its lines stay on the picture's. A guide whose picture has that size (one made for the picture) becomes the
    picture its ControlNet sees, preprocessed, in black margins: nothing to follow in the new area (the margins are
    added after the preprocessor, as Canny would find an edge along the old border and invert would make them white).
    Its preprocessor is then "none" and its picture not kept yet. A picture of another size is left as it is.
    ``annotate`` runs a model preprocessor (depth: its map is made of the picture before the margins are added)."""
    if guide.image is None or guide.image.size != size or not any(amounts):
        return guide
    left, top, right, bottom = amounts
    seen = guide.preprocessed(annotate)
    extended = Image.new("RGB", (size[0] + left + right, size[1] + top + bottom))
    extended.paste(seen, (left, top))
    return replace(guide, image=extended, preprocessor=NONE, low_threshold=DEFAULT_LOW, high_threshold=DEFAULT_HIGH,
                   image_path="")


def guide_label(number: int, count: int, capital: bool = True) -> str:
    """How sentences name guide ``number`` (from 1) of a job's ``count``: "The control guide" when it is the only
    one, else "Control guide 2" (lower case without ``capital``, for the middle of a sentence)."""
    label = "The control guide" if count == 1 else f"Control guide {number}"
    return label if capital else label[0].lower() + label[1:]


def check_guides(guides: tuple[ControlGuide, ...]) -> None:
    if len(guides) > MAX_GUIDES:
        raise InvalidRequest(f"A job takes at most {MAX_GUIDES} control guides, not {len(guides)}.")
    for number, guide in enumerate(guides, 1):
        guide.check(guide_label(number, len(guides)))


def studio_preprocessor(name: object) -> tuple[str | None, str]:
    """A recorded preprocessor (Studio's, or another tool's module name) as (Studio's preprocessor, the name as
    written when Studio has none like it: its picture is then used as it is); (None, "") for what is no name."""
    if not isinstance(name, str):
        return None, ""
    known = _MODULE_ALIASES.get(name.strip().lower(), name.strip())
    return (known, "") if known in PREPROCESSORS else (NONE, name.strip())


def a1111_text(record: Mapping[str, Any]) -> str:
    """One guide as sd-webui-controlnet writes it in a picture's ``parameters`` (its ``ControlNet N`` value)."""
    name = str(record.get("model", ""))
    model = f"{name} [{record['hash']}]" if record.get("hash") else name
    preprocessor = record.get("preprocessor", NONE)
    module = record.get("module") or _A1111_MODULES.get(preprocessor, preprocessor)
    parts = [f"Module: {module}", f"Model: {model}",
             f"Weight: {short_number(record.get('weight', 1.0))}",
             f"Guidance Start: {short_number(record.get('start', 0.0))}",
             f"Guidance End: {short_number(record.get('end', 1.0))}"]
    if record.get("preprocessor") == CANNY:
        parts += [f"Threshold A: {record.get('low', DEFAULT_LOW)}", f"Threshold B: {record.get('high', DEFAULT_HIGH)}"]
    return ", ".join(parts)


def controls_from_settings(settings: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    """The guides of an A1111 ``parameters`` settings line (``ControlNet 0``, ``ControlNet 1``, …) as records, in
    any of the ways sd-webui-controlnet has written them; a malformed one is left out. A preprocessor Studio does not
    have is kept by its name (``module``) for what shows it, and is none for a job."""
    records = []
    for index in range(10):
        values = _unit_values(settings, index)
        if values is None:
            continue
        name, digest = _name_and_hash(values.get("model", ""))
        if name in ("", "None"):  # a unit with no ControlNet (A1111's reference_only and the like): nothing to guide
            continue
        module = values.get("module", values.get("preprocessor", NONE))
        other = module.strip().lower() in _OTHER_MEANINGS  # kept by its name, its picture used as it is
        start, end = _numbers(values.get("starting/ending"), 2) or (values.get("guidance start"),
                                                                    values.get("guidance end"))
        record = {"model": name, "hash": digest, "preprocessor": NONE if other else module,
                  **({"module": module.strip()} if other else {}),
                  "weight": finite_or(values.get("weight"), 1.0),
                  "start": finite_or(start, 0.0), "end": finite_or(end, 1.0), "image": ""}
        if studio_preprocessor(module)[0] == CANNY:  # its thresholds: named, or the last two preprocessor params
            params = _numbers(values.get("preprocessor params"), 3) or ("", None, None)
            low = int(finite_or(values.get("threshold a", params[1]), DEFAULT_LOW))
            high = int(finite_or(values.get("threshold b", params[2]), DEFAULT_HIGH))
            record["low"], record["high"] = (low, high) if 0 <= low <= high <= 255 else (DEFAULT_LOW, DEFAULT_HIGH)
        guide = ControlGuide.from_record(record)
        if guide is not None:
            records.append(guide.to_record(digest))
    return tuple(records)


def _unit_values(settings: Mapping[str, str], index: int) -> dict[str, str] | None:
    """One unit's values by lower-cased key, as sd-webui-controlnet wrote them: ``ControlNet N: "Module: …"``
    (1.1.4xx on), ``ControlNet N: "preprocessor: …"`` (1.1.1xx-2xx, ``ControlNet: …`` for a single unit), or
    ``ControlNet-N Module: …`` as settings of their own (1.0); None when it wrote no such unit."""
    text = settings.get(f"ControlNet {index}", settings.get("ControlNet") if index == 0 else None)
    if text is not None:
        return _a1111_pairs(text)
    prefix = f"ControlNet-{index} "
    values = {key[len(prefix):].strip().lower(): value for key, value in settings.items() if key.startswith(prefix)}
    return values if "model" in values and values.get("enabled", "True") != "False" else None


def control_records(items: object, *, unchosen_model: bool = False) -> tuple[dict[str, Any], ...]:
    """The guides of a recipe's JSON, which is untrusted: only well-formed ones, in ``to_record``'s form (with
    ``unchosen_model``, those with no ControlNet chosen yet too)."""
    records = []
    for item in items if isinstance(items, list | tuple) else ():
        guide = ControlGuide.from_record(item, unchosen_model=unchosen_model)
        if guide is not None:
            digest = item.get("hash", "")
            records.append(guide.to_record(digest if isinstance(digest, str) else ""))
    return tuple(records)


def shareable_controls(records: tuple[dict[str, Any], ...], outputs: Path) -> tuple[dict[str, Any], ...]:
    """The guides as a picture's recipe writes them, for a picture people share: a kept control picture by its path
    relative to the outputs folder (``2026-12-07/sources/<hex>-control.png``), any other file (the person's own, when
    keeping it failed) by its file name alone. No folder of the person's computer is written (a ControlNet given by
    its path, which the engine writes by its name already, is its name too)."""
    return tuple(record | {"image": _shareable_path(image, outputs) if image else image,
                           "model": Path(model).name if isinstance(model := record.get("model"), str)
                           and Path(model).is_absolute() else model}
                 if isinstance(image := record.get("image"), str) else record for record in records)


def resolved_controls(records: tuple[dict[str, Any], ...], outputs: Path) -> tuple[dict[str, Any], ...]:
    """The guides of a picture's recipe with each picture's path resolved: a relative one (``shareable_controls``)
    against the outputs folder now; an absolute one (a picture made before recipes were shareable) as it is."""
    return tuple(record | {"image": _resolved_path(image, outputs)}
                 if isinstance(image := record.get("image"), str) and image and not Path(image).is_absolute()
                 else record for record in records)


def _resolved_path(image: str, outputs: Path) -> str:
    relative = PurePosixPath(image.replace("\\", "/"))
    if ".." in relative.parts:  # never a folder above the outputs folder: the name in it
        relative = PurePosixPath(relative.name)
    return str(Path(outputs).expanduser().absolute() / relative)


def _shareable_path(image: str, outputs: Path) -> str:
    return path_inside(outputs, image) or Path(os.path.abspath(image)).name


def _a1111_pairs(text: str) -> dict[str, str]:
    """A ``ControlNet N`` value as {key: value}. sd-webui-controlnet writes no value with ", " or ": " in it, but a
    model's name may have them (Studio writes it as the name's file has it): so the name runs to the next key that
    ends it, one of sd-webui-controlnet's keys that came neither before it nor comes again after it (a name may hold
    ", Weight: 2" when ", Weight: 1" follows), while another value ends where the next key starts."""
    keys = [(match.group(1).lower(), match) for match in _KEY_AT.finditer(text)]
    pairs: dict[str, str] = {}
    index = 0
    while index < len(keys):
        key, match = keys[index]
        following = index + 1
        if key == "model":
            before = {k for k, _ in keys[:following]}
            while following < len(keys) and not _ends_name(keys[following][0], before, keys[following + 1:]):
                following += 1
        end = keys[following][1].start() if following < len(keys) else len(text)
        pairs.setdefault(key, text[match.end():end].strip())
        index = following
    return pairs


def _ends_name(key: str, before: set[str], after: list[tuple[str, re.Match[str]]]) -> bool:
    return key in _A1111_KEYS and key not in before and all(later != key for later, _ in after)


def _numbers(text: str | None, count: int) -> tuple[str, ...] | None:
    """``(0, 1)`` -> ("0", "1"): a tuple of ``count`` values as sd-webui-controlnet 1.1.1xx-2xx wrote them."""
    if text is None or not (text := text.strip()).startswith("(") or not text.endswith(")"):
        return None
    parts = tuple(part.strip() for part in text[1:-1].split(","))
    return parts if len(parts) == count else None


def _name_and_hash(text: str) -> tuple[str, str]:
    """``control_v11p_sd15_canny [d14c016b]`` -> (name, hash): only 8 hex digits in brackets at the end are a hash
    (``lineart [v1.1]`` is a name)."""
    text = text.strip()
    match = _HASHED.fullmatch(text)
    return (match.group(1).strip(), match.group(2)) if match else (text, "")


def _flattened(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    from studio.core.images import flatten, rgb_or_rgba  # images reads recipes, whose text names the guides

    picture = rgb_or_rgba(image)
    return flatten(picture, background) if picture.mode == "RGBA" else picture

