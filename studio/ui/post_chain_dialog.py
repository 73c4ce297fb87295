"""The post-processing chain: an ordered list of post-processors applied to every new picture."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.settings_sections import PostStepSetting
from studio.plugin_host.registry import Contribution
from studio.ui.parameter_pictures import ImageSource
from studio.ui.post_process_dialog import UPSCALE, PostProcessDialog
from studio.ui.theme import error_label, icon


class PostChainDialog(QDialog):
    """Add, edit, reorder and remove steps; ``steps`` is the chain when the dialog is accepted."""

    def __init__(self, steps: Sequence[PostStepSetting], processors: Sequence[Contribution],
                 image_sources: Callable[[], list[ImageSource]], parent: QWidget | None = None,
                 upscalers: Callable[[], list[tuple[str, str]]] = list) -> None:
        super().__init__(parent)
        self.setWindowTitle("Post-processing Chain")
        self.resize(460, 360)
        self.steps = [step.model_copy(deep=True) for step in steps]
        self._processors = {c.id: c for c in processors}
        self._image_sources = image_sources
        self._upscalers = upscalers  # the installed upscaler models, (name, what a step records)
        self.edit_step: Callable[[PostProcessDialog], bool] = (
            lambda dialog: dialog.exec() == QDialog.DialogCode.Accepted)
        layout = QVBoxLayout(self)
        hint = QLabel("Applied to every new picture, top to bottom, before it is saved. The steps and their "
                      "settings are recorded in the picture, so running it again gives the same result.")
        hint.setWordWrap(True)
        hint.setObjectName("hintLabel")
        layout.addWidget(hint)
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(lambda _: self.edit_selected())
        layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton(icon("filter"), "Add")
        menu = QMenu(self.add_button)
        for contribution in processors:
            menu.addAction(contribution.title, lambda c=contribution: self.add(c.id))
        self.add_button.setMenu(menu)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(self.edit_selected)
        self.up_button = QPushButton(icon("chevron-up"), "")
        self.up_button.setToolTip("Earlier in the chain")
        self.up_button.clicked.connect(lambda: self.move(-1))
        self.down_button = QPushButton(icon("chevron-down"), "")
        self.down_button.setToolTip("Later in the chain")
        self.down_button.clicked.connect(lambda: self.move(1))
        self.remove_button = QPushButton(icon("remove"), "Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        for button in (self.add_button, self.edit_button, self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.problem = error_label()  # a step's settings that could not be taken
        layout.addWidget(self.problem)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout.addWidget(box)
        self.list.currentRowChanged.connect(lambda _: self._update_buttons())
        self._fill(0)

    def _title(self, step: PostStepSetting) -> str:
        contribution = self._processors.get(step.processor)
        title = contribution.title if contribution else f"{step.processor} (not installed or not enabled)"
        return title + (f" · {step.strength:.0%}" if step.strength < 1 else "")

    def _fill(self, select: int) -> None:
        self.list.clear()
        for step in self.steps:
            item = QListWidgetItem(icon("filter"), self._title(step))
            if step.processor not in self._processors:
                item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        if self.steps:
            self.list.setCurrentRow(max(0, min(select, len(self.steps) - 1)))
        self._update_buttons()

    def _update_buttons(self) -> None:
        row = self.list.currentRow()
        chosen = 0 <= row < len(self.steps)
        self.edit_button.setEnabled(chosen and self.steps[row].processor in self._processors)
        self.remove_button.setEnabled(chosen)
        self.up_button.setEnabled(chosen and row > 0)
        self.down_button.setEnabled(chosen and row < len(self.steps) - 1)

    def add(self, processor: str) -> None:
        self.steps.append(PostStepSetting(processor=processor))
        self._fill(len(self.steps) - 1)
        if not self.edit_selected():  # a new step starts with its settings open; cancelling drops it
            self.steps.pop()
            self._fill(len(self.steps) - 1)

    def edit_selected(self) -> bool:
        row = self.list.currentRow()
        if not 0 <= row < len(self.steps) or self.steps[row].processor not in self._processors:
            return False
        step = self.steps[row]
        dialog = PostProcessDialog(self._processors[step.processor], step.params, strength=step.strength,
                                   image_sources=self._image_sources(),
                                   upscalers=self._upscalers() if step.processor == UPSCALE else (), parent=self)
        dialog.after_each.hide()
        dialog.masked.hide()
        dialog.setWindowTitle(f"{dialog.windowTitle()} — in the Chain")
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).setText("OK")
        if not self.edit_step(dialog):
            return False
        try:
            params = dialog.form.choices()  # a picture file is read when the step is kept, off this thread
        except StudioError as exc:  # the dialog refuses these itself; the picture it offered may be gone since
            self.problem.setText(str(exc))
            self.problem.show()
            return False
        self.problem.hide()
        self.steps[row] = PostStepSetting(processor=step.processor, params=params, strength=dialog.strength)
        self._fill(row)
        return True

    def move(self, by: int) -> None:
        row = self.list.currentRow()
        target = row + by
        if 0 <= row < len(self.steps) and 0 <= target < len(self.steps):
            self.steps[row], self.steps[target] = self.steps[target], self.steps[row]
            self._fill(target)

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.steps):
            del self.steps[row]
            self._fill(row)
