"""The window's plugin features: Manage Plugins…, the Filters menu (post-processors), and keeping the
generator picker in step with what is enabled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.paths import resources_dir
from studio.core.requests import PostProcessRequest, PostStep
from studio.core.settings import PostStepSetting
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution
from studio.ui.actions import make_action
from studio.ui.parameter_form import ParameterForm

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


class PostProcessDialog(QDialog):
    """A post-processor's settings, and whether it also runs after each generation."""

    def __init__(self, contribution: Contribution, values: dict, after_each: bool, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle(contribution.title)
        layout = QVBoxLayout(self)
        self.about = QLabel(f"{contribution.description}\nFrom {contribution.owner}.".strip())
        self.about.setWordWrap(True)
        self.about.setObjectName("hintLabel")
        layout.addWidget(self.about)
        self.form = ParameterForm(contribution.parameters, lambda: parent.document.image)
        self.form.set_values(values)
        layout.addWidget(self.form)
        self.after_each = QCheckBox("Also apply after each generation")
        self.after_each.setChecked(after_each)
        layout.addWidget(self.after_each)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply to Canvas")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class PluginActions(QObject):
    plugins_changed = Signal()  # from any thread (a plugin switched off on the engine thread): queued to Qt's

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.host = window.service.plugins
        self.manage = make_action(window, "Manage &Plugins…", "plugin", None, self.open_dialog,
                                  "Install, enable and remove plugins")
        self.manage.setEnabled(self.host is not None)
        self.menu = QMenu("F&ilters", window)
        self.dialog: QDialog | None = None
        self.plugins_changed.connect(self.refresh)
        if self.host is not None:
            self.host.on_change = self.plugins_changed.emit
        self.refresh()

    def refresh(self) -> None:
        registry = self.window.service.registry
        self.window.prompt_panel.set_generators(registry.contributions(GENERATOR))
        self._build_menu(registry.contributions(POSTPROCESSOR))

    def _build_menu(self, processors: list[Contribution]) -> None:
        menu = self.menu
        menu.clear()
        for contribution in sorted(processors, key=lambda c: c.title.lower()):
            action = menu.addAction(f"{contribution.title}…", lambda c=contribution: self.open_processor(c))
            action.setToolTip(contribution.description)
        if not processors:
            menu.addAction("No filters: enable a plugin that has some").setEnabled(False)
        menu.addSeparator()
        chain = self.window.settings.generation.post
        after = menu.addMenu("After Each Generation")
        for step in chain:
            title = next((c.title for c in processors if c.id == step.processor), f"{step.processor} (not enabled)")
            item = after.addAction(title, lambda s=step: self.remove_from_chain(s.processor))
            item.setToolTip("Click to stop applying it")
        if not chain:
            after.addAction("Nothing: choose a filter and tick “Also apply after each generation”").setEnabled(False)
        menu.addAction(self.manage)

    # -- post-processing -----------------------------------------------------------------------
    def open_processor(self, contribution: Contribution) -> None:
        generation = self.window.settings.generation
        in_chain = next((s for s in generation.post if s.processor == contribution.id), None)
        values = in_chain.params if in_chain else self.window.settings.filter_params.get(contribution.id, {})
        dialog = PostProcessDialog(contribution, values, in_chain is not None, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.apply(contribution, dialog.form.values(), dialog.after_each.isChecked(),
                   dialog.form.storable_values())

    def apply(self, contribution: Contribution, values: dict, after_each: bool, storable: dict | None = None) -> None:
        """Run the filter on the canvas picture as a job; remember the values and the after-each choice."""
        generation = self.window.settings.generation
        storable = values if storable is None else storable
        self.window.settings.filter_params[contribution.id] = storable
        generation.post = [s for s in generation.post if s.processor != contribution.id]
        if after_each:
            generation.post.append(PostStepSetting(processor=contribution.id, params=storable))
        self.window.persist_settings()
        self._build_menu(self.window.service.registry.contributions(POSTPROCESSOR))
        image = self.window.document.image
        if image is None:
            self.window.status.set_message("The canvas is empty; open or generate a picture to filter.", error=True)
            return
        try:
            self.window.service.submit(PostProcessRequest(contribution.id, image, values,
                                                          self.window.document.recipe))
        except StudioError as exc:
            self.window.status.set_message(str(exc), error=True)

    def remove_from_chain(self, processor: str) -> None:
        generation = self.window.settings.generation
        generation.post = [s for s in generation.post if s.processor != processor]
        self.window.persist_settings()
        self._build_menu(self.window.service.registry.contributions(POSTPROCESSOR))

    def post_steps(self) -> tuple[PostStep, ...]:
        """The after-each-generation chain, for the next request (steps of plugins now off are skipped)."""
        registry = self.window.service.registry
        return tuple(PostStep(s.processor, s.params) for s in self.window.settings.generation.post
                     if registry.has(POSTPROCESSOR, s.processor))

    # -- dialog --------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        from studio.ui.plugins_dialog import PluginsDialog

        if self.host is None:
            return
        start = resources_dir().parent / "plugins"
        dialog = PluginsDialog(self.host, self.window.settings.plugin_index, start if start.is_dir() else None,
                               self.window)
        dialog.finished.connect(lambda _: self._dialog_closed(dialog))
        self.dialog = dialog
        dialog.open()  # window-modal, and the asyncio loop keeps running for installs

    def _dialog_closed(self, dialog: QDialog) -> None:
        if dialog.index_url != self.window.settings.plugin_index:
            self.window.settings.plugin_index = dialog.index_url
            self.window.persist_settings()
        self.dialog = None
        dialog.deleteLater()
