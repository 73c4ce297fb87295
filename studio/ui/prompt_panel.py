"""The prompt panel: model, prompts, size, sampling settings, img2img, and the Generate button."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QScrollArea, QVBoxLayout, QWidget

from studio.core.models import ModelEntry
from studio.core.prompt_loras import without_tags
from studio.core.requests import GenerationRequest
from studio.core.settings_sections import GenerationDefaults, PromptStyle
from studio.plugin_host.registry import Contribution
from studio.ui import prompt_panel_values
from studio.ui.control_box import ControlBox
from studio.ui.generation_controls import Img2ImgBox, SamplingBox, SizeBox
from studio.ui.hires_box import HiresBox
from studio.ui.inpaint_options import InpaintOptionsBox
from studio.ui.lora_box import LoraBox
from studio.ui.model_picker import ModelPicker
from studio.ui.parameter_pictures import ImageSource
from studio.ui.plugin_generator_box import PluginGeneratorBox
from studio.ui.prompt_edit import PromptEdit, picture_paths
from studio.ui.prompt_panel_canvas import CanvasFollowing
from studio.ui.styles_menu import PresetsButton, StylesButton
from studio.ui.token_counter import TokenCounter
from studio.ui.theme import error_label, icon, section_label

MIN_WIDTH = 320  # the panel's least width, however narrow its rows


def _header(title: str | QWidget, *right: QWidget) -> QHBoxLayout:
    """A section heading with its menu button (or counter) at the right."""
    row = QHBoxLayout()
    row.addWidget(section_label(title) if isinstance(title, str) else title)
    row.addStretch(1)
    for widget in right:
        row.addWidget(widget)
    return row


class PromptPanel(QWidget, CanvasFollowing):
    """Settings scroll; the error line and the Generate button stay in view below them."""

    picture_dropped = Signal(object)  # a picture file dropped anywhere on the panel: load its parameters
    generate_requested = Signal()
    browse_model_requested = Signal()
    refresh_models_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("promptPanel")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self._scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a Tab stop with no focus ring: Tab goes to its fields
        body = QWidget()
        body.setObjectName("promptPanelBody")
        body.installEventFilter(self)  # its widest row sets the panel's least width (minimumSizeHint)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(6)

        # Model, or a plugin's generator
        self.presets_button = PresetsButton()
        layout.addLayout(_header("Model", self.presets_button))
        self.model_picker = ModelPicker()
        layout.addWidget(self.model_picker)
        self.lora_box = LoraBox()
        layout.addWidget(self.lora_box)

        # Prompts
        layout.addSpacing(6)
        self.styles_button = StylesButton()
        self.prompt_edit = PromptEdit()
        self.prompt_tokens = TokenCounter(self.prompt_edit, without_tags)
        layout.addLayout(_header("Prompt", self.prompt_tokens, self.styles_button))
        self.prompt_edit.setPlaceholderText("Describe the picture… (Ctrl+Enter to generate)")
        emphasis = ("(words:1.3) weighs words more, [words] less; Ctrl+Up / Ctrl+Down change the weight of the "
                    "selected words. Long prompts are read whole; BREAK starts a new 75-token part.")
        self.prompt_edit.setToolTip(emphasis)
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setMinimumHeight(96)
        layout.addWidget(self.prompt_edit)
        self.negative_label = section_label("Negative prompt")
        self.negative_edit = PromptEdit()
        self.negative_tokens = TokenCounter(self.negative_edit)
        layout.addLayout(_header(self.negative_label, self.negative_tokens))
        self.negative_edit.setPlaceholderText("What to avoid: blurry, low quality…")
        self.negative_edit.setToolTip(emphasis)
        self.negative_edit.setTabChangesFocus(True)
        self.negative_edit.setFixedHeight(60)
        layout.addWidget(self.negative_edit)

        layout.addSpacing(6)
        self.size_box = SizeBox()
        layout.addWidget(self.size_box)
        layout.addSpacing(6)
        self.sampling = SamplingBox()
        layout.addWidget(self.sampling)

        # A plugin generator's own settings
        self.plugin_box = PluginGeneratorBox(lambda: self.image_sources())
        self.plugin_box.hide()
        layout.addWidget(self.plugin_box)
        # Where picture parameters can take a picture from (the canvas, the gallery); set by the window.
        self.image_sources: Callable[[], list[ImageSource]] = list

        layout.addSpacing(6)
        self.hires_box = HiresBox()
        layout.addWidget(self.hires_box)
        layout.addSpacing(6)
        self.img2img = Img2ImgBox()
        layout.addWidget(self.img2img)
        self.inpaint_box = InpaintOptionsBox()
        self.inpaint_box.hide()
        layout.addWidget(self.inpaint_box)
        layout.addSpacing(6)
        self.control_box = ControlBox(lambda: self.image_sources())
        layout.addWidget(self.control_box)

        layout.addStretch(1)
        footer = QVBoxLayout()
        footer.setContentsMargins(12, 8, 12, 12)
        footer.setSpacing(6)
        self.error_label = error_label()
        footer.addWidget(self.error_label)
        self.generate_button = QPushButton("  Generate")
        self.generate_button.setIcon(icon("generate", "#ffffff"))
        self.generate_button.setProperty("primary", True)
        self.generate_button.setMinimumHeight(40)
        self.generate_button.setToolTip("Generate (Ctrl+Enter). Pressing again while a job runs queues another.")
        footer.addWidget(self.generate_button)
        outer.addLayout(footer)

        # The sections' fields that other modules and tests reach through the panel.
        self.model_combo = self.model_picker.combo
        self.width_spin, self.height_spin = self.size_box.width_spin, self.size_box.height_spin
        self.scheduler_combo, self.steps_spin = self.sampling.scheduler_combo, self.sampling.steps_spin
        self.cfg_spin, self.batch_spin = self.sampling.cfg_spin, self.sampling.batch_spin
        self.seed_edit = self.sampling.seed_edit
        self.use_canvas_check, self.strength_spin = self.img2img.use_canvas_check, self.img2img.strength_spin
        # A picture dropped anywhere on the panel loads its parameters (the window would open it on the canvas); the
        # seed box would take its file's address as text instead.
        self.setAcceptDrops(True)
        self.seed_edit.setAcceptDrops(False)

        self._mask_active = False
        self._mask: np.ndarray | None = None  # the canvas's mask, set with set_mask_active
        self._canvas_size: tuple[int, int] | None = None  # the canvas picture's (None: no picture)
        self._wire()
        self.load_defaults(GenerationDefaults())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """Never narrower than the body's widest row and the scroll bar: the panel scrolls only down, and a dock
        dragged (or a window made) narrower than that cut the right side off its rows (a model's refresh button, a
        token count)."""
        hint = super().minimumSizeHint()
        body = self._scroll.widget().minimumSizeHint().width() + self._scroll.verticalScrollBar().sizeHint().width()
        return QSize(max(MIN_WIDTH, hint.width(), body), hint.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.LayoutRequest and watched is self._scroll.widget():
            self.updateGeometry()  # a row came or went (a guide card, the inpaint options): the dock asks again
        return False

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if picture_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()  # other files and text: the window's to take

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = picture_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.picture_dropped.emit(paths[0])

    def _wire(self) -> None:
        self.generate_button.clicked.connect(self.generate_requested)
        self.prompt_edit.picture_dropped.connect(self.picture_dropped)
        self.negative_edit.picture_dropped.connect(self.picture_dropped)
        self.styles_button.chosen.connect(self.apply_style)
        self._words_go_to = self.prompt_edit  # the prompt box the person was in last
        for box in (self.prompt_edit, self.negative_edit):
            box.focused.connect(lambda b=box: setattr(self, "_words_go_to", b))
        self.styles_button.embedding_chosen.connect(lambda name: self._words_go_to.insert_word(name))
        self.model_picker.browse_requested.connect(self.browse_model_requested)
        self.model_picker.refresh_requested.connect(self.refresh_models_requested)
        self.prompt_edit.textChanged.connect(lambda: self.lora_box.show_prompt_tags(self.prompt_edit.toPlainText()))
        for signal in (self.prompt_edit.textChanged, self.use_canvas_check.toggled):
            signal.connect(self.clear_error)
        # The picker changes hands as the person picks, and also as a scan lists a model just imported or
        # downloaded (signals blocked while it refills): a refusal about the old pick may no longer hold.
        self._picked_when_refused = ""
        self._request_takes_picture = False  # whether the request built last takes the canvas picture
        self._refused_with_picture = False  # whether the refusal shown was of a job made from the canvas picture
        self.model_picker.selection_changed.connect(self._clear_error_if_picked_other)
        self.model_picker.selection_changed.connect(self._update_generator_mode)
        for spin in (self.width_spin, self.height_spin):
            spin.valueChanged.connect(self._size_changed)
        self.use_canvas_check.toggled.connect(self._update_hires)
        self.use_canvas_check.toggled.connect(self._update_control_size)
        self.inpaint_box.area_changed.connect(self._update_control_size)

    # -- models ------------------------------------------------------------------------------
    def set_models(self, models: list[ModelEntry], selected: str, models_dir: str) -> None:
        self.model_picker.set_models(models, selected, models_dir)

    def set_generators(self, generators: list[Contribution], failed: dict[str, str] | None = None) -> None:
        """Plugin generators, listed after the models (Studio's own diffusers generator is the models); ``failed``:
        plugin id -> why, for plugins off until restart (see ModelPicker.set_generators)."""
        self.model_picker.set_generators(generators, failed)

    def selected_model(self) -> str:
        return self.model_picker.selected_model()

    def selected_generator(self) -> Contribution | None:
        """The plugin generator picked in the list, or None for a Stable Diffusion model."""
        return self.model_picker.selected_generator()

    def _update_generator_mode(self) -> None:
        generator = self.selected_generator()
        for widget in (self.lora_box, self.negative_label, self.negative_tokens, self.negative_edit, self.img2img,
                       self.hires_box):
            widget.setVisible(generator is None)
        self.sampling.set_plugin_mode(generator is not None)
        self.inpaint_box.setVisible(generator is None and self._mask_active)
        self.plugin_box.setVisible(generator is not None)
        self.control_box.set_generator(generator.title if generator is not None else None)
        self.control_box.set_model(self.selected_model())
        self.lora_box.set_model(self.selected_model())  # LoRAs for another family are greyed and marked
        if generator is not None:
            self.plugin_box.show_generator(generator)

    # -- values ------------------------------------------------------------------------------
    def load_defaults(self, d: GenerationDefaults) -> None:
        prompt_panel_values.load_defaults(self, d)

    def defaults(self) -> GenerationDefaults:
        return prompt_panel_values.read_defaults(self)

    def build_request(self, canvas_image: Image.Image | None, mask: Image.Image | None = None) -> GenerationRequest:
        """The request the panel describes; InvalidRequest (one sentence) if it cannot be made.

        With a mask (the canvas's visible, non-empty mask) the request inpaints the canvas picture.
        """
        # A job of Studio's own that takes the canvas picture (img2img, inpainting) may be refused for that picture
        # (too small, too thin, its mask empty, none there yet): another picture opened answers such a refusal.
        self._request_takes_picture = self.selected_generator() is None and (
            mask is not None or self.use_canvas_check.isChecked())
        return prompt_panel_values.build_request(self, canvas_image, mask)

    def likely_request(self) -> GenerationRequest | None:
        """The job the panel will most likely make next (model, size, CFG), or None for none of Studio's own."""
        return prompt_panel_values.likely_request(self)

    def apply_style(self, style: PromptStyle) -> None:
        prompt, negative = style.apply(self.prompt_edit.toPlainText(), self.negative_edit.toPlainText())
        self.prompt_edit.replace_text(prompt)
        self.negative_edit.replace_text(negative)

    # Set from a recipe (a picture's parameters, a history entry, a preset): prompt_panel_values.fill.
    fill = prompt_panel_values.fill

    def remember_seed(self, seed: int) -> None:
        self.sampling.remember_seed(seed)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()
        self._picked_when_refused = self.model_combo.currentData() or ""
        self._refused_with_picture = self._request_takes_picture

    def picture_replaced(self) -> None:
        """The canvas holds another picture (opened, dropped, pasted): a refusal of a job made from the one before no
        longer holds."""
        if self._refused_with_picture:
            self.clear_error()

    def _clear_error_if_picked_other(self) -> None:
        """A rescan that keeps the same pick leaves the refusal (a seed too large still is); another pick clears it."""
        if (self.model_combo.currentData() or "") != self._picked_when_refused:
            self.clear_error()

    def clear_error(self) -> None:
        self.error_label.hide()

    def set_size(self, width: int, height: int) -> None:
        self.size_box.set_size(width, height)
