"""Neural style transfer (Gatys, Ecker & Bethge 2016): optimise the picture's pixels against VGG-19 features.

Losses, chosen so the weights mean the same at every resolution:
- content: mean squared difference of the conv4_2 activations (after ReLU);
- style: for conv1_1, conv2_1, conv3_1, conv4_1 and conv5_1 (after ReLU), the Gram matrix
  F·Fᵀ / (C·H·W), compared by mean squared difference, summed over the five layers.
The activations are read after each layer's ReLU, as Gatys et al.'s Caffe code did (its ReLUs
run in place). The Gram normalisation is the PyTorch tutorial's, for which style weights of 1e5–1e6
against a content weight of 1 are the well-tried range; the default, DEFAULT_STYLE_WEIGHT = 1e5, is
its low end (a larger weight takes the style further). The balance could not be looked at with real
ImageNet weights here, so treat the default as a starting point.

The optimiser is L-BFGS, as in Gatys et al. and Johnson's neural-style: it reaches a stylised picture
in far fewer VGG passes than Adam. A strong-Wolfe line search makes every iteration lower the loss,
and it costs about one pass per iteration because the accepted point's loss is kept (see _Objective).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.generation import JobContext
from studio.core.held_memory import CACHED, HeldModel
from studio.engine.device import select_device
from studio.engine.held_memory import describe
from studio.engine.style.vgg import (
    CONV1_1,
    CONV2_1,
    CONV3_1,
    CONV4_1,
    CONV4_2,
    CONV5_1,
    VGGFeatures,
)
from studio.engine.style.weights import (
    VGG19_FILE,
    file_key,
    load_checked,
    require_weights,
)

TITLE = "Neural style transfer"
DEFAULT_STYLE_WEIGHT = 1e5
PREVIEW_EVERY = 5  # iterations between previews: cheap next to a VGG pass, frequent enough to watch
PREVIEW_SIDE = 256
# L-BFGS's own first step moves the pixels by 1 in total (L1), a few millionths each at 512²; the line
# search then needs many passes to grow it. Starting at a 2% change of the most-changed pixel saves them.
FIRST_STEP = 0.02
MAX_LINE_SEARCH = 20  # loss evaluations one iteration's line search may try; it rarely needs more than 2
MIN_SIDE = 16  # four 2×2 pools still leave conv5_1 at least one pixel

# ReLU outputs: each conv index + 1 in torchvision's layout.
STYLE_TAPS = tuple(index + 1 for index in (CONV1_1, CONV2_1, CONV3_1, CONV4_1, CONV5_1))
CONTENT_TAP = CONV4_2 + 1


def working_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``size`` scaled so its long side is ``long_side`` (either way), no side under MIN_SIDE."""
    width, height = size
    scale = long_side / max(width, height)
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def same_area_size(size: tuple[int, int], area: int) -> tuple[int, int]:
    """``size`` scaled to about ``area`` pixels: the style's brush marks then have the picture's scale."""
    width, height = size
    scale = math.sqrt(area / (width * height))
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def to_tensor(image: Image.Image, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """RGB picture resized (Lanczos) to ``size`` → float32 tensor (1, 3, H, W) in [0, 1]."""
    image = image.convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    array = array.view(size[1], size[0], 3).permute(2, 0, 1).unsqueeze(0)
    return (array.float() / 255.0).contiguous().to(device)


def keep_own_colours(result: Image.Image, image: Image.Image) -> Image.Image:
    """The styled result given the picture's own colours ("Keep the picture's own colours"), both counted over the
    pixels that show: the picture's alpha goes with it (given as RGB, its hidden pixels, black as often as not,
    darkened the result). A picture that shows nothing has no colours to keep."""
    from studio.core.color_transfer import transfer_color

    if "A" in image.getbands():
        alpha = image.getchannel("A")
        if alpha.getextrema()[1] == 0:
            return result
        result = result.convert("RGB")
        result.putalpha(alpha)  # the result's hidden pixels are not counted either
    return transfer_color(result, image, "lab")


def to_image(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) tensor in [0, 1] (clamped here) → RGB picture."""
    array = (tensor.detach()[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().contiguous()
    return Image.fromarray(array.numpy(), "RGB")


def preview_image(tensor: torch.Tensor, side: int = PREVIEW_SIDE) -> Image.Image:
    """A small picture of the tensor (long side at most ``side``), shrunk on the device before copying."""
    height, width = tensor.shape[-2:]
    scale = min(1.0, side / max(width, height))
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        tensor = F.interpolate(tensor.detach(), size=size, mode="area")
    return to_image(tensor)


def gram(features: torch.Tensor) -> torch.Tensor:
    """F·Fᵀ / (C·H·W): independent of picture size, so style weights carry across resolutions."""
    _, channels, height, width = features.shape
    flat = features.reshape(channels, height * width)
    return flat @ flat.t() / (channels * height * width)


class NeuralStyle:
    """Gatys-style transfer. Params: style, iterations, resolution, content_weight, style_weight, seed, init,
    preserve_colors.

    After a run, ``last_losses`` holds the weighted (style, content) loss of the starting picture and then of
    each iteration's result, and ``passes`` the number of VGG forward/backward passes it took.
    """

    def __init__(self, env: GeneratorEnvironment) -> None:
        self.env = env
        self.last_losses: list[tuple[float, float]] = []
        self.passes = 0
        self._vgg: VGGFeatures | None = None
        self._vgg_key: tuple[Any, ...] | None = None

    def load(self, device: torch.device) -> VGGFeatures:
        """The frozen VGG-19 trunk on ``device``, loaded once per file version."""
        (path,) = require_weights(self.env, [VGG19_FILE], TITLE)
        key = (*file_key(path), str(device))
        if self._vgg is None or self._vgg_key != key:
            self._vgg = None  # drop the old copy before loading the new one
            with torch.device("meta"):
                model = VGGFeatures(last=max(STYLE_TAPS[-1], CONTENT_TAP))
            tensors = load_checked(path, model.expected_shapes(), "a VGG-19", prefixes=("features.", ""))
            model.features.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True)
            model.requires_grad_(False).eval()
            self._vgg, self._vgg_key = model.to(device), key
        return self._vgg

    def held_models(self) -> list[HeldModel]:
        """Its VGG-19 trunk, kept from the last run (the Models in Memory window)."""
        return [] if self._vgg is None else [describe(f"{TITLE}: VGG-19", CACHED, [self._vgg])]

    def release_memory(self, in_use: bool = False) -> list[HeldModel]:
        held, self._vgg, self._vgg_key = self.held_models(), None, None
        return held

    def process(self, image: Image.Image, params: Mapping[str, Any], context: JobContext) -> Image.Image:
        iterations = int(params.get("iterations", 200))
        content_weight = float(params.get("content_weight", 1.0))
        style_weight = float(params.get("style_weight", DEFAULT_STYLE_WEIGHT))
        device = select_device(self.env.device).torch_device  # float32 throughout: fp16 Grams overflow
        vgg = self.load(device)
        context.check_cancelled()

        size = working_size(image.size, int(params.get("resolution", 512)))
        content = to_tensor(image, size, device)
        style_image: Image.Image = params["style"]
        style = to_tensor(style_image, same_area_size(style_image.size, size[0] * size[1]), device)
        with torch.no_grad():
            style_grams = [gram(f) for f in vgg(style, STYLE_TAPS)]
            (content_target,) = vgg(content, (CONTENT_TAP,))
        del style

        if params.get("init", "content") == "noise":
            # Drawn on the CPU from a private generator: the same seed gives the same start on any device.
            generator = torch.Generator().manual_seed(int(params.get("seed", 0)))
            start = torch.rand(content.shape, generator=generator).to(device)
        else:
            start = content.clone()
        pixels = start.requires_grad_(True)
        objective = _Objective(vgg, pixels, style_grams, content_target, style_weight, content_weight, context)
        # One step() call per iteration, so progress and cancelling are per iteration; L-BFGS keeps its
        # curvature history across calls, so it is one continuous run. The strong-Wolfe line search keeps
        # every iteration's loss below the last one's (a fixed step spikes with noise starts and high
        # style weights) and usually accepts its first try; max_eval bounds its tries per iteration.
        optimiser = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, max_eval=MAX_LINE_SEARCH + 1,
                                      history_size=100, tolerance_grad=0.0, tolerance_change=0.0,
                                      line_search_fn="strong_wolfe")
        self.last_losses = [objective.accepted()]
        optimiser.param_groups[0]["lr"] = objective.first_step_scale(FIRST_STEP)
        for step in range(iterations):
            context.check_cancelled()
            optimiser.step(objective)
            optimiser.param_groups[0]["lr"] = 1.0  # quasi-Newton steps are already scaled
            self.last_losses.append(objective.accepted())
            last = step + 1 == iterations
            preview = preview_image(pixels) if last or step % PREVIEW_EVERY == 0 else None
            context.report_progress(step + 1, iterations, preview=preview)
        self.passes = objective.passes

        result = to_image(pixels)
        if result.size != image.size:
            result = result.resize(image.size, Image.Resampling.LANCZOS)
        if params.get("preserve_colors"):
            result = keep_own_colours(result, image)
        return result


class _Objective:
    """The L-BFGS closure: the weighted loss and its gradient at the current pixels.

    L-BFGS re-evaluates, at the start of every step() call, the point its previous line search accepted;
    that point's loss and gradient are kept, so an iteration costs only its line-search passes.
    """

    def __init__(self, vgg: VGGFeatures, pixels: torch.Tensor, style_grams: list[torch.Tensor],
                 content_target: torch.Tensor, style_weight: float, content_weight: float,
                 context: JobContext) -> None:
        self.vgg, self.pixels, self.context = vgg, pixels, context
        self.style_grams, self.content_target = style_grams, content_target
        self.style_weight, self.content_weight = style_weight, content_weight
        self.passes = 0
        # The lowest-loss point evaluated since the last accepted one: (pixels, total, gradient, style, content).
        self._best: tuple[torch.Tensor, float, torch.Tensor, float, float] | None = None
        self._accepted: tuple[torch.Tensor, float, torch.Tensor, float, float] | None = None

    def __call__(self) -> torch.Tensor:
        for kept in (self._accepted, self._best):
            if kept is not None and torch.equal(kept[0], self.pixels):
                self.pixels.grad = kept[2].clone()
                return torch.tensor(kept[1])
        self.context.check_cancelled()  # a line search may take several passes: stay responsive
        self.pixels.grad = None
        *style_features, content_features = self.vgg(self.pixels, (*STYLE_TAPS, CONTENT_TAP))
        style_loss = sum((F.mse_loss(gram(f), g) for f, g in zip(style_features, self.style_grams, strict=True)),
                         torch.zeros((), device=self.pixels.device)) * self.style_weight
        content_loss = F.mse_loss(content_features, self.content_target) * self.content_weight
        total = style_loss + content_loss
        total.backward()
        self.passes += 1
        value = float(total.detach())
        if self._best is None or value <= self._best[1]:
            assert self.pixels.grad is not None
            self._best = (self.pixels.detach().clone(), value, self.pixels.grad.detach().clone(),
                          float(style_loss.detach()), float(content_loss.detach()))
        return total

    def first_step_scale(self, largest_change: float) -> float:
        """The lr for which L-BFGS's first step, lr·min(1, 1/|g|₁)·g, changes no pixel by more than
        ``largest_change``."""
        assert self._accepted is not None
        gradient = self._accepted[2]
        largest, total = float(gradient.abs().max()), float(gradient.abs().sum())
        if largest == 0.0:
            return 1.0
        return largest_change / (min(1.0, 1.0 / total) * largest)

    def accepted(self) -> tuple[float, float]:
        """(style, content) loss at the current pixels, the point L-BFGS accepted; evaluated if not yet seen."""
        for kept in (self._best, self._accepted):
            if kept is not None and torch.equal(kept[0], self.pixels):
                self._accepted = kept
                break
        else:  # the line search ended on a point it did not evaluate last (rare): evaluate it
            self._best = None
            with torch.enable_grad():
                self()
            self._accepted = self._best
        self._best = None
        assert self._accepted is not None
        return self._accepted[3], self._accepted[4]
