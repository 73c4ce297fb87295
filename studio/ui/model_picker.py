"""The prompt panel's model picker: Stable Diffusion models, then plugin generators, and the Model Library button."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.core.models import ModelEntry
from studio.plugin_host.registry import Contribution
from studio.ui.buttons import tool_button
from studio.ui.theme import icon

GENERATOR_PREFIX = "generator:"  # picker items that are plugin generators, not model paths
OFF_PREFIX = "off:"  # a plugin generator listed before whose plugin failed (switched off until restart): not runnable


class _PickerCombo(QComboBox):
    """A combo box that says when its list is about to open, so what it lists can be checked then."""

    popup_opening = Signal()

    def showPopup(self) -> None:  # noqa: N802
        self.popup_opening.emit()
        super().showPopup()


class ModelPicker(QWidget):
    """One list of the models found and the enabled plugin generators; a hint stands in for an empty list."""

    browse_requested = Signal()  # the Model Library button
    refresh_requested = Signal()
    selection_changed = Signal()  # another entry is current (picked, or the list was rebuilt)
    popup_opening = Signal()  # the list is about to open: a good moment to check that the models listed are there

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models: list[ModelEntry] = []
        self._generators: list[Contribution] = []
        self._known: dict[str, Contribution] = {}  # every plugin generator listed this session, by id
        self._off: dict[str, str] = {}  # plugin id -> why it is off, for plugins that failed (not turned off)
        self._models_dir = ""
        self._wanted = ""  # the model path or generator id to select once it is listed
        self._last_model = ""  # the model current last: where the picker goes when what was picked leaves the list
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        row = QHBoxLayout()
        self.combo = _PickerCombo()
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setToolTip("A Stable Diffusion model, or a generator from a plugin")
        self.combo.setPlaceholderText("Choose a model or generator")  # shown while none is current
        self.browse_button = tool_button("folder", "Model Library: import, download or link models…")
        self.refresh_button = tool_button("refresh", "Look for models again")
        row.addWidget(self.combo, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        self.hint = QLabel()
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.hint)
        self.browse_button.clicked.connect(self.browse_requested)
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.combo.popup_opening.connect(self.popup_opening)
        self.combo.currentIndexChanged.connect(self._remember_model)
        self.combo.currentIndexChanged.connect(lambda *_: self.selection_changed.emit())
        self.combo.activated.connect(self._chosen)
        self.combo.currentIndexChanged.connect(self._show_tooltip)

    def set_models(self, models: list[ModelEntry], selected: str, models_dir: str) -> None:
        self._models, self._models_dir = list(models), models_dir
        self._rebuild(selected or self._current_key())

    def set_generators(self, generators: list[Contribution], failed: dict[str, str] | None = None) -> None:
        """Plugin generators, listed after the models (Studio's own diffusers generator is the models). ``failed``:
        plugin id -> why, for plugins that failed or were switched off until restart; a generator of theirs listed
        before stays listed, marked off and not pickable, so a Generate while it is current is refused with that
        sentence instead of running another generator."""
        self._generators = [g for g in generators if g.id != "diffusers"]
        self._known.update({g.id: g for g in self._generators})
        self._off = dict(failed or {})
        self._rebuild(self._current_key())

    def selected_model(self) -> str:
        data = self.combo.currentData() or ""
        return "" if data.startswith((GENERATOR_PREFIX, OFF_PREFIX)) else data

    def selected_generator(self) -> Contribution | None:
        """The plugin generator picked in the list, or None for a Stable Diffusion model."""
        data = self.combo.currentData() or ""
        return next((g for g in self._generators if GENERATOR_PREFIX + g.id == data), None)

    def switched_off_refusal(self) -> str:
        """The sentence Generate says while a switched-off generator is current; "" otherwise."""
        generator = self._current_off()
        if generator is None:
            return ""
        return (f"{generator.title} cannot run now. {self._off[generator.plugin_id]} Choose another model or "
                "generator in the list above.")

    def _current_off(self) -> Contribution | None:
        data = self.combo.currentData() or ""
        return self._known.get(data[len(OFF_PREFIX):]) if data.startswith(OFF_PREFIX) else None

    def select_model(self, path: str) -> bool:
        """Make the model at ``path`` current; False (nothing changes) if it is not listed."""
        return self._select(path)

    def select_generator(self, generator_id: str) -> bool:
        """Make a plugin generator current; False (nothing changes) if it is not listed."""
        return self._select(GENERATOR_PREFIX + generator_id)

    def forget_model(self, path: str) -> str:
        """Take the model at ``path`` off the list (its file or folder is gone; the next scan would not list it
        either): the picker goes where it goes for a removed model. Its name as listed, "" if it was not."""
        name = next((entry.name for entry in self._models if str(entry.path) == path), "")
        self._models = [entry for entry in self._models if str(entry.path) != path]
        self._last_model = "" if self._last_model == path else self._last_model
        self._rebuild(self._current_key())
        self._wanted = "" if self._wanted == path else self._wanted  # it is not coming back
        return name

    def listed_model_paths(self) -> list[str]:
        return [str(entry.path) for entry in self._models]

    def lists_generator(self, generator_id: str) -> bool:
        return self.combo.findData(GENERATOR_PREFIX + generator_id) >= 0

    def prefer_generator(self, generator_id: str) -> None:
        """Select a plugin generator now, or as soon as its plugin lists it (settings load before plugins)."""
        self._rebuild(GENERATOR_PREFIX + generator_id)

    def _chosen(self, _index: int) -> None:
        """The person picked an entry: what was wanted before (a removed model, a plugin off for now) is not."""
        self._wanted = ""

    def _remember_model(self) -> None:
        if self.selected_model():
            self._last_model = self.selected_model()

    def _fallback(self, wanted: str) -> int:
        """Where the picker goes when ``wanted`` is not listed. Nothing wanted (a first run, nothing listed until
        now): the first entry, a plugin generator too. A plugin switched off or a model removed: the last model
        used, else the first model, else nothing; never a plugin generator nobody picked, which the next Generate
        would run in place of the one the person chose."""
        if not wanted:
            return 0 if self.combo.count() else -1
        index = self.combo.findData(self._last_model) if self._last_model else -1
        return index if index >= 0 else (0 if self._models else -1)

    def _select(self, key: str) -> bool:
        index = self.combo.findData(key)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        return index >= 0

    def _current_key(self) -> str:
        key = self._wanted or self.combo.currentData() or ""
        return GENERATOR_PREFIX + key[len(OFF_PREFIX):] if key.startswith(OFF_PREFIX) else key  # back when on again

    def _show_tooltip(self) -> None:
        """Where the list comes from; while a switched-off generator is current, why it is off."""
        off = self._current_off()
        self.combo.setToolTip(self._off[off.plugin_id] if off is not None else
                              f"Models are found in {self._models_dir} (Settings → Models Folder…); plugin "
                              "generators are listed after them (Plugins → Manage Plugins…)")

    def _add_off(self, generator: Contribution) -> None:
        """A generator whose plugin failed: greyed, not pickable, with why in its tooltip."""
        combo = self.combo
        combo.addItem(icon("plugin"), f"{generator.title} (switched off)", OFF_PREFIX + generator.id)
        combo.setItemData(combo.count() - 1, self._off[generator.plugin_id], Qt.ItemDataRole.ToolTipRole)
        item = combo.model().item(combo.count() - 1)  # (a QStandardItemModel, as a QComboBox makes)
        item.setEnabled(False)

    def _rebuild(self, selected: str) -> None:
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        for entry in self._models:
            combo.addItem(icon("model"), entry.name, str(entry.path))
            combo.setItemData(combo.count() - 1, f"{entry.label} · {entry.path}" if entry.label else str(entry.path),
                              Qt.ItemDataRole.ToolTipRole)
        listed = {g.id for g in self._generators}
        off = [g for g in self._known.values() if g.id not in listed and g.plugin_id in self._off]
        if self._generators or off:
            if self._models:
                combo.insertSeparator(combo.count())
            for generator in self._generators:
                combo.addItem(icon("plugin"), generator.title, GENERATOR_PREFIX + generator.id)
                combo.setItemData(combo.count() - 1, f"{generator.title}, from the plugin {generator.owner}",
                                  Qt.ItemDataRole.ToolTipRole)
            for generator in off:
                self._add_off(generator)
        index = combo.findData(selected)
        if index < 0 and selected.startswith(GENERATOR_PREFIX):  # the one picked is off: it stays, to be refused
            index = combo.findData(OFF_PREFIX + selected[len(GENERATOR_PREFIX):])
        self._wanted = "" if index >= 0 else selected  # a plugin switched off for now may come back
        combo.setCurrentIndex(index if index >= 0 else self._fallback(selected))
        combo.blockSignals(False)
        self._remember_model()
        self._show_tooltip()
        self.hint.setVisible(not self._models)
        self.hint.setText(
            f"No models yet. Open the Model Library (folder button) to import a .safetensors checkpoint, download "
            f"a starter model or link another tool's models folder; or put models in {self._models_dir}.")
        combo.setEnabled(combo.count() > 0)
        self.selection_changed.emit()  # signals were blocked while the list was refilled: say it once
