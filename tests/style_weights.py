"""Random-weight style-transfer files written through the real layouts, and a recording job context.

Speed does not depend on the weight values, and the loaders only check names and shapes, so random
weights exercise every code path except the look of the result.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import JobCancelledError
from studio.engine.style.adain import adain_decoder, adain_encoder
from studio.engine.style.vgg import CONV5_1, vgg19_layers
from studio.engine.style.weights import ADAIN_DECODER_FILE, ADAIN_VGG_FILE, VGG19_FILE


def _init_like_torchvision(module: nn.Module) -> None:
    """Kaiming-normal convolutions, zero biases: torchvision's VGG init keeps activations in a sane range."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)


def style_dir(models_dir: Path) -> Path:
    folder = models_dir / "style"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_vgg19(models_dir: Path, seed: int = 0, prefix: str = "features.", last: int = CONV5_1 + 1) -> Path:
    """``vgg19.safetensors`` with torchvision's key names (``features.N.weight``), layers 0..``last``."""
    torch.manual_seed(seed)
    layers = vgg19_layers(last)
    _init_like_torchvision(layers)
    path = style_dir(models_dir) / VGG19_FILE
    save_file({prefix + key: value.contiguous() for key, value in layers.state_dict().items()}, str(path))
    return path


def write_adain(models_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """``adain-vgg.safetensors`` and ``adain-decoder.safetensors`` with pytorch-AdaIN's key names."""
    torch.manual_seed(seed)
    encoder, decoder = adain_encoder(), adain_decoder()
    _init_like_torchvision(encoder)
    _init_like_torchvision(decoder)
    with torch.no_grad():
        decoder[-1].weight.mul_(0.05)  # a random decoder's output would mostly clamp to black or white
        decoder[-1].bias.fill_(0.5)
    folder = style_dir(models_dir)
    vgg_path, decoder_path = folder / ADAIN_VGG_FILE, folder / ADAIN_DECODER_FILE
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(vgg_path))
    save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(decoder_path))
    return vgg_path, decoder_path


def make_env(root: Path, models_dir: Path | None = None) -> GeneratorEnvironment:
    return GeneratorEnvironment(device="cpu", data_dir=root / "data", cache_dir=root / "cache", models_dir=models_dir)


def gradient_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """A picture with structure (gradients plus a seeded pattern), so features and Grams are not flat."""
    generator = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    xs = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    noise = torch.rand((height, width), generator=generator)
    rgb = torch.stack([xs, ys, 0.5 * (xs + ys) * noise + 0.25 * (1 - noise)], -1)
    return Image.fromarray((rgb * 255).round().to(torch.uint8).numpy(), "RGB")


class RecordingContext:
    """A JobContext that records progress and, when asked, cancels after ``cancel_after`` checks."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.cancel_after = cancel_after
        self.checks = 0
        self.wants_previews = True
        self.progress: list[tuple[int, int, Image.Image | None]] = []
        self.notes: list[str] = []

    def report_progress(self, step: int, total: int, image_index: int = 0, preview: Image.Image | None = None,
                        preview_box: tuple[int, int, int, int] | None = None) -> None:
        self.progress.append((step, total, preview))

    def is_cancelled(self) -> bool:
        return self.cancel_after is not None and self.checks >= self.cancel_after

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise JobCancelledError()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def status(self, *, device: str = "", model: str = "", message: str = "") -> None:
        pass
