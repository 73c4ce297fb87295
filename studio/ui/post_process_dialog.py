"""A post-processor's settings before it runs: its own form, plus Studio's strength and mask options."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.parameters import validate_settings
from studio.plugin_host.registry import Contribution
from studio.ui.parameter_form import ParameterForm
from studio.ui.parameter_pictures import ImageSource
from studio.ui.theme import error_label, section_label

UPSCALE = "upscale"  # the built-in post-processor whose "model" is an installed upscaler file
NO_UPSCALER = ("No upscaler model is installed: put one (a Real-ESRGAN or 4x-UltraSharp .safetensors file) in the "
               "models folder's upscalers/ first.")


class PostProcessDialog(QDialog):
    """Run once on the canvas (Apply), or keep in the after-each-generation chain (the checkbox). ``upscalers``:
    the installed upscaler models, (name, what a setting records), which Upscale's upscaler is chosen from."""

    def __init__(self, contribution: Contribution, values: dict, *, strength: float = 1.0, after_each: bool = False,
                 mask_available: bool = False, image_sources: Sequence[ImageSource] = (),
                 upscalers: Sequence[tuple[str, str]] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.contribution = contribution
        self.setWindowTitle(contribution.title)
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        source = "" if contribution.builtin else f"\nFrom the plugin {contribution.owner}."
        self.about = QLabel(f"{contribution.description}{source}".strip())
        self.about.setWordWrap(True)
        self.about.setObjectName("hintLabel")
        layout.addWidget(self.about)
        self.form = ParameterForm(contribution.parameters, image_sources)
        self.form.set_values(values)
        if contribution.builtin and contribution.id == UPSCALE:
            self._offer_upscalers(upscalers)
        layout.addWidget(self.form)

        layout.addWidget(section_label("Apply"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Strength"))
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, 100)
        self.strength_slider.setValue(round(strength * 100))
        self.strength_label = QLabel()
        self.strength_label.setMinimumWidth(40)
        self.strength_slider.valueChanged.connect(lambda v: self.strength_label.setText(f"{v} %"))
        self.strength_label.setText(f"{self.strength_slider.value()} %")
        self.strength_slider.setToolTip("Blend with the picture as it is: 0 % keeps it, 100 % takes the result fully")
        row.addWidget(self.strength_slider, 1)
        row.addWidget(self.strength_label)
        layout.addLayout(row)
        self.masked = QCheckBox("Only under the mask")
        self.masked.setEnabled(mask_available)
        self.masked.setChecked(mask_available)
        self.masked.setToolTip("Change only the painted area; every other pixel stays as it is"
                               if mask_available else "Paint a mask on the canvas to limit the change to it")
        layout.addWidget(self.masked)
        self.after_each = QCheckBox("Also apply after each generation")
        self.after_each.setChecked(after_each)
        self.after_each.setToolTip("Add it to the post-processing chain that runs on every new picture")
        layout.addWidget(self.after_each)
        self.problem = error_label()  # what the form cannot take, said where the person is looking
        layout.addWidget(self.problem)
        if problems := self.form.problems():  # a reference picture deleted since: said at once
            self.problem.setText(" ".join(problems))
            self.problem.show()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Apply to Canvas")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _offer_upscalers(self, upscalers: Sequence[tuple[str, str]]) -> None:
        """The upscaler is chosen from the installed ones, and none installed is refused in words: typed free (or
        left empty with none installed) it failed when applied, and from the chain after every generation."""
        self.form.offer_choices("model", upscalers, NO_UPSCALER)
        self.form.describe_value("outscale", "0 = the upscaler's own scale")

    def accept(self) -> None:
        """Only settings the post-processor can run with close the dialog (a picture setting with no canvas
        picture to take, say, or a value out of its range); otherwise the sentence shows and the dialog stays.
        A picture file chosen is not read here (0.7 s for a 4096² one): the job reads it, off this thread."""
        try:  # choices() refuses a setting to pick with nothing to pick (no upscaler installed)
            validate_settings(self.contribution.parameters, self.form.choices(), self.contribution.title)
        except StudioError as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            self._fit_minimum_height()
            self.adjustSize()  # room for the sentence's wrapped lines
            return
        super().accept()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        self._fit_minimum_height()  # polished by now: the style's fonts and paddings are known
        super().showEvent(event)

    def _fit_minimum_height(self) -> None:
        """Never shorter than its rows at their smallest. Qt's minimum counts a wrapped sentence (the description,
        the problem) as one line, so on a short screen (2x scaling) the dialog was squeezed to it and the form's
        rows overlapped: the reference picture's box was cut by the row below."""
        self.setMinimumHeight(self.layout().minimumHeightForWidth(self.minimumWidth()))

    @property
    def strength(self) -> float:
        return self.strength_slider.value() / 100
