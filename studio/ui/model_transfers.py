"""Bringing models into the Model Library window: importing a file or folder (copied, or a pickle checkpoint
converted to safetensors first) and downloading from the hub, each off the UI thread with its progress and Cancel;
a download stopped half-way is listed to resume, or its partial files deleted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QProgressBar, QPushButton

from studio.core.errors import JobCancelledError, StudioError
from studio.core.model_library import format_size
from studio.core.settings import Settings
from studio.ui.task_dialog import TaskDialog

if TYPE_CHECKING:  # services are imported when an import runs
    from studio.services.model_imports import ImportResult
    from studio.services.unfinished_downloads import UnfinishedDownload


class ModelTransfers(TaskDialog):
    """The import and download part of ModelsDialog, which sets these up and lists the library."""

    settings: Settings
    hash_cache: Path
    unfinished: list[UnfinishedDownload]
    _cancel: threading.Event  # set by Cancel (and by closing the window)
    progress: QProgressBar
    cancel_button: QPushButton
    reload: Callable[..., Awaitable[None]]  # scan and list the library again
    _changed: Callable[[], Awaitable[None]]  # reload, and tell the main window
    _selected_unfinished: Callable[[], UnfinishedDownload | None]

    def _busy(self, text: str, progress: bool = False) -> None:
        super()._busy(text)
        self.progress.setVisible(progress)
        self.cancel_button.setVisible(progress)

    def _choose_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import a Model", "",
                                              "Model weights (*.safetensors *.ckpt *.pt *.pth *.bin);;All (*)")
        if name:
            self.start(self.import_path(Path(name)))

    def _choose_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Import a Diffusers Model Folder")
        if name:
            self.start(self.import_path(Path(name)))

    def _choose_download(self) -> None:
        from studio.core.starter_models import STARTER_MODELS

        labels = [f"{m.repo_id} — {m.kind}, {m.size_label}: {m.why}" for m in STARTER_MODELS]
        text, ok = QInputDialog.getItem(self, "Download a Model", "Hugging Face repository (owner/name), or pick a "
                                        "starter model:", labels, 0, True)
        if ok and text.strip():
            self.start(self.download(text.split(" — ")[0].strip()))

    def _loop_callback(self, callback: Callable[..., None]) -> Callable[..., None]:
        loop = asyncio.get_running_loop()
        return lambda *args: loop.call_soon_threadsafe(callback, *args)

    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setMaximum(1000)
        self.progress.setValue(int(done * 1000 / max(total, 1)))
        self.message.setText(text)

    async def import_path(self, path: Path) -> bool:
        from studio.core.weight_files import PICKLE, TORCH_ZIP, sniff_weights_format
        from studio.services.model_conversion import convert_and_import
        from studio.services.model_imports import import_model

        pickle = path.is_file() and await asyncio.to_thread(sniff_weights_format, path) in (PICKLE, TORCH_ZIP)
        if pickle and await self.confirmed(
                "Convert Checkpoint", f"{path.name} is a pickle checkpoint, which can run code when loaded the usual "
                "way. Studio can convert it to safetensors, reading only tensors and plain containers (torch.load "
                "with weights_only=True; anything else is refused without running it), and import that. Convert?"):
            self._busy(f"Converting {path.name} to safetensors…")
            return await self._imported("Converted and imported", lambda: convert_and_import(
                path, self.settings.models_dir, hash_cache=self.hash_cache))
        self._cancel.clear()
        self._busy(f"Checking and copying {path.name}…", progress=True)
        update = self._loop_callback(lambda done, total: self._show_progress(
            done, total, f"Copying {path.name}: {format_size(done)} of {format_size(total)}"))
        return await self._imported("Imported", lambda: import_model(
            path, self.settings.models_dir, hash_cache=self.hash_cache, progress=update,
            cancelled=self._cancel.is_set, linked=self.settings.extra_model_paths))

    async def _imported(self, done: str, work: Callable[[], ImportResult]) -> bool:
        """Run an import off the UI thread and say how it went; True when a file was copied in."""
        try:
            result = await asyncio.to_thread(work)
        except JobCancelledError as exc:
            self._report(f"{exc} Nothing was added to the library.")
            return False
        except StudioError as exc:  # with what a conversion left out, where it got that far (its notes)
            self._report(" ".join([str(exc), *getattr(exc, "__notes__", ())]), error=True)
            return False
        await self._changed()
        if result.unrecorded:
            self._report(result.unrecorded, error=True)
        elif result.copied:  # and what it should know of it: what a conversion left out
            self._report(" ".join([f"{done} {result.item.name} ({result.item.label}).", *result.note.splitlines()]))
        else:
            self._report(" ".join(result.note.splitlines()))
        return result.copied

    async def download(self, repo_id: str) -> bool:
        from studio.services.hub_connection import HubUnavailable
        from studio.services.model_downloads import download_model, plan_download

        self._cancel.clear()
        self._busy(f"Asking the hub about {repo_id}…")
        try:
            plan = await asyncio.to_thread(plan_download, repo_id, self.settings.models_dir)
            if not await self.confirmed("Download Model", f"Download {repo_id}: {len(plan.files)} files, "
                                        f"{format_size(plan.total_bytes - plan.already_bytes)} to fetch, into "
                                        f"{plan.destination}?"):
                self._report("Nothing was downloaded.")
                return False
            self._busy(f"Downloading {repo_id}…", progress=True)
            update = self._loop_callback(lambda event: self._show_progress(
                event.done_bytes, event.total_bytes, f"Downloading {repo_id}: {format_size(event.done_bytes)} of "
                f"{format_size(event.total_bytes)} ({event.files_done}/{event.files_total} files)"))
            notes: list[str] = []
            place = await asyncio.to_thread(download_model, plan, progress=update, cancelled=self._cancel.is_set,
                                            hash_cache=self.hash_cache, notes=notes)
        except JobCancelledError:
            await self.reload()  # what came is listed as an unfinished download
            kept = any(download.repo_id == repo_id for download in self.unfinished)
            self._report(f"Stopped downloading {repo_id}; " + (
                "select it in the list and Resume to go on where it stopped, or Remove its partial files." if kept
                else "download it again to resume where it stopped."))
            return False
        except StudioError as exc:  # offline: this window's way to a model the person already has
            await self.reload()
            self._report(f"{exc} Use Import to add a file you already have." if isinstance(exc, HubUnavailable)
                         else str(exc), error=True)
            return False
        await self._changed()
        self._report(" ".join([f"Downloaded {repo_id} to {place}.", *notes]))
        return True

    def _resume(self) -> None:
        if (unfinished := self._selected_unfinished()) is not None:
            self.start(self.download(unfinished.repo_id))  # a download into its folder resumes what is there

    async def delete_unfinished(self, download: UnfinishedDownload) -> bool:
        from studio.services.unfinished_downloads import delete_unfinished

        if not await self.confirmed("Delete Unfinished Download", f"Delete the unfinished download of "
                                    f"{download.repo_id} ({download.progress}) in {download.folder}?", "Delete"):
            return False
        try:
            await asyncio.to_thread(delete_unfinished, download, self.settings.models_dir)
        except StudioError as exc:
            self._report(str(exc), error=True)
            return False
        await self.reload()
        self._report(f"Deleted the unfinished download of {download.repo_id}.")
        return True
