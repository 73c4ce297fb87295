"""The settings of a plugin's generator in the prompt panel: its form, built from its manifest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.plugin_host.registry import Contribution
from studio.ui.parameter_form import ParameterForm
from studio.ui.parameter_pictures import ImageSource
from studio.ui.theme import section_label


class PluginGeneratorBox(QWidget):
    """One form per generator, made when first shown; values are remembered per generator."""

    def __init__(self, image_sources: Callable[[], list[ImageSource]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image_sources = image_sources
        self._forms: dict[str, ParameterForm] = {}
        self._saved: dict[str, dict[str, Any]] = {}
        self.current: Contribution | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(6)
        self.title = section_label("Settings")
        layout.addWidget(self.title)
        self.about = QLabel()
        self.about.setObjectName("hintLabel")
        self.about.setWordWrap(True)
        layout.addWidget(self.about)
        self._holder = QVBoxLayout()
        layout.addLayout(self._holder)

    def show_generator(self, contribution: Contribution) -> None:
        if self.current is not None and self.current.id in self._forms:
            self._forms[self.current.id].hide()
        form = self._forms.get(contribution.id)
        if form is None or form.params != contribution.parameters:  # new, or the plugin was updated
            if form is not None:
                form.deleteLater()
            form = ParameterForm(contribution.parameters, self._image_sources())
            form.set_values(self._saved.get(contribution.id, {}))
            self._forms[contribution.id] = form
            self._holder.addWidget(form)
        form.show()
        self.current = contribution
        self.title.setText(f"{contribution.title} settings".upper())
        version = f" {contribution.plugin_version}" if contribution.plugin_version else ""
        self.about.setText(f"{contribution.description}\nFrom the plugin {contribution.owner}{version}.".strip())

    def form(self) -> ParameterForm | None:
        return self._forms.get(self.current.id) if self.current is not None else None

    def choices(self) -> dict[str, Any]:
        """The shown generator's values with a picture file as its Path, unread (read_pictures reads it, off the
        window's thread); InvalidRequest (one sentence) where a picture parameter has none to take."""
        form = self.form()
        return form.choices() if form is not None else {}

    def remembered(self) -> dict[str, dict[str, Any]]:
        """Every generator's last values (pictures left out), for the settings file."""
        saved = dict(self._saved)
        for generator_id, form in self._forms.items():
            saved[generator_id] = form.storable_values()
        return saved

    def restore(self, saved: dict[str, dict[str, Any]]) -> None:
        self._saved = {k: dict(v) for k, v in saved.items() if isinstance(v, dict)}
        for generator_id, form in self._forms.items():
            form.set_values(self._saved.get(generator_id, {}))
