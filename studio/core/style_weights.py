"""The weight files Studio's style-transfer filters use: names, purpose and origin (plain data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.environment import GeneratorEnvironment
from studio.core.model_library import KIND_FOLDERS

VGG19_FILE = "vgg19.safetensors"
ADAIN_VGG_FILE = "adain-vgg.safetensors"
ADAIN_DECODER_FILE = "adain-decoder.safetensors"


@dataclass(frozen=True)
class WeightsFile:
    name: str  # the file name in the style folder
    processor: str  # the id of Studio's own post-processor that loads it (studio.plugin_host.builtins)
    used_by: str  # that post-processor's title, for the words shown to people
    original: str  # the file people download
    source: str  # where it comes from
    detected_as: str  # the ``detail`` model_kinds.detect_kind gives such a file (read from its layers)


WEIGHTS: tuple[WeightsFile, ...] = (
    WeightsFile(VGG19_FILE, "neural", "Neural Style Transfer", "vgg19-dcbb9e9d.pth", "torchvision's ImageNet VGG-19",
                "VGG-19"),
    WeightsFile(ADAIN_VGG_FILE, "adain", "Fast Style Transfer (AdaIN)", "vgg_normalised.pth",
                "the pytorch-AdaIN release", "AdaIN encoder"),
    WeightsFile(ADAIN_DECODER_FILE, "adain", "Fast Style Transfer (AdaIN)", "decoder.pth",
                "the pytorch-AdaIN release", "AdaIN decoder"),
)


def weights_used_by(processor: str) -> tuple[WeightsFile, ...]:
    """The weight files Studio's own post-processor ``processor`` (its id: "neural", "adain") loads; none for any
    other. By id, not title: a title is words for people, and may be reworded."""
    return tuple(w for w in WEIGHTS if w.processor == processor)


def weights_file_for(detected_as: str) -> WeightsFile | None:
    """The style weights file a file detected as ``detected_as`` ("VGG-19"...) is, so an import of one
    (whatever its name) is installed under the name the filters look for; None for any other detail."""
    return next((w for w in WEIGHTS if w.detected_as == detected_as), None)


def style_weights_dir(env: GeneratorEnvironment) -> Path:
    """``<models folder>/style``; without a models folder, ``<data folder>/models/style``."""
    return env.models_root / KIND_FOLDERS["style"]
