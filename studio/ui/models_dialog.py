"""The model library window: every model by kind, size, hash and source; import, link, download, remove.

Scanning, hashing, copying and downloading all run off the UI thread; the list fills in first and the
hashes follow. A download shows its bytes as they arrive and can be cancelled (and later resumed).
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.model_library import LibraryItem, format_size, scan_library, with_hashes
from studio.core.settings import Settings
from studio.ui.dialog_room import breakable_path, keep_rows_in_sight, keep_wrapped_text_whole
from studio.ui.linked_folders import LinkedFolders
from studio.ui.model_transfers import ModelTransfers
from studio.ui.task_dialog import brush
from studio.ui.theme import icon

if TYPE_CHECKING:  # services are imported when an import runs
    from studio.services.unfinished_downloads import UnfinishedDownload

KIND_FILTERS = (("All kinds", ""), ("Checkpoints", "checkpoint"), ("LoRAs", "lora"), ("VAEs", "vae"),
                ("ControlNets", "controlnet"), ("Upscalers", "upscaler"), ("Style weights", "style"),
                ("IP-Adapters", "ip-adapter"), ("Textual inversions", "embedding"))
COLUMNS = ("Name", "Kind", "Size", "Hash", "Source")
UNFINISHED = "Unfinished download"  # the Kind column of a download that stopped half-way


class ModelsDialog(ModelTransfers, LinkedFolders):
    def __init__(self, settings: Settings, cache_dir: Path, on_change: Callable[[list[LibraryItem]], None],
                 parent: QWidget | None = None, on_change_after_close: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.hash_cache = cache_dir / "model-hashes.json"
        self.on_change = on_change  # the library changed (here is its new scan): refresh the pickers, save
        # The library or its links changed and on_change has not had the new scan yet: closing the window cancels
        # the scan, so whoever opened it looks again when it closes (a folder linked just before Close was saved
        # while the model picker kept the old list).
        self.change_unseen = False
        # A removal still running when the window closed ends later: its change is told here, as the window is gone,
        # with "" or, when it failed, the sentence that says why.
        self.on_change_after_close = on_change_after_close
        self.closed = False
        self.items: list[LibraryItem] = []
        self.unfinished: list[UnfinishedDownload] = []  # downloads stopped half-way, listed to resume or delete
        self._cancel = threading.Event()
        self._generation = 0
        self.setWindowTitle("Model Library")
        self.resize(980, 560)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        models = html.escape(breakable_path(settings.models_dir))
        intro = QLabel(f"Models in {models} and in linked folders, identified by their contents. Studio only loads "
                       "safetensors files, which cannot run code when loaded.")
        intro.setToolTip("Pickle checkpoints (.ckpt, .pt) can run code when loaded the usual way, so Studio never "
                         "unpickles them: importing one converts it to safetensors, reading only its tensors.")
        intro.setWordWrap(True)
        intro.setObjectName("hintLabel")
        top.addWidget(intro, 1)
        self.kind_filter = QComboBox()
        for text, kind in KIND_FILTERS:
            self.kind_filter.addItem(text, kind)
        self.kind_filter.currentIndexChanged.connect(lambda *_: self._fill())
        top.addWidget(self.kind_filter)
        layout.addLayout(top)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        for column, width in enumerate((230, 150, 80, 112)):
            self.tree.setColumnWidth(column, width)
        self.tree.currentItemChanged.connect(lambda *_: self._show_details())
        layout.addWidget(self.tree, 1)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self._cancel.set)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        layout.addWidget(self.message)
        layout.addLayout(self._buttons())
        self.action_buttons = [self.import_button, self.link_button, self.download_button, self.resume_button,
                               self.remove_button]
        keep_rows_in_sight(self.tree)
        keep_wrapped_text_whole(self, intro, self.details, self.message, chars=60)
        self.start(self.reload())

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.import_button = QPushButton(icon("open"), "Import")
        menu = QMenu(self.import_button)
        menu.addAction("A .safetensors file…", self._choose_file)
        menu.addAction("A diffusers model folder…", self._choose_folder)
        self.import_button.setMenu(menu)
        self.link_button = QPushButton(icon("folder"), "Linked Folders")
        self.link_button.setToolTip("Use AUTOMATIC1111's, ComfyUI's or InvokeAI's models folder in place, "
                                    "without copying")
        self.link_menu = QMenu(self.link_button)
        self.link_menu.aboutToShow.connect(self._fill_link_menu)
        self.link_button.setMenu(self.link_menu)
        self.download_button = QPushButton(icon("generate"), "Download…")
        self.download_button.setToolTip("Download from the Hugging Face hub by repository id")
        self.download_button.clicked.connect(self._choose_download)
        self.resume_button = QPushButton(icon("generate"), "Resume")
        self.resume_button.setToolTip("Download the selected unfinished download again, from where it stopped")
        self.resume_button.clicked.connect(self._resume)
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        for widget in (self.import_button, self.link_button, self.download_button, self.resume_button):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.remove_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row.addWidget(close)
        return row

    def done(self, result: int) -> None:
        """Closing the window stops a download (it resumes next time) rather than leaving it running unseen, and
        its list's scan: the window goes."""
        self._cancel.set()
        self.closed = True
        super().done(result)  # (which cancels its tasks)

    # -- list ------------------------------------------------------------------------------------
    async def reload(self, hashes: bool = True, notify: bool = False) -> None:
        """Scan the library (off this thread), list it, then fill in the hashes; with ``notify``, hand the scan to
        ``on_change`` too, so the window need not scan again."""
        self._generation += 1
        generation = self._generation  # a newer reload wins over a slower older one
        models_dir, linked = self.settings.models_dir, list(self.settings.extra_model_paths)
        items, unfinished = await asyncio.to_thread(_scan, models_dir, linked)
        if generation != self._generation:
            return
        self.items, self.unfinished = items, unfinished
        if notify:
            self.on_change(items)
            self.change_unseen = False
        self._fill()
        if hashes and items:
            self.message.setText("Hashing new files (once; hashes are cached)…")
            hashed = await asyncio.to_thread(with_hashes, items, self.hash_cache)
            if generation != self._generation:
                return
            self.items = hashed
            self.message.setText("")
            self._fill()

    def _fill(self) -> None:
        # The selected row by what it is (a model's path, an unfinished download's folder): a refill after hashing
        # went back to the first row from a selected download, and the next Remove asked to delete a model.
        current = self.tree.currentItem()
        selected = current.data(0, Qt.ItemDataRole.UserRole) if current is not None else None
        kind = self.kind_filter.currentData()
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        for item in self.items:
            if kind and item.kind != kind:
                continue
            row = _Row([item.name, item.label, format_size(item.size), item.hash or "…", item.source])
            row.setData(0, Qt.ItemDataRole.UserRole, str(item.path))
            row.setData(2, Qt.ItemDataRole.UserRole, item.size)
            row.setToolTip(0, str(item.path))
            if item.problem or item.duplicate_of:
                row.setForeground(1, brush("#ff8a80" if item.problem else "#e8a25c"))
            self.tree.addTopLevelItem(row)
            if selected == str(item.path):
                self.tree.setCurrentItem(row)
        if not kind:  # of no kind yet: under All kinds only
            for download in self.unfinished:
                row = _Row([download.repo_id.rsplit("/", 1)[-1], UNFINISHED, format_size(download.done_bytes), "",
                            f"Hugging Face: {download.repo_id}"])
                row.setData(0, Qt.ItemDataRole.UserRole, str(download.folder))
                row.setData(1, Qt.ItemDataRole.UserRole, download.repo_id)
                row.setData(2, Qt.ItemDataRole.UserRole, download.done_bytes)
                row.setToolTip(0, str(download.folder))
                row.setForeground(1, brush("#e8a25c"))
                self.tree.addTopLevelItem(row)
                if selected == str(download.folder):
                    self.tree.setCurrentItem(row)
        self.tree.setSortingEnabled(True)
        self._settle_selection()

    def _selected(self) -> LibraryItem | None:
        row = self.tree.currentItem()
        if row is None:
            return None
        path = row.data(0, Qt.ItemDataRole.UserRole)
        return next((i for i in self.items if str(i.path) == path), None)

    def _selected_unfinished(self) -> UnfinishedDownload | None:
        row = self.tree.currentItem()
        repo_id = row.data(1, Qt.ItemDataRole.UserRole) if row is not None else None
        return next((d for d in self.unfinished if d.repo_id == repo_id), None)

    def _show_details(self) -> None:
        item, unfinished = self._selected(), self._selected_unfinished()
        self.remove_button.setEnabled(item is not None or unfinished is not None)
        self.resume_button.setEnabled(unfinished is not None)
        self.resume_button.setVisible(bool(self.unfinished))  # there only while there is something to resume
        if unfinished is not None:
            self.details.setText(f"{unfinished.repo_id}: {unfinished.progress}, in {unfinished.folder}. Resume "
                                 "downloads the rest; Remove deletes the partial files.")
            return
        if item is None:
            self.details.setText("No models yet: import a .safetensors file, link another tool's models folder, or "
                                 "download a starter model.")
            return
        lines = [str(item.path)]
        if item.duplicate_of:
            lines.append(f"The same file as {item.duplicate_of}.")
        if item.problem:
            lines.append(item.problem)
        self.details.setText("\n".join(lines))

    # -- actions ---------------------------------------------------------------------------------

    def _remove_selected(self) -> None:
        unfinished = self._selected_unfinished()
        self.start(self.remove(self._selected()) if unfinished is None else self.delete_unfinished(unfinished))

    async def remove(self, item: LibraryItem | None) -> bool:
        from studio.services.model_removal import remove_model, removal_words

        if item is None:
            return False
        is_link = item.path in {p.expanduser().resolve() for p in self.settings.extra_model_paths}
        if item.linked and not is_link:
            self._report(f"{item.name} is in a linked folder; Studio does not delete other tools' files. Unlink "
                         "the folder under Linked Folders instead.", error=True)
            return False
        try:  # a link in the models folder is removed as a link; files outside it are never deleted
            question, done = (f"Unlink {item.path}? Its files are untouched.",
                              f"Unlinked {item.path}; its files are untouched.") if is_link \
                else removal_words(item, self.settings.models_dir)
        except StudioError as exc:
            self._report(str(exc), error=True)
            return False
        if not await self.confirmed("Unlink Folder" if is_link else "Remove Model", question,
                                    "Unlink" if is_link else "Remove"):
            return False
        # Closing the window cancels this task, not the removal in its thread: the links are updated and the change
        # told when the removal ends (an unlinked folder stayed in the settings, and a removed model in the picker).
        self._busy(f"{'Unlinking' if is_link else 'Removing'} {item.name}…")  # no import, link or removal meanwhile
        links = list(self.settings.extra_model_paths)
        removal = asyncio.ensure_future(asyncio.to_thread(remove_model, str(item.path), self.settings.models_dir,
                                                          links))
        # Before shield's own callback: the links are set when this task goes on.
        removal.add_done_callback(lambda ended: self._removal_ended(links, ended))
        try:
            await asyncio.shield(removal)
        except (StudioError, OSError) as exc:
            self._report(str(exc), error=True)
            return False
        await self._changed()
        self._report(done)
        return True

    def _removal_ended(self, links_before: list[Path], removal: asyncio.Future[tuple[object, list[Path]]]) -> None:
        """Apply the removal's own change to the links as they are now: a folder linked or unlinked meanwhile (from
        another window's settings, say) stays as it is, not undone from the list read when the removal began."""
        if removal.cancelled():
            return
        if (exc := removal.exception()) is not None:
            # Said by remove while the window is open; once it is closed, the main window says it.
            if self.closed and self.on_change_after_close is not None and isinstance(exc, (StudioError, OSError)):
                self.on_change_after_close(str(exc))
            return
        _, links_after = removal.result()
        unlinked = set(links_before) - set(links_after)
        self.settings.extra_model_paths = [p for p in self.settings.extra_model_paths if p not in unlinked]
        self.change_unseen = True
        if self.closed and self.on_change_after_close is not None:
            self.on_change_after_close("")

    async def _changed(self) -> None:
        self.change_unseen = True
        await self.reload(notify=True)


def _scan(models_dir: Path, linked: list[Path]) -> tuple[list[LibraryItem], list[UnfinishedDownload]]:
    from studio.services.download_folders import STAGING
    from studio.services.unfinished_downloads import delete_leftovers, unfinished_downloads

    delete_leftovers(models_dir.expanduser() / STAGING)  # what a Remove made here left half-deleted (Studio stopped)
    return scan_library(models_dir, linked), unfinished_downloads(models_dir)


class _Row(QTreeWidgetItem):
    """Sorts names without regard to case and sizes by bytes, not by their text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        if column == 2:
            return (self.data(2, Qt.ItemDataRole.UserRole) or 0) < (other.data(2, Qt.ItemDataRole.UserRole) or 0)
        return self.text(column).lower() < other.text(column).lower()
