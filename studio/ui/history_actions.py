"""The window's side of the history: the gallery's reuse actions, prompt recall and pictures dropped on
the prompt boxes (reading those: dropped_picture; prompt styles and presets: style_preset_actions). Store and file
work runs off the UI thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox

from studio.core.errors import StudioError, first_line
from studio.core.hires import HiresFix
from studio.core.image_info import recipe_fields, refused_values
from studio.core.images import open_image
from studio.core.inpaint import InpaintOptions
from studio.core.mask import mask_from_image
from studio.core.metadata import LoraRecord
from studio.core.settings_sections import PostStepSetting
from studio.core.style_weights import style_weights_dir
from studio.plugin_host.registry import POSTPROCESSOR, Registry
from studio.services.changed_files import changed_file_warnings, picture_file_warnings
from studio.services.history_reuse import (
    RecordedChain,
    RecordedChoices,
    gone_model,
    recorded_choices,
    request_for_entry,
    usable_chain,
)
from studio.services.history_store import HistoryEntry
from studio.ui.dropped_picture import kept_value, model_notes, read_dropped, source_note
from studio.ui.gallery_model import entry_name
from studio.ui.prompt_panel_values import model_gone
from studio.ui.modal import modal
from studio.ui.style_preset_actions import StylePresetActions

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class HistoryActions(StylePresetActions, QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.gallery = window.gallery
        self.panel = window.prompt_panel
        self._loads = 0  # the newest Load parameters wins: an older one, still reading or hashing, stops or is quiet
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(300)  # a batch of results refreshes the gallery once
        self._reload_timer.timeout.connect(lambda: window.actions_.run(self.gallery.reload()))
        self.gallery.failed.connect(lambda text: window.status.set_message(text, error=True))
        self.gallery.notice.connect(window.status.add_notice)
        self.gallery.said.connect(window.status.set_message)
        self.gallery.load_parameters_requested.connect(lambda e: window.actions_.run(self.load_parameters(e)))
        self.gallery.run_again_requested.connect(lambda e: window.actions_.run(self.run_again(e)))
        self.gallery.use_as_input_requested.connect(lambda e: window.actions_.run(self.use_as_input(e)))
        self.panel.picture_dropped.connect(lambda path: window.actions_.run(self.load_from_picture(path)))
        self._connect_styles_and_presets()

    async def start(self) -> None:
        """Fill the gallery and the prompt box's recall list."""
        store = self.gallery.store
        if store.notice:  # a damaged history set aside, a read-only or a temporary one
            self.window.status.add_notice(store.notice)
        prompts = await asyncio.to_thread(store.recent_prompts)
        self.panel.prompt_edit.set_history(prompts)
        await self.gallery.reload()

    def results_arrived(self) -> None:
        self._reload_timer.start()

    # -- gallery actions ---------------------------------------------------------------------------
    async def load_parameters(self, entry: HistoryEntry) -> None:
        """Every field of the entry into the prompt panel; an img2img/inpaint source back on the canvas. Said at
        once; what its files' check finds (hashing may take seconds) is added when it ends."""
        self._loads += 1
        load = self._loads
        inpaint = entry.params.get("inpaint")
        known = set(InpaintOptions.__dataclass_fields__)
        options = InpaintOptions(**{k: v for k, v in inpaint.items() if k in known}) \
            if isinstance(inpaint, dict) else None
        # Meanwhile, whether its files are still those it was made with (hashing may take seconds).
        checking = asyncio.ensure_future(self._changed_files(entry))
        # (May read the picture's recipe.)
        (loras, vae, lora_records, controls, missing), chain, gone = await asyncio.to_thread(
            _recorded_for_load, entry, self.window.settings.outputs_dir, self.window.service.registry,
            style_weights_dir(self.window.service.env))
        precision = await self._precision_note(entry.params.get("precision") if entry.generator in ("", "diffusers")
                                               else None, "; Run again in the Gallery computes as it was")
        if self._stale(load, checking):
            return
        notes = self.panel.fill(
            prompt=entry.prompt, negative_prompt=entry.negative_prompt, width=entry.width or None,
            height=entry.height or None, steps=entry.steps or None, cfg_scale=entry.cfg_scale, seed=entry.seed,
            scheduler=entry.sampler or None, strength=entry.strength, model_path=None if gone else entry.model_path
            or None, inpaint=options, generator=entry.generator, generator_params=entry.params.get("generator_params"),
            loras=loras, vae=vae, hires=HiresFix.from_record(entry.params.get("hires")) or False)
        if gone:  # the model list, read before it went, still names it: Generate would refuse it
            notes.insert(0, model_gone(self.panel, gone, entry.model_path))
        loaded = f"Loaded the parameters of that picture{self._restore_chain(chain.steps)}."
        notes += chain.notes
        notes += [precision] if precision else []
        notes += self._restore_guides(controls, missing)
        if entry.source_image_path:
            picture = mask = None
            try:
                picture = await asyncio.to_thread(open_image, entry.source_image_path)
                if entry.source_mask_path:
                    source = entry.source_mask_path
                    mask = await asyncio.to_thread(lambda: mask_from_image(open_image(source, keep_mode=True),
                                                                           picture.size))
            except StudioError as exc:
                notes.append(f"Its source picture could not be restored: {exc}")
                picture = None
            if self._stale(load, checking):  # another picture's parameters are in now, and its source if any
                return
            if picture is not None and mask is not None:
                await self.window.actions_.replace_in(picture, mask, "Restore inpaint source")
                self.window.mask_toolbar.show_mask_action.setChecked(True)
            elif picture is not None:
                await self.window.actions_.take_in(picture, "Restore img2img source")
                self.panel.use_canvas_check.setChecked(True)
        elif entry.generator in ("", "diffusers"):  # made from the prompt alone: so is the remake
            shown_mask = self.window.mask_toolbar.show_mask_action
            if self.panel.use_canvas_check.isChecked() or (shown_mask.isChecked() and self.window.document.has_mask):
                self.panel.use_canvas_check.setChecked(False)
                shown_mask.setChecked(False)
                notes.append("It was made from the prompt alone, so the canvas is not its input now (M shows the "
                             "mask again).")
        if self._stale(load, checking):  # a newer load, begun while the source waited for a brush stroke, says so
            return
        loaded = " ".join([loaded, *notes])
        self.window.status.set_message(loaded)
        await self._rename_loras_found_by_hash(lora_records, load)
        warnings = await checking
        if warnings and load == self._loads:  # a newer load's line is not given an older picture's warnings
            self.window.status.set_message(_warned(loaded, warnings))

    def _stale(self, load: int, checking: asyncio.Future[list[str]]) -> bool:
        """Whether Load parameters was asked for again since ``load`` began: that one's files are not checked."""
        if load == self._loads:
            return False
        checking.cancel()
        return True

    async def run_again(self, entry: HistoryEntry) -> None:
        try:
            request = await asyncio.to_thread(request_for_entry, entry, self.window.settings, label=entry_name(entry))
        except StudioError as exc:
            self.window.status.set_message(str(exc), error=True)
            return
        if warnings := await self._changed_files(entry):
            answer = await modal(lambda: QMessageBox.question(
                self.window, "Run Again", " ".join([*warnings, "Run it anyway?"]),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes))
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            self.window.service.submit(request)
        except StudioError as exc:
            self.window.status.set_message(str(exc), error=True)

    async def _changed_files(self, entry: HistoryEntry) -> list[str]:
        """A sentence for each file the entry was made with that is missing or another file now (its checkpoint,
        LoRAs, VAE, ControlNets), hashed in a worker thread."""
        return await self._checked(partial(changed_file_warnings, label=entry_name(entry)), entry)

    async def _checked(self, check: Callable[..., list[str]], *made: object) -> list[str]:
        """``check(*made, models folder, hash cache, linked=the linked folders)`` in a worker thread: hashing may
        take seconds."""
        settings = self.window.settings
        try:
            return await asyncio.to_thread(partial(check, linked=list(settings.extra_model_paths)), *made,
                                           settings.models_dir, self.window.cache_dir / "model-hashes.json")
        except (OSError, StudioError) as exc:  # an unreadable model: the run or the load says what is wrong
            return [f"Studio could not check its files: {first_line(exc)}."]

    async def use_as_input(self, entry: HistoryEntry) -> None:
        if entry.image_path:
            await self.window.actions_.open_path(Path(entry.image_path))

    async def load_from_picture(self, path: Path) -> None:
        """A picture dropped on the prompt panel: its prompt and parameters, from whichever tool made it. Said at
        once; the model, LoRAs, VAE and ControlNets its recipe names with a hash that are other files now are added
        when their check ends, as Load parameters does."""
        self._loads += 1
        load = self._loads
        combo = self.panel.model_combo
        listed = [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]
        try:
            dropped = await asyncio.to_thread(
                read_dropped, path, self.window.settings.outputs_dir, listed, self.window.service.registry,
                style_weights_dir(self.window.service.env), self.window.cache_dir / "model-hashes.json")
        except StudioError as exc:
            if load == self._loads:
                self.window.status.set_message(str(exc), error=True)
            return
        info, model_path = dropped.info, dropped.model_path
        plugin_made = dropped.recipe is not None and dropped.recipe.generator not in ("", "diffusers")
        precision = await self._precision_note(None if plugin_made else info.precision)
        if load != self._loads:  # another picture or entry was loaded while this one was read: it stays
            return
        fields = recipe_fields(info)
        if "prompt" not in fields:
            self.window.status.set_message(
                f"{path.name} carries no prompt Studio can read. {' '.join(info.notes)}".strip(), error=True)
            return
        model_name = fields.pop("model_name", None)
        fields.pop("model_hash", None)
        if dropped.gone:  # the model list, read before it went, still names it: Generate would refuse it
            model_path = None
        recipe = dropped.recipe
        refused = refused_values(info)
        if plugin_made:
            # A plugin generator's picture names it as its model and records no steps or CFG scale (0): its
            # generator with its options is what remakes it, as Load Parameters sets it.
            model_name = None
            for key in ("steps", "cfg_scale", "scheduler"):
                fields.pop(key, None)
                refused.pop(key, None)
            fields |= {"generator": recipe.generator, "generator_params": recipe.params}
        notes = self.panel.fill(model_path=model_path, **fields)
        if dropped.gone:
            notes.insert(0, model_gone(self.panel, dropped.gone, dropped.model_path or ""))
        notes += [f"{why}; kept {kept_value(self.panel, key)}." for key, why in refused.items()]
        notes += source_note(recipe)
        notes += [precision] if precision else []
        notes += self._restore_guides(dropped.controls, dropped.missing)
        notes += model_notes(self.panel, model_name, dropped, model_path, listed)
        # Only Studio records a chain (another tool's picture, or Studio's A1111 text alone, says nothing of it):
        # otherwise the one set up stays.
        chain = self._restore_chain(dropped.chain.steps) if dropped.chain is not None else ""
        notes += dropped.chain.notes if dropped.chain is not None else []
        tool = info.tool or "an unknown tool"
        loaded = " ".join([f"Loaded the parameters of {path.name} (made by {tool}){chain}.", *notes, *info.notes])
        self.window.status.set_message(loaded)
        await self._rename_loras_found_by_hash(
            [LoraRecord(r["name"], r.get("hash", ""), r["weight"]) for r in info.lora_records()], load)
        warnings = await self._checked(picture_file_warnings, path, Path(model_path) if model_path else None)
        if warnings and load == self._loads:
            self.window.status.set_message(_warned(loaded, warnings))

    async def _precision_note(self, recorded: object, rerun: str = "") -> str:
        """On the CPU, where a picture recorded computing in another precision than Generate's now (Speed picks
        bfloat16 or float32): that the remake may differ, and why; ``rerun`` ends the sentence. "" otherwise."""
        if not isinstance(recorded, str) or not recorded or not self.window.models.gpu_menu.on_cpu:
            return ""
        now = await asyncio.to_thread(_cpu_precision, self.window.settings.speed)
        if now == recorded:
            return ""
        return (f"It was computed in {recorded} and Generate computes in {now} on this processor (Settings → GPU "
                f"sets it), so the new picture may differ from it by a grey level or so{rerun}.")

    async def _rename_loras_found_by_hash(self, records: Sequence[LoraRecord], load: int) -> None:
        """The LoRA rows that no name finds but the hash recorded for them does (renamed since the picture was made)
        as those files; hashes the library's LoRAs when it must, in a worker thread. A newer load's rows stay."""
        box = self.panel.lora_box
        renamed = await asyncio.to_thread(box.found_by_hash, records, self.window.cache_dir / "model-hashes.json")
        if renamed and load == self._loads:
            box.rename(renamed)

    def _restore_chain(self, steps: tuple[PostStepSetting, ...]) -> str:
        """The picture's post-processing chain in place of the one set up (none for a picture made without: so is
        the remake); the words that end "Loaded the parameters of that picture" when that changed it."""
        current = [(s.processor, s.params, s.strength) for s in self.window.settings.generation.post]
        if current == [(s.processor, s.params, s.strength) for s in steps]:
            return ""
        self.window.plugin_actions.set_chain(list(steps))
        if not steps:
            return "; the post-processing chain was cleared"
        registry = self.window.service.registry
        return "; the post-processing chain is now " + ", then ".join(
            registry.get(POSTPROCESSOR, s.processor).title if registry.has(POSTPROCESSOR, s.processor)
            else s.processor for s in steps)  # a plugin switched off since the chain was read: its id

    def _restore_guides(self, records: tuple[dict[str, Any], ...], missing: list[str]) -> list[str]:
        """A picture's guides in place of the ones shown (none for a picture made without: so is the remake), and
        what the person must still do for them, in sentences."""
        self.panel.control_box.set_records(records)
        notes = [f"Its control picture {path} is missing; choose another for that guide." for path in missing]
        for number, record in enumerate(records, 1):
            if record.get("module"):  # another tool's preprocessor: the guide's is none now
                which = "Its control guide" if len(records) == 1 else f"Its control guide {number}"
                notes.append(f"{which} was made with the {record['module']} preprocessor, which Studio does not "
                             "have: its picture is used as it is, so give it one made already (a depth map, a pose, "
                             "lines).")
        if any(not r["image"] for r in records):  # AUTOMATIC1111 names its guides but keeps none of their pictures
            notes.append("It names no picture for its control guide; choose one." if len(records) == 1 else
                         "It names no picture for some of its control guides; choose one for each that has none.")
        return notes


def _recorded_for_load(entry: HistoryEntry, outputs: Path, registry: Registry,
                       style_dir: Path) -> tuple[RecordedChoices, RecordedChain, str | None]:
    """What Load parameters sets beyond the entry's plain fields, and the name of its model if that is gone: reads
    the picture's recipe and stats files, so it runs in a worker thread."""
    return recorded_choices(entry, outputs), usable_chain(entry.params.get("post"), registry, style_dir),\
        gone_model(entry)


def _cpu_precision(speed: str) -> str:
    """The precision a CPU job computes in under ``speed`` (imports torch: run it off the window's thread)."""
    from studio.engine.cpu_precision import cpu_dtype
    from studio.engine.device import dtype_name
    from studio.engine.fast_path_choices import options_for

    return dtype_name(cpu_dtype(options_for(speed).enabled))


def _warned(loaded: str, warnings: list[str]) -> str:
    """The status line once the files are checked: the warnings lead it. The fields show what was loaded, and the
    line is cut to the status bar's width (a LoRA's warning after "Loaded the parameters of …" lost its end even in
    a 1440 px window, a second warning all of it)."""
    return " ".join([*warnings, loaded])
