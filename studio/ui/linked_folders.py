"""The Model Library window's Linked Folders menu: use another tool's models folder (AUTOMATIC1111's, ComfyUI's,
InvokeAI's) in place, without copying, and unlink it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMenu

from studio.core.errors import StudioError
from studio.core.model_library import LibraryItem
from studio.core.settings import Settings
from studio.ui.task_dialog import TaskDialog


class LinkedFolders(TaskDialog):
    """The linking part of ModelsDialog, which sets these up and lists the library."""

    settings: Settings
    items: list[LibraryItem]
    link_menu: QMenu
    _changed: Callable[[], Awaitable[None]]  # reload, and tell the main window

    def _choose_link(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Link Another Tool's Models Folder")
        if name:
            self.start(self.link(Path(name)))

    def _fill_link_menu(self) -> None:
        self.link_menu.clear()
        self.link_menu.addAction("Link a Folder…", self._choose_link)
        if self.settings.extra_model_paths:
            self.link_menu.addSeparator()
        for path in self.settings.extra_model_paths:
            self.link_menu.addAction(f"Unlink {path}", lambda p=path: self.start(self.unlink(p)))

    async def link(self, path: Path) -> None:
        from studio.services.model_links import link_paths

        try:
            linking = link_paths(path, self.settings.extra_model_paths, self.settings.models_dir)
        except StudioError as exc:
            self._report(str(exc), error=True)
            return
        if not linking.added:
            self._report(" ".join([f"{path} is already linked; nothing was changed.", *linking.notes]))
            return
        self.settings.extra_model_paths = linking.links
        await self._changed()
        self._report(" ".join([*_linked_sentences(path, linking.added, self.items), *linking.notes]))

    async def unlink(self, path: Path) -> None:
        self.settings.extra_model_paths = [p for p in self.settings.extra_model_paths if p != path]
        await self._changed()
        self._report(f"Unlinked {path}; its files are untouched.")


def _linked_sentences(path: Path, added: list[Path], items: list[LibraryItem]) -> list[str]:
    """What linking the folder path found, one sentence for each folder linked, as ``studio models link`` says it:
    the folder itself, and the folders named in the ComfyUI extra_model_paths.yaml it holds."""
    from studio.core.paths import real_path
    from studio.services.model_links import found_there

    def found(where: Path) -> str:
        return found_there([i for i in items if i.path.is_relative_to(where)])

    where = real_path(path)
    said = [f"Linked {path}, used in place: {found(where)}." if where in added else f"{path} was linked already."]
    return said + [f"Linked {folder} (named in its extra_model_paths.yaml): {found(folder)}."
                   for folder in added if folder != where]
