"""The window's post-processing and plugin features: the Filters menu (Studio's own filters and plugins'),
the post-processing chain, Compare with Before, Manage Plugins…, and keeping the generator picker in step
with what is enabled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMenu

from studio.core.errors import StudioError
from studio.core.hires import BUILT_IN_UPSCALERS
from studio.core.parameters import validate_settings
from studio.core.paths import resources_dir
from studio.core.requests import PostProcessRequest, PostStep
from studio.core.settings_sections import PostStepSetting
from studio.plugin_host.host import FAILED
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution
from studio.ui.actions import make_action
from studio.ui.chain_step_pictures import ChainStepPictures
from studio.ui.mnemonics import mnemonic, with_mnemonic
from studio.ui.parameter_pictures import ImageSource
from studio.ui.post_process_dialog import PostProcessDialog

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow

NO_CANVAS_TIP = "The canvas is empty: open or generate a picture to filter (the chain can be set up meanwhile)."


class PluginActions(ChainStepPictures, QObject):
    plugins_changed = Signal()  # from any thread (a plugin switched off on the engine thread): queued to Qt's

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.host = window.service.plugins
        self.manage = make_action(window, "Manage &Plugins…", "plugin", None, self.open_dialog,
                                  "Install, enable and remove plugins")
        self.manage.setEnabled(self.host is not None)
        self.chain_action = make_action(window, "Post-processing &Chain…", "filter", None, self.open_chain,
                                        "Filters applied to every new picture, in order")
        self.compare = make_action(window, "Compare with &Before", None, "\\", self._compare_toggled,
                                   "Show the picture as it was before the last change (press again to go back)")
        self.compare.setCheckable(True)
        self.weights_action = make_action(window, "Style &Weights…", "model", None, self.open_weights,
                                          "The weight files neural and fast style transfer need, and importing them")
        self.menu = QMenu("Filte&rs", window)
        self.menu.setToolTipsVisible(True)  # why an entry is off
        self.menu.aboutToShow.connect(self._catch_up_off_thread)
        self.dialog: QDialog | None = None
        self._filter_actions: list[tuple[QAction, str]] = []  # each filter's entry and its own tooltip
        self._unstored: dict[int, tuple[PostStepSetting, dict[str, Any]]] = {}  # (see ChainStepPictures)
        self.edit_dialog = lambda dialog: dialog.exec() == QDialog.DialogCode.Accepted  # tests answer instead
        self._state_notice = ""  # the damaged-list notice shown, while it stands (see say_state_notice)
        self._gone_sentence = ""  # what was said when the picked generator left the list, while it may still hold
        self.plugins_changed.connect(self.refresh)
        if self.host is not None:
            self.host.on_change = self.plugins_changed.emit
        window.document.add_listener(self._document_changed)
        self.refresh()

    def catch_up(self) -> bool:
        """Take in what another Studio changed (``studio plugins install``/``disable`` beside the window): looked at
        when the Plugins dialog opens and before a plugin job (Generate, a filter), so the window lists, and its
        next job runs, what is installed and on now. Returns whether anything changed (the window follows then).

        On this thread: its callers decide at once what runs. Unchanged, that costs a listing of the plugins
        folder; changed (rare: another Studio installed, removed or switched a plugin), the refresh's discovery and
        package scan hold the window 60-290 ms once. The Filters menu does not wait: _catch_up_off_thread."""
        return self.host is not None and self.host.refresh_if_changed()

    def _catch_up_off_thread(self) -> None:
        """As the Filters menu opens: catch_up in a worker thread, so the menu shows at once. A change found there
        is told through plugins_changed (queued to this thread), whose refresh rebuilds the menu."""
        if self.host is not None:
            self.window.actions_.run(asyncio.to_thread(self.host.refresh_if_changed))

    def say_state_notice(self) -> None:
        """A damaged list of enabled plugins was set aside (all are off): a standing notice until the person enables
        or disables a plugin, which writes a new list."""
        if self.host is not None and self.host.state_notice:
            self._state_notice = self.host.state_notice
            self.window.status.add_notice(self._state_notice)

    def refresh(self) -> None:
        if self._state_notice and self.host is not None and not self.host.state_notice:  # acted on
            self.window.status.notices.dismiss(self._state_notice)
            self._state_notice = ""
        registry = self.window.service.registry
        failed: dict[str, str] = {}
        for record in self.host.records if self.host is not None else []:
            # The first copy of an id is the one in use; a later one is ignored (FAILED, "already taken").
            failed.setdefault(record.id, record.error if record.status == FAILED else "")
        panel = self.window.prompt_panel
        picked = panel.selected_generator()
        panel.set_generators(registry.contributions(GENERATOR),
                             {plugin_id: why for plugin_id, why in failed.items() if why})
        if picked is not None and not panel.model_picker.lists_generator(picked.id) \
                and not panel.model_picker.switched_off_refusal():  # (a failed one stays, marked off, and says why)
            self._say_generator_gone(picked)
        elif self._gone_sentence and panel.selected_generator() is not None:  # back on: it no longer holds
            self.window.status.withdraw_message(self._gone_sentence)
            self._gone_sentence = ""
        self._build_menu()

    def _say_generator_gone(self, generator: Contribution) -> None:
        """The picked generator's plugin was switched off or removed: the picker went back to a Stable Diffusion
        model (or to nothing), which the panel's controls now follow; say so, or the change passes unseen."""
        host = self.host
        # (an uninstall switches the plugin off first: that change is told while its files are still there)
        kept = host is not None and generator.plugin_id not in host.uninstalling and \
            any(r.id == generator.plugin_id for r in host.records)
        gone = "switched off" if kept else "removed"
        model = self.window.prompt_panel.model_combo.currentText() if self.window.prompt_panel.selected_model() else ""
        then = (f"{model} (Stable Diffusion) is picked in its place." if model else
                "choose a model in the list above, or add one in the Model Library.")
        self._gone_sentence = (f"The plugin {generator.owner} was {gone}, so its generator {generator.title} left "
                               f"the model list; {then}")
        self.window.status.set_message(self._gone_sentence)

    def _processors(self) -> list[Contribution]:
        """Studio's own first, in their declared order, then plugins' by title."""
        processors = self.window.service.registry.contributions(POSTPROCESSOR)
        return [c for c in processors if c.builtin] + sorted((c for c in processors if not c.builtin),
                                                             key=lambda c: c.title.lower())

    def _build_menu(self) -> None:
        menu = self.menu
        menu.clear()
        processors = self._processors()
        self._filter_actions = []
        taken = {mnemonic(a.text()) for a in (self.chain_action, self.compare, self.weights_action, self.manage)}
        for contribution in processors:
            if not contribution.builtin and contribution is next(c for c in processors if not c.builtin):
                menu.addSection("From plugins")
            action = menu.addAction(with_mnemonic(f"{contribution.title}…", taken),
                                    lambda c=contribution: self.open_processor(c))
            self._filter_actions.append((action, contribution.description))
        self._show_canvas_state()
        menu.addSeparator()
        chain = self.window.settings.generation.post
        self.chain_action.setText(f"Post-processing &Chain… ({len(chain)})" if chain else "Post-processing &Chain…")
        for action in (self.chain_action, self.compare, None, self.weights_action, self.manage):
            menu.addSeparator() if action is None else menu.addAction(action)

    # -- images ------------------------------------------------------------------------------------
    def _installed_upscalers(self) -> list[tuple[str, str]]:
        """The upscaler models the library found, as the Hires. fix list has them after its built-in upscalers."""
        combo = self.window.prompt_panel.hires_box.upscaler_combo
        return [(combo.itemText(i), combo.itemData(i)) for i in range(len(BUILT_IN_UPSCALERS), combo.count())]

    def image_sources(self) -> list[ImageSource]:
        return [("Canvas picture", self._canvas_picture),
                ("Gallery selection", self._gallery_picture)]

    def _canvas_picture(self) -> Image.Image | None:
        """The picture itself, not copied here (20-40 ms of this thread at 4096²): the document never changes a
        picture in place, and a plugin gets its own copy where the job reads its pictures (ImageParam.check)."""
        return self.window.document.image

    def _gallery_picture(self) -> Path | None:
        """The selected picture's file, read later off this thread (a 4096² PNG took it 0.7 s)."""
        entry = self.window.gallery.selected_entry()
        return Path(entry.image_path) if entry is not None and entry.image_path else None

    # -- running a filter --------------------------------------------------------------------------
    def open_processor(self, contribution: Contribution) -> None:
        settings = self.window.settings
        in_chain = next((s for s in settings.generation.post if s.processor == contribution.id), None)
        values = dict(self._params(in_chain) if in_chain else settings.filter_params.get(contribution.id, {}))
        if self._takes_sd_model(contribution) and not values.get("model"):
            values["model"] = self.window.prompt_panel.selected_model()  # restyle: the model in use
        dialog = PostProcessDialog(contribution, values, strength=in_chain.strength if in_chain else 1.0,
                                   after_each=in_chain is not None, mask_available=self._mask() is not None,
                                   image_sources=self.image_sources(), upscalers=self._installed_upscalers(),
                                   parent=self.window)
        try:
            if not self.edit_dialog(dialog):
                return
            try:
                values = dialog.form.choices()  # a picture file is read by the job, off this thread
            except StudioError as exc:
                self.window.status.set_message(str(exc), error=True)
                return
            self.apply(contribution, values, after_each=dialog.after_each.isChecked(), strength=dialog.strength,
                       masked=dialog.masked.isChecked(), storable=dialog.form.storable_values(), step=in_chain)
        finally:
            dialog.deleteLater()  # a child of the window: it would stay, hidden, for the whole session

    def _takes_sd_model(self, contribution: Contribution) -> bool:
        """Whether the filter's "model" is a Stable Diffusion model (Restyle runs Studio's generator). Another
        filter's "model" is something else (Upscale's: an upscaler file), and the picked SD model in it failed."""
        return any(p.name == "model" for p in contribution.parameters) and \
            self.window.service.registry.runs_generator(POSTPROCESSOR, contribution.id)

    def _mask(self) -> Image.Image | None:
        return self.window.current_mask_image()

    def apply(self, contribution: Contribution, values: dict, after_each: bool = False, strength: float = 1.0,
              masked: bool = False, storable: dict | None = None, step: PostStepSetting | None = None) -> int | None:
        """Run the filter on the canvas picture as a job (undoable like any result); remember the settings
        and whether it also runs after each generation. ``step``: the chain step the settings were opened from
        (by default the chain's first step of this filter), the only one replaced or removed: the chain may hold
        the filter more than once. Returns the job id."""
        settings = self.window.settings
        self.catch_up()
        if not contribution.builtin and not self.window.service.registry.has(POSTPROCESSOR, contribution.id):
            # (a form opened before it was switched off, here or outside the window, still offers it)
            self.window.status.set_message(f"{contribution.title} did not run: its plugin {contribution.owner} was "
                                           "switched off or removed; the picture is unchanged.", error=True)
            return None
        try:  # before anything is kept: a value no job can run with would block every Generate from the chain
            validate_settings(contribution.parameters, values, contribution.title)
        except StudioError as exc:
            self.window.status.set_message(str(exc), error=True)
            return None
        settings.filter_params[contribution.id] = values if storable is None else storable
        chain = settings.generation.post
        if step is None:
            step = next((s for s in chain if s.processor == contribution.id), None)
        position = next((i for i, s in enumerate(chain) if s is step), None)
        if position is not None:
            del chain[position]
        else:
            position = len(chain)
        if after_each:  # it keeps its place in the chain, or joins at the end
            chain.insert(position, self._step(contribution.id, values, strength))
        self.window.save_settings_soon()
        self._build_menu()
        image = self.window.document.image
        if image is None:
            self.window.status.set_message("The canvas is empty; open or generate a picture to filter.", error=True)
            return None
        try:
            return self.window.service.submit(PostProcessRequest(
                contribution.id, image, _files_named(values), self.window.document.recipe, strength=strength,
                mask=self._mask() if masked else None))
        except StudioError as exc:
            self.window.status.set_message(str(exc), error=True)
            return None

    def post_steps(self) -> tuple[PostStep, ...]:
        """The after-each-generation chain, for the next request (steps of plugins now off are skipped)."""
        registry = self.window.service.registry
        return tuple(PostStep(s.processor, _files_named(self._params(s)), s.strength)
                     for s in self.window.settings.generation.post if registry.has(POSTPROCESSOR, s.processor))

    def open_chain(self) -> None:
        from studio.ui.post_chain_dialog import PostChainDialog

        steps = [PostStepSetting(processor=s.processor, params=self._params(s), strength=s.strength)
                 for s in self.window.settings.generation.post]
        dialog = PostChainDialog(steps, self._processors(), self.image_sources, self.window,
                                 self._installed_upscalers)
        dialog.edit_step = self.edit_dialog
        try:
            if self.edit_dialog(dialog):
                self.set_chain(dialog.steps)
        finally:
            dialog.deleteLater()  # its step dialogs with it

    def set_chain(self, steps: list[PostStepSetting]) -> None:
        self.window.settings.generation.post = [self._step(s.processor, s.params, s.strength) for s in steps]
        self.window.save_settings_soon()
        self._build_menu()

    # -- compare -----------------------------------------------------------------------------------
    def _compare_toggled(self, on: bool) -> None:
        canvas, document = self.window.canvas, self.window.document
        before = document.before_last_step() if on else None
        refusal = "There is no earlier picture to compare with."
        if before is not None and before[1] is None and document.image is not None \
                and before[0].size != document.image.size:  # extended or scaled: no pixel is where it was
            refusal = (f"The picture before the last change was {before[0].width}x{before[0].height}; compare shows "
                       "pictures of the same size.")
            before = None
        if before is None:
            self.compare.setChecked(False)
            canvas.clear_preview()
            if on:
                self.window.status.set_message(refusal)
            return
        region, box = before  # only the region that changed: a 4096² picture's whole copy held the window 150 ms
        canvas.show_preview(region, region.width, region.height, box)
        self.window.status.set_message("Showing the picture before the last change; press \\ again to go back.")

    def _show_canvas_state(self) -> None:
        """Filters work on the canvas picture: with none, their entries are off and say why (the form, accepted,
        only then said the canvas was empty)."""
        empty = self.window.document.image is None
        for action, description in self._filter_actions:
            action.setEnabled(not empty)
            action.setToolTip(NO_CANVAS_TIP if empty else description)

    def _document_changed(self, _change: object) -> None:
        if self._filter_actions and self._filter_actions[0][0].isEnabled() == (self.window.document.image is None):
            self._show_canvas_state()
        if self.compare.isChecked():
            self.compare.setChecked(False)
            self.window.canvas.clear_preview()

    def open_weights(self) -> None:
        from studio.ui.style_weights_dialog import StyleWeightsDialog

        dialog = StyleWeightsDialog(self.window.service.env, self.window)
        dialog.finished.connect(lambda _: dialog.deleteLater())
        dialog.open()
        self.weights_dialog = dialog

    # -- plugins dialog ----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        from studio.ui.plugins_dialog import PluginsDialog

        if self.host is None:
            return
        self.catch_up()
        start = resources_dir().parent / "plugins"
        dialog = PluginsDialog(self.host, self.window.settings.plugin_index, start if start.is_dir() else None,
                               self.window)
        dialog.jobs_of = self.jobs_of
        dialog.cancel_job = self.window.service.cancel
        dialog.finished.connect(lambda _: self._dialog_closed(dialog))
        self.dialog = dialog
        dialog.open()  # window-modal, and the asyncio loop keeps running for installs

    def jobs_of(self, plugin_id: str) -> list[tuple[int, str, str]]:
        """The live jobs that run the plugin's code, each as (job id, what it is, "running" or "waiting")."""
        registry = self.window.service.registry

        def its(kind: str, id: str) -> bool:
            return registry.has(kind, id) and registry.get(kind, id).plugin_id == plugin_id

        found = []
        for job in list(self.window.service.jobs.values()):
            request = job.request
            if isinstance(request, PostProcessRequest):
                title = f"Filter: {registry.title(POSTPROCESSOR, request.processor)}" \
                    if its(POSTPROCESSOR, request.processor) else ""
            elif its(GENERATOR, request.generator):
                title = f"Generate with {registry.title(GENERATOR, request.generator)}"
            else:  # a generation whose after-each chain runs one of its filters
                step = next((s.processor for s in request.post if its(POSTPROCESSOR, s.processor)), None)
                title = f"Generate, then {registry.title(POSTPROCESSOR, step)}" if step else ""
            if title:
                found.append((job.id, title, "running" if job.state == "running" else "waiting"))
        return found

    def _dialog_closed(self, dialog: QDialog) -> None:
        if dialog.index_url != self.window.settings.plugin_index:
            self.window.settings.plugin_index = dialog.index_url
            self.window.persist_settings()
        self.dialog = None
        dialog.deleteLater()


def _files_named(values: dict[str, Any]) -> dict[str, Any]:
    """Values for a job: a picture file chosen in a form (a Path) by its name, which the job reads on the engine
    thread (plugin_jobs.load_pictures)."""
    return {name: str(value) if isinstance(value, Path) else value for name, value in values.items()}


