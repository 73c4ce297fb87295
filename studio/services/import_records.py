"""The record of where the library's models came from (IMPORTS_FILE in the models folder): the file a model
was imported from, or the hub repo it was downloaded from, by the path it has in the library."""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.errors import os_reason
from studio.core.images import write_atomically
from studio.core.model_library import IMPORTS_FILE, read_imports


def record_import(models_dir: Path, target: Path, source: Path | str) -> str:
    """Write down where ``target`` came from (a file's path, or HUB_ORIGIN and a repo id); "" when it was, else
    the sentence that says the model is in place all the same (only the library's "imported from" is missing).
    A full disk or a record that is not a writable file must not hide that the copy is done."""
    imports = read_imports(models_dir)
    imports[str(target.resolve())] = source if isinstance(source, str) else str(source.resolve())
    try:
        write_atomically(models_dir / IMPORTS_FILE, json.dumps(imports, indent=1).encode("utf-8"))
    except OSError as exc:
        return (f"{target.name} is in the library at {target}, but where it came from could not be written to "
                f"{models_dir / IMPORTS_FILE} ({os_reason(exc)}), so the library will not say where it was "
                "imported from.")
    return ""


def forget_import(models_dir: Path, path: Path) -> None:
    imports = read_imports(models_dir)
    if imports.pop(str(path), None) is not None:
        write_atomically(models_dir / IMPORTS_FILE, json.dumps(imports, indent=1).encode("utf-8"))
