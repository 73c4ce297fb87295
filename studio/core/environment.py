"""What a generator is given when Studio creates it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.core.paths import StudioPaths
    from studio.core.settings import Settings


@dataclass(frozen=True)
class GeneratorEnvironment:
    device: str  # the person's device preference: auto | cuda | mps | cpu
    data_dir: Path  # the generator's own folder for files it keeps
    cache_dir: Path  # for things that may be rebuilt (hash caches, compiled graphs)
    models_dir: Path | None = None  # the person's models folder (weights for built-in features live under it)
    linked_dirs: tuple[Path, ...] = ()  # other tools' models folders the library uses in place (their embeddings)

    @classmethod
    def from_settings(cls, settings: Settings, paths: StudioPaths, device: str | None = None) -> GeneratorEnvironment:
        """What Studio's generators are given, from the person's settings (``device`` overrides theirs)."""
        return cls(device or settings.device, paths.data_dir, paths.cache_dir, settings.models_dir,
                   tuple(settings.extra_model_paths))

    @property
    def models_root(self) -> Path:
        """The models folder, or ``<data folder>/models`` when none was given."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"
