"""Fast style transfer with adaptive instance normalisation (Huang & Belongie 2017), one encoder/decoder pass.

The modules are exactly pytorch-AdaIN's ``net.py`` (naoto0804), so its released ``vgg_normalised.pth``
and ``decoder.pth``, converted to safetensors, load by their Sequential indices (``0.weight``…).
The encoder's first 1×1 convolution does that network's own input normalisation: it takes RGB in [0, 1].
On a CPU with bfloat16 units (``cpu_precision``) the convolutions run in bfloat16 with channels-last weights, the
AdaIN statistics in float32: 17.4 s -> 6.5 s at 1024x1024 on one Xeon core with AMX, within 1/255 of float32's
picture. (Gatys' optimisation stays float32: bfloat16's noisy gradients stall its L-BFGS line search.)
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from PIL import Image
from torch import nn

from studio.core.environment import GeneratorEnvironment
from studio.core.generation import JobContext
from studio.core.held_memory import CACHED, HeldModel
from studio.engine.cpu_precision import cpu_dtype, to_channels_last
from studio.engine.device import select_device
from studio.engine.held_memory import describe
from studio.engine.style.neural import keep_own_colours, same_area_size, to_image, to_tensor
from studio.engine.style.weights import (
    ADAIN_DECODER_FILE,
    ADAIN_VGG_FILE,
    file_key,
    load_checked,
    require_weights,
)

TITLE = "Fast style transfer (AdaIN)"
ENCODER_MODULES = 31  # vgg_normalised up to relu4_1, as pytorch-AdaIN's test.py slices it
MULTIPLE = 8  # three 2× poolings in, three 2× upsamplings out: sides must divide by 8 to come back equal
MIN_SIDE = 16  # relu4_1 then has at least 2×2 pixels, enough for a variance and a reflection pad


def _conv(channels_in: int, channels_out: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(channels_in, channels_out, (3, 3)), nn.ReLU()]


def adain_encoder() -> nn.Sequential:
    """pytorch-AdaIN's ``vgg`` (the normalised VGG-19), its first 31 modules: input up to relu4_1."""
    pool = nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)
    layers: list[nn.Module] = [nn.Conv2d(3, 3, (1, 1))]
    layers += _conv(3, 64) + _conv(64, 64) + [pool]
    layers += _conv(64, 128) + _conv(128, 128) + [pool]
    layers += _conv(128, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + [pool]
    layers += _conv(256, 512)
    assert len(layers) == ENCODER_MODULES
    return nn.Sequential(*layers)


def adain_decoder() -> nn.Sequential:
    """pytorch-AdaIN's ``decoder``: relu4_1 features back to RGB, mirror of the encoder."""
    def up() -> nn.Module:
        return nn.Upsample(scale_factor=2, mode="nearest")  # same as the repo's UpsamplingNearest2d

    layers: list[nn.Module] = _conv(512, 256) + [up()]
    layers += _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 128) + [up()]
    layers += _conv(128, 128) + _conv(128, 64) + [up()]
    layers += _conv(64, 64) + [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(64, 3, (3, 3))]
    return nn.Sequential(*layers)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (unbiased variance + eps, as the repo's calc_mean_std)."""
    batch, channels = features.shape[:2]
    flat = features.reshape(batch, channels, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(batch, channels, 1, 1)
    return flat.mean(dim=2).view(batch, channels, 1, 1), std


def adaptive_instance_normalization(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The content features with each channel's mean and spread replaced by the style's."""
    style_mean, style_std = mean_std(style)
    content_mean, content_std = mean_std(content)
    return (content - content_mean) / content_std * style_std + style_mean


def stylize(encoder: nn.Module, decoder: nn.Module, content: torch.Tensor, style: torch.Tensor,
            alpha: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """pytorch-AdaIN's ``style_transfer``: alpha 0 decodes the content's own features, 1 the fully restyled ones.
    ``dtype`` bfloat16: the convolutions run in it (autocast), the channel statistics and mixing in float32."""
    def computing() -> Any:  # noqa: ANN401 - a context manager
        return torch.autocast(content.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()

    with computing():
        content_features, style_features = encoder(content).float(), encoder(style).float()
    target = adaptive_instance_normalization(content_features, style_features)
    with computing():
        return decoder(target * alpha + content_features * (1 - alpha)).float().clamp(0, 1)


def multiple_of_8_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``size`` scaled to ``long_side``, each side rounded to a multiple of 8 (at least MIN_SIDE)."""
    scale = long_side / max(size)
    width, height = (max(MIN_SIDE, round(side * scale / MULTIPLE) * MULTIPLE) for side in size)
    return width, height


class AdaINStyle:
    """AdaIN transfer. Params: style, alpha (0..1), resolution (long side worked at), preserve_colors."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self._modules: tuple[nn.Module, nn.Module] | None = None
        self._key: tuple[Any, ...] | None = None

    def load(self, device: torch.device) -> tuple[nn.Module, nn.Module]:
        """Encoder and decoder on ``device``, loaded once per version of the two files."""
        vgg_path, decoder_path = require_weights(self.env, [ADAIN_VGG_FILE, ADAIN_DECODER_FILE], TITLE)
        key = (file_key(vgg_path), file_key(decoder_path), str(device))
        if self._modules is None or self._key != key:
            self._modules = None
            loaded = []
            for path, build, what in ((vgg_path, adain_encoder, "an AdaIN encoder (vgg_normalised)"),
                                      (decoder_path, adain_decoder, "an AdaIN decoder")):
                with torch.device("meta"):
                    module = build()
                # The released vgg_normalised holds all 53 modules; only the 31 used are read.
                tensors = load_checked(path, {k: tuple(v.shape) for k, v in module.state_dict().items()}, what)
                module.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True)
                loaded.append(module.requires_grad_(False).eval().to(device))
            self._modules, self._key = (loaded[0], loaded[1]), key
        return self._modules

    def held_models(self) -> list[HeldModel]:
        """Its encoder and decoder, kept from the last run (the Models in Memory window)."""
        return [] if self._modules is None else [describe(f"{TITLE}: encoder and decoder", CACHED, self._modules)]

    def release_memory(self, in_use: bool = False) -> list[HeldModel]:
        held, self._modules, self._key = self.held_models(), None, None
        return held

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image:
        # float32 even on CUDA: relu4_1 variances overflow float16, and it is a single pass. bfloat16 has
        # float32's range: on a CPU with bfloat16 units it is 2-3x faster.
        device = select_device(self.env.device).torch_device
        dtype = cpu_dtype(fast=True) if device.type == "cpu" else torch.float32
        encoder, decoder = self.load(device)
        if dtype == torch.bfloat16:  # oneDNN's bfloat16 convolutions want channels-last weights
            to_channels_last(encoder)
            to_channels_last(decoder)
        context.check_cancelled()
        size = multiple_of_8_size(image.size, int(params.get("resolution", 768)))
        style_image: Image.Image = params["style"]
        content = to_tensor(image, size, device)
        style = to_tensor(style_image, same_area_size(style_image.size, size[0] * size[1]), device)
        context.report_progress(1, 2)
        context.check_cancelled()
        with torch.inference_mode():
            output = stylize(encoder, decoder, content, style, float(params.get("alpha", 1.0)), dtype)
        result = to_image(output)
        if result.size != image.size:
            result = result.resize(image.size, Image.Resampling.LANCZOS)
        if params.get("preserve_colors"):
            result = keep_own_colours(result, image)
        context.report_progress(2, 2, preview=_small(result))
        return result


def _small(image: Image.Image, side: int = 256) -> Image.Image:
    preview = image.copy()
    preview.thumbnail((side, side))
    return preview
