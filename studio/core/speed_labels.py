"""The Speed choices' words in Settings → GPU, kept here (no Qt) so that the engine's sentences name the menu item
the window shows. The labels carry Qt's ``&`` mnemonic; ``menu_words`` gives them as a sentence prints them."""

from __future__ import annotations

SPEED_FAST = "Speed: &Fast"
SPEED_STANDARD = "Speed: &Standard"  # plain diffusers: the fast path off
SPEED_COMPILED = "Speed: Fastest (&Compiled)"


def menu_words(label: str) -> str:
    """A menu label as words in a sentence: without its mnemonic ``&`` ("&&" stays one "&")."""
    return label.replace("&&", "\0").replace("&", "").replace("\0", "&")
