"""Hires fix: a picture made at the model's own size, enlarged, then redrawn at the larger size (image to image).

Models are trained at one size (SD 1.5 at 512, SDXL at 1024); asked straight for a larger picture they repeat
subjects and lose composition. AUTOMATIC1111's "Hires. fix", Fooocus' and InvokeAI's upscale passes instead
compose at the trained size and add detail in a second, partial pass. The recipe says so in A1111's words
(``Hires upscale``, ``Hires steps``, ``Hires upscaler``, and the second pass's ``Denoising strength``), with
``Size`` the first pass's size, so pictures read the same in every tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.core.units import finite_or, is_finite_number

LANCZOS = "Lanczos"  # enlarged as a picture, by Pillow
# AUTOMATIC1111's latent upscalers: the first picture's latents are enlarged (torch's interpolate mode, antialiased).
LATENT_UPSCALERS: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False), "Latent (antialiased)": ("bilinear", True), "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True), "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
BUILT_IN_UPSCALERS = (LANCZOS, *LATENT_UPSCALERS)  # any other name is an upscaler model in <models>/upscalers
MAX_SCALE = 4.0
DEFAULT_SCALE = 2.0
DEFAULT_STRENGTH = 0.5  # enough to add detail at the new size without redrawing the composition
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class HiresFix:
    """The second pass of a new picture: enlarged ``scale`` times by ``upscaler``, then redrawn with ``strength``
    in ``steps`` steps (0: as many as the first pass; diffusers runs ``int(steps x strength)`` of them)."""

    scale: float = DEFAULT_SCALE
    steps: int = 0
    strength: float = DEFAULT_STRENGTH
    upscaler: str = LANCZOS

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The picture's final size: the first pass's, times the scale, in multiples of 8."""
        return _multiple(width * self.scale), _multiple(height * self.scale)

    def steps_for(self, first_pass_steps: int) -> int:
        return self.steps or first_pass_steps

    def to_record(self) -> dict[str, Any]:
        return {"scale": self.scale, "steps": self.steps, "strength": self.strength, "upscaler": self.upscaler}

    @classmethod
    def from_record(cls, value: object) -> HiresFix | None:
        """A recorded hires fix (history params, Studio's JSON recipe), which is untrusted: None where malformed."""
        if not isinstance(value, Mapping):
            return None
        scale, steps, strength = value.get("scale"), value.get("steps", 0), value.get("strength", DEFAULT_STRENGTH)
        upscaler = value.get("upscaler", LANCZOS)
        whole_steps = isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0
        if not (is_finite_number(scale) and 1 < scale <= MAX_SCALE and is_finite_number(strength)
                and 0 < strength <= 1 and whole_steps and isinstance(upscaler, str)):
            return None
        return cls(float(scale), steps, float(strength), upscaler or LANCZOS)


def hires_summary(hires: HiresFix, width: int, height: int) -> str:
    """For people: "2× with Lanczos → 1024×1024, 10 steps, strength 0.5"."""
    final_width, final_height = hires.size(width, height)
    steps = f"{hires.steps} steps" if hires.steps else "steps as the first pass"
    return (f"{hires.scale:g}× with {hires.upscaler} → {final_width}×{final_height}, {steps}, "
            f"strength {hires.strength:g}")


def hires_from_settings(settings: Mapping[str, str]) -> HiresFix | None:
    """The hires fix an A1111 settings line describes (``Hires upscale: 2, Hires steps: 10, Hires upscaler: …,
    Denoising strength: 0.5``; or ``Hires resize: 1024x1536`` for a size, taken as the scale that reaches it), or
    None, also for a scale Studio cannot run. The upscaler keeps A1111's name ("Latent", "R-ESRGAN 4x+"): whoever
    uses it finds Studio's own (``upscaler_or_lanczos``)."""
    scale = finite_or(settings.get("Hires upscale"), None)
    if scale is None:
        scale = _resize_scale(settings)
    if scale is None or not 1 < scale <= MAX_SCALE:
        return None
    steps = finite_or(settings.get("Hires steps"), None) or 0
    strength = finite_or(settings.get("Denoising strength"), None)
    upscaler = settings.get("Hires upscaler", "").strip() or LANCZOS
    return HiresFix(scale, int(steps), DEFAULT_STRENGTH if strength is None else strength, upscaler)


def latent_mode(upscaler: str) -> tuple[str, bool] | None:
    """How a latent upscaler enlarges (torch's interpolate mode, antialiased), or None for a picture upscaler."""
    return LATENT_UPSCALERS.get(upscaler)


def upscaler_or_lanczos(name: str, installed: list[str]) -> tuple[str, str | None]:
    """The upscaler Studio runs for ``name`` (another tool's, or one no longer installed): a built-in one or the
    installed model of that name (any case), else Lanczos with a sentence saying so."""
    found = next((item for item in (*BUILT_IN_UPSCALERS, *installed) if item.casefold() == name.casefold()), None)
    if found is not None:
        return found, None
    return LANCZOS, f"No upscaler called {name!r} is installed; the hires fix uses Lanczos."


def _resize_scale(settings: Mapping[str, str]) -> float | None:
    """The scale of A1111's "Resize width/height to" (``Hires resize: WxH``, or ``Hires resize-1``/``-2``; 0 keeps
    the aspect): the larger of the two, where A1111 would crop to the other."""
    width, _, height = settings.get("Size", "").partition("x")
    if "Hires resize" in settings:
        to_width, _, to_height = settings["Hires resize"].partition("x")
    else:
        to_width, to_height = settings.get("Hires resize-1", ""), settings.get("Hires resize-2", "")
    first = finite_or(width, None), finite_or(height, None)
    wanted = finite_or(to_width, None), finite_or(to_height, None)
    scales = [to / side for side, to in zip(first, wanted, strict=True) if side and side > 0 and to and to > 0]
    return round(max(scales), 4) if scales else None


def _multiple(value: float) -> int:
    return max(SIZE_MULTIPLE, int(value + SIZE_MULTIPLE / 2) // SIZE_MULTIPLE * SIZE_MULTIPLE)
