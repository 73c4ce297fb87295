"""LoRAs with their weights, and the VAE, for the next generation: picked from the model library."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import InvalidRequest
from studio.core.metadata import LoraRecord
from studio.core.model_library import LibraryItem
from studio.core.outside_library import family_label, listed_name, short_name
from studio.core.prompt_loras import applied_loras, describe, lora_choice, read_tags, tag_name
from studio.core.requests import MAX_LORA_WEIGHT, MAX_LORAS, LoraChoice
from studio.ui.elided_label import ElidedLabel
from studio.ui.lora_checks import LoraLibrary
from studio.ui.outside_entries import OutsideEntries
from studio.ui.tasks import Tasks
from studio.ui.theme import icon, repolish

MODEL_VAE = "The model's own VAE"


class LoraBox(QWidget):
    """One row per chosen LoRA (name, weight, remove), an Add menu of the library's LoRAs, and a VAE picker."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._library = LoraLibrary()
        self._tasks = Tasks()
        self._library_vaes: set[str] = set()
        self._rows: list[tuple[str, QDoubleSpinBox, QWidget]] = []
        self._row_labels: dict[str, QLabel] = {}
        self._marks_held = False  # within marks_held(): the rows are marked once, at its end
        self._marks_due = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        header = QHBoxLayout()
        title = QLabel("LoRAs")
        title.setObjectName("fieldLabel")
        header.addWidget(title)
        header.addStretch(1)
        self.add_button = QToolButton()
        self.add_button.setIcon(icon("add"))
        self.add_button.setText("Add LoRA")
        self.add_button.setToolButtonStyle(self.add_button.toolButtonStyle().ToolButtonTextBesideIcon)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_menu = QMenu(self.add_button)
        self.add_menu.setToolTipsVisible(True)  # a greyed LoRA's tooltip says which models it is for
        self.add_menu.aboutToShow.connect(self._fill_menu)
        self.add_button.setMenu(self.add_menu)
        header.addWidget(self.add_button)
        layout.addLayout(header)
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(2)
        layout.addLayout(self.rows_layout)
        self._prompt = ""
        self.tagged_label = QLabel()  # the LoRAs the prompt's <lora:name:weight> tags add
        self.tagged_label.setObjectName("hintLabel")
        self.tagged_label.setWordWrap(True)
        self.tagged_label.hide()
        layout.addWidget(self.tagged_label)
        vae_row = QHBoxLayout()
        vae_label = QLabel("VAE")
        vae_label.setObjectName("fieldLabel")
        self.vae_combo = QComboBox()
        # a long VAE file name is cut short in the box, not given room by widening the panel
        self.vae_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.vae_combo.setMinimumContentsLength(12)
        self.vae_combo.setToolTip("Decode with another VAE (from the model library), e.g. a fixed SDXL VAE")
        self.vae_combo.addItem(MODEL_VAE, "")
        self.vae_combo.currentIndexChanged.connect(lambda *_: self.changed.emit())
        vae_row.addWidget(vae_label)
        vae_row.addWidget(self.vae_combo, 1)
        layout.addLayout(vae_row)
        self._outside_vaes = OutsideEntries(self.vae_combo, "vae", self._tasks, lambda vae: vae in self._library_vaes)

    # -- library ---------------------------------------------------------------------------------
    def set_library(self, items: list[LibraryItem]) -> None:
        """The library's LoRAs and VAEs to pick from (a chosen one that went missing stays, by name)."""
        self._library.set_items(items)
        vaes = [i for i in items if i.kind == "vae" and i.usable]
        current = self.vae()
        self._library_vaes = {str(i.path) for i in vaes}
        self.vae_combo.blockSignals(True)
        self.vae_combo.clear()
        self.vae_combo.addItem(MODEL_VAE, "")
        for item in vaes:
            self.vae_combo.addItem(item.name, str(item.path))
            self.vae_combo.setItemData(self.vae_combo.count() - 1, str(item.path), 3)  # tooltip role
        self._select_vae(current)
        self.vae_combo.blockSignals(False)
        self._mark_rows()
        self._show_tagged()

    def set_model(self, model: str) -> None:
        """The chosen checkpoint (its path): LoRAs made for another family are greyed in the menu and marked in the
        list."""
        if model == self._library.model:  # the picker refilled (each scan refills it) with the same model picked:
            return  # the rows are marked by set_library, once
        self._library.model = model
        self._mark_rows()

    @contextmanager
    def marks_held(self) -> Iterator[None]:
        """Within the block, a new model and a new library (a scan that took the picked model away) mark the rows
        once, at its end, for both."""
        self._marks_held = True
        try:
            yield
        finally:
            self._marks_held = False
            if self._marks_due:
                self._marks_due = False
                self._mark_rows()

    @property
    def _loras(self) -> list[LibraryItem]:
        """The library's usable LoRAs (empty until the first scan)."""
        return self._library.loras

    def _fill_menu(self) -> None:
        self.add_menu.clear()
        chosen = {self.library_path(name) for name, _, _ in self._rows}
        if not self._loras:
            self.add_menu.addAction("No LoRAs in the library yet (Settings → Model Library…)").setEnabled(False)
        fitting = [i for i in self._loras if not self._library.other_family(i)]
        for item in fitting + [i for i in self._loras if i not in fitting]:
            action = self.add_menu.addAction(f"{item.name}  ·  {item.label}", lambda i=item: self.add(str(i.path)))
            other = self._library.other_family(item)
            action.setToolTip(f"For {other} models; the chosen model is {family_label(self._library.family())}" if other
                              else str(item.path))
            action.setEnabled(not other and str(item.path) not in chosen and len(self._rows) < MAX_LORAS)

    # -- values ----------------------------------------------------------------------------------
    def add(self, name: str, weight: float = 1.0) -> None:
        if len(self._rows) >= MAX_LORAS or any(n == name for n, _, _ in self._rows):
            return
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        # Cut in the middle: a marked row's note at its end ("(not found)") stays in sight.
        label = ElidedLabel(short_name(name), Qt.TextElideMode.ElideMiddle)
        label.setObjectName("loraName")
        label.setToolTip(name)
        self._row_labels[name] = label
        spin = QDoubleSpinBox()
        spin.setRange(-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setValue(weight)
        spin.setToolTip("Weight: 1 is the LoRA as trained, 0 switches it off, negative pushes away from it")
        spin.valueChanged.connect(lambda *_: self.changed.emit())
        remove = QToolButton()
        remove.setIcon(icon("close"))
        remove.setToolTip("Remove this LoRA")
        remove.clicked.connect(lambda: self.remove(name))
        line.addWidget(label, 1)
        line.addWidget(spin)
        line.addWidget(remove)
        self.rows_layout.addWidget(row)
        self._rows.append((name, spin, row))
        self._mark_row(name)
        self._show_tagged()
        self.changed.emit()

    def remove(self, name: str) -> None:
        for entry in list(self._rows):
            if entry[0] == name:
                self._rows.remove(entry)
                self._row_labels.pop(name, None)
                entry[2].deleteLater()
        self._show_tagged()
        self.changed.emit()

    def choices(self) -> tuple[LoraChoice, ...]:
        """The list's LoRAs, each by its library file when the library has it (however the row was added)."""
        return tuple(LoraChoice(self.library_path(name), spin.value()) for name, spin, _ in self._rows)

    # -- problems, said before anything is queued ------------------------------------------------
    def _mark_rows(self) -> None:
        if self._marks_held:
            self._marks_due = True
            return
        for name, _, _ in self._rows:
            self._mark_row(name)

    def _mark_row(self, name: str) -> None:
        label = self._row_labels[name]
        problem = self._library.row_problem(name)
        label.setText(listed_name(short_name(name), problem[0]) if problem else short_name(name))
        label.setToolTip(problem[1] if problem else name)
        if label.property("error") != bool(problem):
            label.setProperty("error", bool(problem))
            repolish(label)

    def with_prompt_tags(self, prompt: str) -> tuple[LoraChoice, ...]:
        """The list's LoRAs, then those of the prompt's tags, found in the library as the list's are (by name,
        in the models folder or a linked one); InvalidRequest for a listed LoRA that is missing or made for another
        family, a tag with a bad weight or an unknown LoRA, or tags the job would refuse."""
        for name, _, _ in self._rows:
            if problem := self._library.row_problem(name):
                raise InvalidRequest(problem[1])
        tagged = self._tagged(prompt)
        return (*self.choices(), *tagged)

    def _tagged(self, prompt: str) -> tuple[LoraChoice, ...]:
        """The prompt's tags' LoRAs, by their library files; InvalidRequest for a tag naming a LoRA the library does
        not have, or for tags the job would refuse (one LoRA tagged twice at two weights, too many LoRAs). The prompt
        is read once: this runs on every keystroke in the prompt box."""
        tags = read_tags(prompt)
        tagged = tuple(replace(choice, name=self.library_path(choice.name)) for choice in map(lora_choice, tags))
        self._library.check_tagged(tagged)
        applied_loras(tags, (*self.choices(), *tagged))
        return tagged

    def show_prompt_tags(self, prompt: str) -> None:
        """Under the list: what the prompt's tags will add to it, or what is wrong with a tag."""
        self._prompt = prompt
        self._show_tagged()

    def _show_tagged(self) -> None:
        # Run as the prompt, the library or the list's LoRAs change; not on a weight's step or the VAE (what it says
        # of the tags does not depend on either), which would read and check the prompt's tags again each time.
        try:
            tagged = self._tagged(self._prompt)
        except InvalidRequest as exc:
            text, error = str(exc), True
        else:
            listed = {c.name.casefold() for c in self.choices()}
            parts = [f"{tag_name(c)} (the list's weight applies)" if c.name.casefold() in listed
                     else describe([c]) for c in tagged]
            text, error = (f"From the prompt: {', '.join(parts)}" if parts else ""), False
        self.tagged_label.setText(text)
        self.tagged_label.setVisible(bool(text))
        if self.tagged_label.property("error") != error:
            self.tagged_label.setProperty("error", error)
            repolish(self.tagged_label)

    def vae(self) -> str:
        return self.vae_combo.currentData() or ""

    def set_values(self, loras: list[tuple[str, float]] | tuple[LoraChoice, ...], vae: str | None) -> None:
        """These LoRAs in place of the ones shown, and this VAE ("": the model's own; None: the chosen one stays)."""
        for name, _, _ in list(self._rows):
            self.remove(name)
        for entry in loras:
            name, weight = (entry.name, entry.weight) if isinstance(entry, LoraChoice) else entry
            self.add(self.library_path(name), weight)
        if vae is not None:
            self._select_vae(vae)

    def found_by_hash(self, records: Iterable[LoraRecord], hash_cache: Path | None) -> dict[str, str]:
        """``LoraLibrary.found_by_hash``: hashes files, so call it in a worker thread."""
        return self._library.found_by_hash(records, hash_cache)

    def rename(self, paths: dict[str, str]) -> None:
        """The rows named as ``paths``' keys by the library files its values name, in place, at their weights."""
        self.set_values([(paths.get(name, name), spin.value()) for name, spin, _ in self._rows], None)  # VAE kept

    def library_path(self, name: str) -> str:
        """A recorded name ("ink", "ink.safetensors") as the library's file, when it has one of that name."""
        return self._library.library_path(name)

    def _select_vae(self, vae: str) -> None:
        if not vae:
            self.vae_combo.setCurrentIndex(0)
            return
        for index in range(1, self.vae_combo.count()):
            if vae in (self.vae_combo.itemData(index), self.vae_combo.itemText(index)):
                self.vae_combo.setCurrentIndex(index)
                return
        self.vae_combo.setCurrentIndex(self._outside_vaes.add(vae))
