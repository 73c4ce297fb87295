"""Cheap latent-to-RGB previews: one 4x3 linear map per model family (factors as in ComfyUI)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# rows: latent channels, columns: R, G, B
_FACTORS = {
    "sd": ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
            [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0]),
    "sdxl": ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
              [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
}
_cache: dict[tuple[str, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def latents_to_preview(latents: torch.Tensor, family: str = "sd") -> Image.Image:
    """An RGB image at latent resolution (1/8 of the output) from the first latent of a batch."""
    latent = latents[0]
    if latent.shape[0] != 4:  # unknown latent space: show its mean as grey
        grey = latent.float().mean(0)
        grey = ((grey - grey.min()) / (grey.max() - grey.min() + 1e-6) * 255).to(torch.uint8)
        return Image.fromarray(grey.cpu().numpy(), "L").convert("RGB")
    key = (family if family in _FACTORS else "sd", latent.device, latent.dtype)
    if key not in _cache:
        factors, bias = _FACTORS[key[0]]
        _cache[key] = (torch.tensor(factors, device=latent.device, dtype=latent.dtype),
                       torch.tensor(bias, device=latent.device, dtype=latent.dtype))
    factors, bias = _cache[key]
    rgb = torch.einsum("chw,cr->hwr", latent, factors) + bias
    rgb = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
