"""``studio generate --control MODEL IMAGE``: ControlNet guides from the command line.

Each ``--control`` starts a guide; the per-guide options after it (``--control-weight`` and the rest) apply to the
most recent one, as ffmpeg's options apply to the output they precede, so several guides each get their own
settings in one command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.annotators import DEPTH_REPO, DEPTH_TITLE
from studio.core.control import (
    CANNY,
    DEFAULT_HIGH,
    DEFAULT_LOW,
    MAX_GUIDES,
    MAX_WEIGHT,
    NONE,
    PREPROCESSORS,
    ControlGuide,
    guide_label,
)
from studio.core.errors import InvalidRequest

DEST = "controls"  # args.controls: the GuideFlags of each --control, in order


@dataclass
class GuideFlags:
    """One ``--control`` as typed: its model and picture, and the options given after it (None: not given)."""

    model: str
    image: str
    preprocessor: str | None = None
    weight: float | None = None
    range: tuple[float, float] | None = None
    canny: tuple[int, int] | None = None


class _StartGuide(argparse.Action):
    """``--control MODEL IMAGE``: a new guide, which the per-guide options after it change."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        model, image = values  # nargs=2
        guides = list(getattr(namespace, self.dest, None) or ())  # a new list: argparse shares the default
        guides.append(GuideFlags(model, image))
        setattr(namespace, self.dest, guides)


class _GuideOption(argparse.Action):
    """A per-guide option: sets ``field`` of the most recent ``--control``'s guide."""

    def __init__(self, option_strings: list[str], dest: str, field: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.field = field

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        guides = getattr(namespace, DEST, None)
        if not guides:
            raise argparse.ArgumentError(self, "it sets an option of a control guide, so it must come after the "
                                               "--control MODEL IMAGE it applies to")
        setattr(guides[-1], self.field, tuple(values) if isinstance(values, list) else values)


def add_control_flags(parser: argparse.ArgumentParser) -> None:
    """``--control`` and its per-guide options, as a group of ``studio generate``'s flags."""
    group = parser.add_argument_group(
        "ControlNet", f"Steer the composition with a control picture (edges, a sketch, a depth map, a pose): up to "
                      f"{MAX_GUIDES} guides, each a --control followed by its own options.")
    group.add_argument("--control", nargs=2, action=_StartGuide, dest=DEST, default=[], metavar=("MODEL", "IMAGE"),
                       help="guide the picture with the ControlNet MODEL (a name in the models folder's controlnet/, "
                            "or a ControlNet folder or .safetensors file) following the control picture IMAGE; "
                            "repeat for several guides. The options below apply to the --control before them")
    option = {"action": _GuideOption, "default": argparse.SUPPRESS}
    group.add_argument("--control-preprocessor", field="preprocessor", choices=list(PREPROCESSORS),
                       help="what is done to the control picture first: none (it is an edge, line, depth or pose "
                            "picture already; the default), canny (the edges of a photo or painting), invert (black "
                            "lines on white, as sketches are drawn), depth (a depth map of a photo, made by "
                            f"{DEPTH_TITLE}: get it with `studio models download {DEPTH_REPO}`)", **option)
    group.add_argument("--control-weight", field="weight", type=float, metavar="W",
                       help=f"how strongly the guide steers, 0 to {MAX_WEIGHT:g} (default 1)", **option)
    group.add_argument("--control-range", field="range", type=float, nargs=2, metavar=("START", "END"),
                       help="the part of the steps it steers, as fractions from 0 to 1 (default 0 1; 0 0.5 fixes "
                            "the composition and leaves the details free)", **option)
    group.add_argument("--canny", field="canny", type=int, nargs=2, metavar=("LOW", "HIGH"),
                       help=f"the Canny edge thresholds, 0 to 255 (default {DEFAULT_LOW} {DEFAULT_HIGH}; lower finds "
                            "more edges); implies --control-preprocessor canny", **option)


def control_guides(args: argparse.Namespace, generator: str = "diffusers") -> tuple[ControlGuide, ...]:
    """The guides the flags ask for, their pictures opened; InvalidRequest (one sentence) for a picture that is
    missing or unreadable, or options that contradict each other. Values are checked by ``prepare_request``."""
    given: list[GuideFlags] = getattr(args, DEST, None) or []
    if given and generator != "diffusers":
        raise InvalidRequest(f"The generator {generator!r} takes no control guides; they steer Studio's own "
                             "generator only, so leave out --control.")
    return tuple(_guide(flags, guide_label(number, len(given), capital=False))
                 for number, flags in enumerate(given, 1))


def _guide(flags: GuideFlags, label: str) -> ControlGuide:
    from studio.core.images import open_image  # only when generating: `studio` alone opens the window, fast

    preprocessor = flags.preprocessor or (CANNY if flags.canny is not None else NONE)
    if flags.canny is not None and preprocessor != CANNY:
        raise InvalidRequest(f"--canny sets the Canny edge thresholds, but {label} uses the {preprocessor} "
                             "preprocessor; leave --canny out or give --control-preprocessor canny.")
    path = Path(flags.image)
    if not path.exists():
        raise InvalidRequest(f"The control picture {path} of {label} does not exist.")
    start, end = flags.range if flags.range is not None else (0.0, 1.0)
    low, high = flags.canny if flags.canny is not None else (DEFAULT_LOW, DEFAULT_HIGH)
    # The path recorded whole: a rerun from another folder still finds it (the job service usually keeps a copy).
    return ControlGuide(model=flags.model.strip(), image=open_image(path), preprocessor=preprocessor,
                        weight=1.0 if flags.weight is None else flags.weight, start=start, end=end,
                        low_threshold=low, high_threshold=high, image_path=str(path.absolute()))


def guide_lines(records: object, mark_missing: bool = False) -> list[tuple[str, str]]:
    """(label, plain unescaped text) for each guide a recipe or history entry records, for ``history show`` and
    ``inspect``: "ControlNet" alone, else numbered. ``mark_missing``: a picture that is gone is marked (the history's
    full paths; a rerun would be refused)."""
    records = records if isinstance(records, list | tuple) else []
    lines = []
    for number, record in enumerate(records, 1):
        label = "ControlNet" if len(records) == 1 else f"ControlNet {number}"
        text = describe_guide(record)
        if text is None:
            lines.append((label, "(a record Studio cannot read)"))
            continue
        picture = record.get("image")
        gone = mark_missing and isinstance(picture, str) and picture and not Path(picture).is_file()
        lines.append((label, text + ("  (missing)" if gone else "")))
    return lines


def describe_guide(record: object) -> str | None:
    """A recorded guide (``ControlGuide.to_record``'s form) in one line of plain, unescaped text, for ``history
    show`` and ``inspect``; None for a record Studio cannot read."""
    guide = ControlGuide.from_record(record)
    if guide is None:
        return None
    digest = record.get("hash") if isinstance(record, dict) else None
    model = f"{guide.model} [{digest}]" if isinstance(digest, str) and digest else guide.model
    preprocessor = guide.preprocessor
    if guide.module:  # another tool's, which Studio does not have
        preprocessor = f"{guide.module} (Studio has no such preprocessor: it would use the picture as it is)"
    elif preprocessor == CANNY:
        preprocessor += f" (thresholds {guide.low_threshold} and {guide.high_threshold})"
    return (f"{model}, preprocessor {preprocessor}, weight {guide.weight:g}, steps {guide.start:g} to "
            f"{guide.end:g}, picture {guide.image_path or '(not kept)'}")
