"""Importing diffusers/transformers the way a desktop app wants them: quiet, no console bars."""

from __future__ import annotations

import os


def quiet_imports() -> None:
    """Call before the first diffusers/transformers import, on the engine thread."""
    # Set before import: they read these once, and warn at import time (e.g. about torchvision).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for lib in (diffusers_logging, transformers_logging):
        lib.disable_progress_bar()
        lib.set_verbosity_error()
