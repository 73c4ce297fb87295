"""Importing torch, diffusers and transformers the way a desktop app wants them: quiet, no console bars, and
without holding the window up."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


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


# torch's own libraries, in the order they depend on each other; the CUDA one is absent from CPU builds.
TORCH_LIBRARIES = ("libtorch_cpu", "libtorch_cuda", "libtorch")


class _TorchLibrariesOffTheGil:
    """Loads torch's C++ libraries just before ``torch._C`` is imported, with the GIL released.

    Python holds the GIL while an import opens an extension module, and opening ``torch._C`` runs its
    libraries' static initialisers (every operator's registration): 0.2-0.27 s on a CPU build here, and far
    longer with CUDA's, during which the window cannot paint. The same ``dlopen`` made through ctypes
    releases the GIL; the import then finds the libraries open. It runs after torch's ``__init__`` has
    preloaded its CUDA dependencies in its own order, so the libraries resolve them exactly as torch's
    import would. Nothing that needs Python (``libtorch_python``) is opened this way.
    """

    def __init__(self) -> None:
        self.opened: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname != "torch._C":
            return None
        # A new list: the import is iterating over the old one, and removing an item from it would skip the next.
        sys.meta_path = [finder for finder in sys.meta_path if finder is not self]
        folder = Path(sys.modules["torch"].__file__ or "").parent / "lib"
        dlopen = ctypes.CDLL(None).dlopen  # a foreign call: ctypes lets the GIL go while it runs
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_int)
        suffix = ".dylib" if sys.platform == "darwin" else ".so"
        for name in TORCH_LIBRARIES:
            library = folder / f"{name}{suffix}"
            # A failure is left to the import itself, which reports it in torch's own words.
            if library.is_file() and dlopen(os.fsencode(library), os.RTLD_NOW | os.RTLD_LOCAL):
                self.opened.append(name)
        return None  # the usual finder imports torch._C itself


def open_torch_libraries_off_the_gil() -> _TorchLibrariesOffTheGil | None:
    """Call on the engine thread before torch is first imported; nothing happens once it is, or on Windows."""
    if "torch" in sys.modules or sys.platform == "win32":
        return None
    if any(isinstance(finder, _TorchLibrariesOffTheGil) for finder in sys.meta_path):
        return None
    finder = _TorchLibrariesOffTheGil()
    sys.meta_path.insert(0, finder)
    return finder
