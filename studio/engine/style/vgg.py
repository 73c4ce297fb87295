"""VGG-19 feature layers in torchvision's ``vgg19().features`` layout, built here because torchvision is not used.

Indices match torchvision (Conv2d/ReLU/MaxPool2d, 0..36), so a converted ``vgg19-dcbb9e9d.pth`` loads by key.
Only the layers up to the deepest one a caller reads are built.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# torchvision's configuration "E": channel counts, "M" for a 2×2 max pool.
_VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                     512, 512, 512, 512, "M", 512, 512, 512, 512, "M")

# Indices of the convolutions Gatys et al. read, in the torchvision Sequential.
CONV1_1, CONV2_1, CONV3_1, CONV4_1, CONV4_2, CONV5_1 = 0, 5, 10, 19, 21, 28

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layers(last: int) -> nn.Sequential:
    """torchvision's VGG-19 ``features`` modules 0..``last`` (inclusive), freshly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = item
        if len(layers) > last:
            break
    if last >= len(layers) or last < 0:
        raise ValueError(f"VGG-19 features have indices 0..{len(layers) - 1}, not {last}.")
    return nn.Sequential(*layers[:last + 1])


class VGGFeatures(nn.Module):
    """ImageNet-normalising VGG-19 trunk that returns the activations at chosen layer indices.

    Takes RGB in [0, 1]; the normalisation lives here so callers optimise plain pixels.
    """

    def __init__(self, last: int = CONV5_1) -> None:
        super().__init__()
        self.features = vgg19_layers(last)
        # An explicit CPU device keeps these real when the loader builds the layers on "meta" (no init cost).
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, device="cpu").view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD, device="cpu").view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        wanted = {index: position for position, index in enumerate(taps)}
        out: list[torch.Tensor | None] = [None] * len(taps)
        x = (image - self.mean) / self.std
        deepest = max(taps)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == deepest:
                break  # nothing deeper is read, so do not compute it
        return [t for t in out if t is not None]

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """State-dict keys as torchvision names them inside ``features`` (``"0.weight"``…) and their shapes."""
        return {key: tuple(value.shape) for key, value in self.features.state_dict().items()}
