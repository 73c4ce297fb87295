"""Colours from the prompt: colour and mood words pick palette stops; other words are hashed into hues.

The hash is a fixed one (BLAKE2), not Python's ``hash()``, which changes from run to run: the same
prompt must give the same palette tomorrow.
"""

from __future__ import annotations

import colorsys
import hashlib
import re

import numpy as np

# Single colours. One of these alone becomes a ramp: a dark shade, the colour, a light tint.
COLOURS: dict[str, str] = {
    "red": "#c0392b", "crimson": "#9b1b30", "orange": "#e67e22", "amber": "#ffb000", "yellow": "#f1c40f",
    "gold": "#d4a017", "golden": "#d4a017", "lime": "#9bd34a", "green": "#27ae60", "emerald": "#1f9d6b",
    "olive": "#708238", "mint": "#98e0c0", "teal": "#14867f", "turquoise": "#30c5c0", "cyan": "#22c7e0",
    "blue": "#2e6fd8", "azure": "#3c9be8", "navy": "#14245a", "indigo": "#3f2a8c", "violet": "#7f4fc9",
    "purple": "#7d3c98", "magenta": "#d0309a", "pink": "#ef8fb5", "rose": "#d9667f", "brown": "#7b4a2a",
    "copper": "#b46a3c", "rust": "#a4421d", "tan": "#c9a77c", "beige": "#e3d3b4", "cream": "#f5ecd2",
    "white": "#f4f4f0", "black": "#111114", "grey": "#808084", "gray": "#808084", "silver": "#b8bcc4",
}

# Moods and scenes: several stops, dark to light.
THEMES: dict[str, tuple[str, ...]] = {
    "sunset": ("#1b1033", "#6b2a5e", "#d0473c", "#f39c3d", "#fbd66a"),
    "sunrise": ("#2b2250", "#b5577a", "#f4a261", "#fde6a8"),
    "ocean": ("#031a33", "#0b4f7a", "#1b8aa6", "#6cc6c9", "#e2f4f1"),
    "sea": ("#031a33", "#0b4f7a", "#1b8aa6", "#6cc6c9", "#e2f4f1"),
    "forest": ("#0d1f12", "#1e4d2b", "#3f7d3a", "#8cae5a", "#d8e3a6"),
    "night": ("#05060f", "#10183a", "#2b2f6b", "#6b6fa8", "#d9dcf2"),
    "pastel": ("#f7c8d7", "#fbe2c0", "#f8f3c1", "#c7ecd7", "#c5dcf5", "#dccaf2"),
    "neon": ("#07010f", "#ff2bd6", "#22f0ff", "#b6ff2e", "#fff45c"),
    "monochrome": ("#000000", "#7a7a7a", "#ffffff"),
    "fire": ("#120200", "#6e0b00", "#d43a00", "#ff9a1f", "#fff3b0"),
    "ice": ("#0b1e2d", "#2f6f8f", "#8fc6dd", "#e6f6fb", "#ffffff"),
    "desert": ("#5b3a1e", "#a9683a", "#d9a066", "#ecd3a5", "#f8efdc"),
    "autumn": ("#3a1607", "#8b2e0b", "#c8611b", "#e3a33b", "#f1d37a"),
    "earth": ("#2b1d14", "#5c4330", "#8a6f4d", "#b8a27a", "#e0d6bc"),
    "sepia": ("#2a1b0e", "#6e4e2e", "#b08d62", "#e8d7b5"),
    "lava": ("#0b0605", "#3a0d05", "#a32005", "#ff6a00", "#ffd27a"),
    "aurora": ("#020a14", "#0b3d4a", "#1fbf8f", "#7cf29c", "#c77dff"),
}
DEFAULT = ("#14213d", "#3d5a80", "#98c1d9", "#e0fbfc", "#ee6c4d")  # an empty prompt
IGNORED = frozenset({  # words that say nothing about colour
    "a", "an", "the", "of", "and", "or", "in", "on", "at", "to", "with", "without", "for", "from", "by", "into",
    "over", "under", "very", "picture", "image", "photo", "art", "style", "background", "pattern", "texture",
})
MAX_STOPS = 8


def palette_for(prompt: str, negative_prompt: str = "") -> np.ndarray:
    """The palette stops (n x 3, uint8) for a prompt; words in the negative prompt are left out."""
    unwanted = set(_words(negative_prompt))
    words = [w for w in _words(prompt) if w not in unwanted and w not in IGNORED]
    named = list(dict.fromkeys(w for w in words if w in COLOURS or w in THEMES))  # each word once, in order
    if named:
        stops = [_rgb(c) for w in named for c in (THEMES.get(w) or (COLOURS[w],))]
        if len(stops) == 1:
            stops = [_mix(stops[0], (0, 0, 0), 0.75), stops[0], _mix(stops[0], (255, 255, 255), 0.7)]
        elif len(named) > 1:  # several words: dark to light, so their colours blend instead of jumping
            stops.sort(key=_luma)
    elif words:
        stops = _hashed(words)
    else:
        stops = [_rgb(c) for c in DEFAULT]
    return np.array(stops[:MAX_STOPS], np.uint8)


def lookup_table(stops: np.ndarray, size: int = 1024) -> np.ndarray:
    """``size`` colours (size x 3, uint8) blending evenly through the stops."""
    if len(stops) == 1:
        return np.repeat(stops, size, axis=0)
    at = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, size)
    return np.stack([np.interp(t, at, stops[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def colourise(field: np.ndarray, table: np.ndarray) -> np.ndarray:
    """An RGB array (h x w x 3, uint8) for a field of values in 0..1."""
    index = (field * np.float32(len(table) - 1) + np.float32(0.5)).astype(np.intp)
    return table[index]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _hashed(words: list[str]) -> list[tuple[int, int, int]]:
    """A dark shade, one colour per word (hue, saturation and brightness from its hash), a light tint."""
    colours = []
    for word in dict.fromkeys(words):
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        hue = int.from_bytes(digest[:2], "big") / 65536
        saturation = 0.45 + 0.4 * digest[2] / 255
        value = 0.55 + 0.4 * digest[3] / 255
        colours.append(tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)))
    colours = colours[:MAX_STOPS - 2]
    return [_mix(colours[0], (0, 0, 0), 0.8), *colours, _mix(colours[-1], (255, 255, 255), 0.75)]


def _luma(rgb: tuple[int, ...]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _mix(a: tuple[int, ...], b: tuple[int, ...], amount: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * amount) for x, y in zip(a, b, strict=True))
