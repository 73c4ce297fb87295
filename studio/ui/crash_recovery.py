"""Offering back the unsaved work of an earlier Studio that stopped without closing (a crash, a power cut) or was
closed with its work kept, from its autosave: the latest picture and mask onto the canvas if the person says so, else
kept as pictures like any older ones. A plugin that was running when it stopped is named, and can be switched off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

from studio.core.document_io import SavedDocument
from studio.core.errors import StudioError
from studio.services.autosave import (
    RECOVERED_FOLDER,
    DamagedAutosave,
    RunningPlugin,
    discard,
    keep_as_pictures,
    kept_at_close,
    scan_autosaves,
    take_running_jobs,
    take_running_plugins,
)
from studio.ui.modal import modal

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

RecoveryChoice = Callable[[SavedDocument], bool]  # asked whether to restore this autosave: True to restore
SwitchOffChoice = Callable[[RunningPlugin], bool]  # asked whether to switch off a plugin running at a crash
JOB_LOST = "A generation was running when Studio stopped"  # said with what to do


async def offer_recovery(window: MainWindow, choose: RecoveryChoice,
                         switch_off: SwitchOffChoice | None = None) -> bool:
    """If an earlier Studio died with unsaved work, offer it back; True when restored. The autosaves are read,
    and the picture and mask made ready for display, in worker threads: on this thread a 4096x4096 one held
    the window 0.6 s before the question came, and as long again once it was answered. A plugin that was running
    when it died is named first (``switch_off`` asks whether to switch it off)."""
    root = window.data_dir / "autosave"
    for running in await asyncio.to_thread(take_running_plugins, root):
        await _offer_switch_off(window, running, switch_off)
    job_lost = await asyncio.to_thread(take_running_jobs, root) > 0
    folder = window.settings.outputs_dir / RECOVERED_FOLDER
    found, damaged = await asyncio.to_thread(scan_autosaves, root, folder)
    for aside in damaged:  # said once: a damaged autosave is moved out of the way, and where to is said
        window.status.add_notice(damaged_sentence(aside))
    if not found:
        if job_lost:
            window.status.add_notice(f"{JOB_LOST}; it did not finish.")
        return False
    latest, older = found[0], found[1:]
    restored = await modal(lambda: choose(latest))
    message = ""
    if restored:
        await window.canvas.convert_ahead(latest.image, latest.mask)
        label = "Restore kept work" if kept_at_close(latest) else "Restore after a crash"
        window.document.replace_all(label, latest.image, latest.mask, latest.recipe)
        message = restored_sentence(latest) + (f" {JOB_LOST}; press Generate to run it again." if job_lost else "")
    else:  # declined, not lost: kept as pictures the way older autosaves are, the autosave goes once written
        declined = await asyncio.to_thread(keep_as_pictures, [latest], folder)
        message = (f"Kept the unrestored picture{' and mask' if latest.mask.any() else ''} as {declined[0].name} "
                   f"in {folder}." if declined else
                   f"The unrestored picture could not be written into {folder}; it is offered again next start.")
        message += f" {JOB_LOST}; it did not finish." if job_lost else ""
    if older:  # more than one Studio stopped (a power cut): only one picture fits the canvas, none is lost
        kept = await asyncio.to_thread(keep_as_pictures, older, folder)
        if kept:
            message += (f" {len(kept)} older unsaved picture{'s' if len(kept) > 1 else ''} from Studios that "
                        f"stopped {'were' if len(kept) > 1 else 'was'} kept in {folder}.")
    if message:
        window.status.set_message(message.strip())
    # Restored work is on disk again, in this session's autosave, before the old one goes.
    if restored and window.autosaver is not None and await window.autosaver.save_now():
        await asyncio.to_thread(discard, latest)
    return restored


async def _offer_switch_off(window: MainWindow, running: RunningPlugin, switch_off: SwitchOffChoice | None) -> None:
    host = window.service.plugins
    if host is None or running.plugin_id not in host.enabled_ids():  # already off (or gone): nothing to ask
        window.status.add_notice(f"{crashed_sentence(running)} It is off now.")
        return
    if switch_off is None:  # nobody to ask: still named, as the docstring of offer_recovery promises
        window.status.add_notice(crashed_sentence(running))
        return
    if not await modal(lambda: switch_off(running)):
        return
    try:
        host.set_enabled(running.plugin_id, False)
    except StudioError as exc:
        window.status.add_notice(f"{running.name} could not be switched off: {exc}")
        return
    window.status.add_notice(f"Switched off the plugin {running.name}; turn it on again in Plugins if you want it.")


def crashed_sentence(running: RunningPlugin) -> str:
    return (f"Studio stopped while the plugin {running.name} was running its {running.title}; it may have caused "
            "this.")


def ask_to_switch_off(parent: QWidget, running: RunningPlugin) -> bool:
    """"Studio stopped while the plugin X was running its Y; it may have caused this. Switch it off?": True to."""
    box = QMessageBox(QMessageBox.Icon.Warning, "A Plugin May Have Stopped Studio",
                      f"{crashed_sentence(running)} Switch it off?", QMessageBox.StandardButton.NoButton, parent)
    off = box.addButton("Switch It Off", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Keep It On", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(off)
    try:
        box.exec()
        return box.clickedButton() is off
    finally:
        box.deleteLater()  # a child of the window: it would stay for the whole session


def restored_sentence(saved: SavedDocument) -> str:
    """"Restored the picture and mask autosaved at 14:05 on 07 Dec, before Studio stopped.": when the work is from,
    and only what it holds (no mask named where none was painted)."""
    what = _what(saved)
    if kept_at_close(saved):
        return f"Restored the {what} kept when Studio was closed (autosaved at {_when(saved)})."
    return f"Restored the {what} autosaved at {_when(saved)}, before Studio stopped."


def _what(saved: SavedDocument) -> str:
    return "picture and mask" if saved.mask.any() else "picture"


def _when(saved: SavedDocument) -> str:
    return datetime.fromtimestamp(saved.saved_at).strftime("%H:%M on %d %b")


def damaged_sentence(aside: DamagedAutosave) -> str:
    said = ("The autosave of an earlier Studio's unsaved work could not be read (its files are damaged or "
            "incomplete), so it could not be offered back;")
    if aside.moved:
        return f"{said} its files are now in {aside.folder}."
    return f"{said} its files are still in {aside.folder} (they could not be moved aside)."


def ask_to_restore(parent: QWidget, saved: SavedDocument) -> bool:
    when = _when(saved)
    why = ("You closed Studio with unsaved work on the canvas and kept it." if kept_at_close(saved) else
           "Studio did not close properly last time.")
    box = QMessageBox(QMessageBox.Icon.Question, "Restore Your Work?",
                      f"{why} Restore the {_what(saved)} it autosaved at {when} "
                      f"({saved.image.width}×{saved.image.height})? If not, it is kept as a picture in "
                      f"“{RECOVERED_FOLDER}” in your outputs folder and Studio starts with an empty canvas.",
                      QMessageBox.StandardButton.NoButton, parent)
    # Not restoring deletes nothing (see restore_autosave): the buttons say so instead of Yes/No.
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    box.setEscapeButton(box.addButton("Keep in Recovered Folder", QMessageBox.ButtonRole.RejectRole))
    box.setDefaultButton(restore)
    try:
        box.exec()
        return box.clickedButton() is restore
    finally:
        box.deleteLater()
