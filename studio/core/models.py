"""Finding models on disk and refusing the formats Studio will not load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import InvalidRequest, ModelError

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
SAFE_SUFFIX = ".safetensors"
MODEL_INDEX = "model_index.json"
SKIPPED_COMPONENTS = ("safety_checker",)  # never loaded, so its weight format does not matter


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path


def is_diffusers_folder(path: Path) -> bool:
    return (path / MODEL_INDEX).is_file()


def find_models(models_dir: Path, extra: list[Path] | tuple[Path, ...] = ()) -> list[ModelEntry]:
    """Diffusers folders directly in models_dir or one level down, plus folders picked by hand."""
    found: dict[Path, ModelEntry] = {}
    candidates: list[Path] = []
    if models_dir.is_dir():
        for child in sorted(models_dir.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                candidates.append(child)
                if not is_diffusers_folder(child):
                    candidates.extend(sorted(c for c in child.iterdir() if c.is_dir()))
    candidates.extend(extra)
    for path in candidates:
        if is_diffusers_folder(path):
            resolved = path.resolve()
            found.setdefault(resolved, ModelEntry(path.name, resolved))
    return sorted(found.values(), key=lambda m: m.name.lower())


def resolve_model(value: str, models_dir: Path, extra: list[Path] | tuple[Path, ...] = ()) -> Path:
    """A folder path as given, or the name of a model found in the models folder."""
    path = Path(value).expanduser()
    if path.exists():
        return path.resolve()
    for entry in find_models(models_dir, extra):
        if entry.name == value:
            return entry.path
    raise InvalidRequest(f"No model folder or model named {value!r} was found (looked in {models_dir}).")


def check_model_folder(path: Path) -> None:
    """Raise ModelError with one sentence unless path is a diffusers folder of safetensors weights."""
    if not path.exists():
        raise ModelError(f"The model {path} does not exist.")
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise ModelError(
                f"{path.name} is a pickle checkpoint, which can run code when loaded; Studio only reads "
                "safetensors. Convert it to safetensors first."
            )
        raise ModelError(
            f"{path.name} is a single file; Studio loads diffusers model folders "
            f"(a folder with {MODEL_INDEX}). Point it at such a folder."
        )
    if not is_diffusers_folder(path):
        raise ModelError(f"{path} is not a diffusers model folder (it has no {MODEL_INDEX}).")
    weights = [p for p in path.rglob("*")
               if p.is_file() and p.relative_to(path).parts[0] not in SKIPPED_COMPONENTS]
    safe_dirs = {p.parent for p in weights if p.name.endswith(SAFE_SUFFIX)}
    pickles = [p for p in weights if p.suffix.lower() in PICKLE_SUFFIXES and p.parent not in safe_dirs]
    if pickles:
        names = ", ".join(str(p.relative_to(path)) for p in pickles[:3])
        raise ModelError(
            f"The model {path.name} has pickle weights ({names}), which can run code when loaded; "
            "Studio only reads safetensors. Convert them to safetensors first."
        )
