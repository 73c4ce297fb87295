"""What installing a plugin means, worked out before anything is installed, and told to the person to confirm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.plugin_manifest import Manifest


@dataclass(frozen=True)
class InstallPlan:
    source: str
    wheel: Path
    manifest: Manifest
    distribution: str
    version: str
    dependencies: tuple[tuple[str, str], ...]  # (name, version) pip would add into the plugin's folder
    replaces: str | None  # the version now installed in plugins_dir/<id>, for an update
    staging: Path

    def _direction(self) -> str:
        from packaging.version import InvalidVersion, Version

        try:
            newer, older = Version(self.version), Version(self.replaces or "")
        except InvalidVersion:
            return "Replacement"
        return "Update" if newer > older else "Downgrade" if newer < older else "Reinstall"

    def describe(self) -> str:
        """Several lines for a confirm dialog or the command line."""
        m = self.manifest
        lines = [f"{m.name} {m.version} (plugin id {m.id})"]
        if m.author:
            lines.append(f"By: {m.author}")
        if m.description:
            lines.append(f"About: {m.description}")
        lines.append(f"Package: {self.distribution} {self.version}, from {self.source}")
        if self.replaces is not None:
            lines.append(f"{self._direction()}: replaces the installed version {self.replaces}")
        lines.append(f"Permissions: {m.permissions.describe()}")
        lines.append("Adds: " + "; ".join(f"{c.kind} {c.title!r} ({c.id})" for c in m.contributions))
        if self.dependencies:
            lines.append("Also installs into the plugin's folder: "
                         + ", ".join(f"{name} {version}" for name, version in self.dependencies))
        else:
            lines.append("Installs no other packages.")
        return "\n".join(lines)
