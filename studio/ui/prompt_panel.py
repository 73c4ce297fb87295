"""The prompt panel: model, prompts, size, sampling settings, img2img, and the Generate button."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import InvalidRequest
from studio.core.inpaint import INPAINT_FILLS, InpaintOptions
from studio.core.models import ModelEntry
from studio.core.requests import (
    MAX_BATCH_COUNT,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
    SCHEDULER_NAMES,
    SIZE_MULTIPLE,
    GenerationRequest,
)
from studio.core.settings import GenerationDefaults, LoraSetting, PromptStyle
from studio.plugin_host.registry import Contribution
from studio.ui.inpaint_options import InpaintOptionsBox
from studio.ui.parameter_form import ImageSource
from studio.ui.lora_box import LoraBox
from studio.ui.plugin_generator_box import PluginGeneratorBox
from studio.ui.prompt_edit import PromptEdit
from studio.ui.styles_menu import PresetsButton, StylesButton
from studio.ui.theme import icon, section_label

GENERATOR_PREFIX = "generator:"  # picker items that are plugin generators, not model paths
SIZE_PRESETS = [
    ("512 × 512", 512, 512), ("512 × 768", 512, 768), ("768 × 512", 768, 512), ("768 × 768", 768, 768),
    ("1024 × 1024", 1024, 1024), ("832 × 1216", 832, 1216), ("1216 × 832", 1216, 832),
    ("896 × 1152", 896, 1152), ("1152 × 896", 1152, 896),
]


def _tool_button(icon_name: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setIcon(icon(icon_name))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


def _header(title: str, button: QWidget) -> QHBoxLayout:
    """A section heading with its menu button at the right."""
    row = QHBoxLayout()
    row.addWidget(section_label(title))
    row.addStretch(1)
    row.addWidget(button)
    return row


class PromptPanel(QWidget):
    """Settings scroll; the error line and the Generate button stay in view below them."""

    picture_dropped = Signal(object)  # a picture file dropped on a prompt box: load its parameters
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
        body = QWidget()
        body.setObjectName("promptPanelBody")
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(6)

        # Model, or a plugin's generator
        self.presets_button = PresetsButton()
        layout.addLayout(_header("Model", self.presets_button))
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setToolTip("A Stable Diffusion model, or a generator from a plugin")
        self.browse_model_button = _tool_button("folder", "Model Library: import, download or link models…")
        self.refresh_models_button = _tool_button("refresh", "Look for models again")
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.browse_model_button)
        row.addWidget(self.refresh_models_button)
        layout.addLayout(row)
        self.models_hint = QLabel()
        self.models_hint.setObjectName("hintLabel")
        self.models_hint.setWordWrap(True)
        self.models_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.models_hint)
        self.lora_box = LoraBox()
        layout.addWidget(self.lora_box)

        # Prompts
        layout.addSpacing(6)
        self.styles_button = StylesButton()
        layout.addLayout(_header("Prompt", self.styles_button))
        self.prompt_edit = PromptEdit()
        self.prompt_edit.setPlaceholderText("Describe the picture… (Ctrl+Enter to generate)")
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setMinimumHeight(96)
        layout.addWidget(self.prompt_edit)
        self.negative_label = section_label("Negative prompt")
        layout.addWidget(self.negative_label)
        self.negative_edit = PromptEdit()
        self.negative_edit.setPlaceholderText("What to avoid: blurry, low quality…")
        self.negative_edit.setTabChangesFocus(True)
        self.negative_edit.setFixedHeight(60)
        layout.addWidget(self.negative_edit)

        # Size
        layout.addSpacing(6)
        layout.addWidget(section_label("Size"))
        size_row = QHBoxLayout()
        self.width_spin = self._size_spin("Width in pixels (a multiple of 8)")
        self.height_spin = self._size_spin("Height in pixels (a multiple of 8)")
        self.swap_size_button = _tool_button("swap", "Swap width and height")
        self.size_presets = QComboBox()
        self.size_presets.addItem("Presets")
        for label, w, h in SIZE_PRESETS:
            self.size_presets.addItem(label, (w, h))
        self.size_presets.setToolTip("Common sizes")
        size_row.addWidget(self.width_spin, 1)
        size_row.addWidget(self.swap_size_button)
        size_row.addWidget(self.height_spin, 1)
        size_row.addWidget(self.size_presets)
        layout.addLayout(size_row)

        # Sampling
        layout.addSpacing(6)
        self.sampling_label = section_label("Sampling")
        layout.addWidget(self.sampling_label)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        self.scheduler_combo = QComboBox()
        self.scheduler_combo.addItems(SCHEDULER_NAMES)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.cfg_spin = QDoubleSpinBox()
        self.cfg_spin.setRange(0.0, 50.0)
        self.cfg_spin.setSingleStep(0.5)
        self.cfg_spin.setDecimals(1)
        self.cfg_spin.setToolTip("How strongly the picture follows the prompt (CFG scale)")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, MAX_BATCH_COUNT)
        self.batch_spin.setToolTip("How many images to make, one after another, with consecutive seeds")
        self._diffusers_only: list[QWidget] = [self.lora_box, self.negative_label, self.negative_edit,
                                               self.scheduler_combo,
                                               self.steps_spin, self.cfg_spin]
        for r, (name, widget) in enumerate([("Sampler", self.scheduler_combo), ("Steps", self.steps_spin),
                                            ("CFG scale", self.cfg_spin), ("Images", self.batch_spin)]):
            label = QLabel(name)
            if widget is not self.batch_spin:
                self._diffusers_only.append(label)
            grid.addWidget(label, r // 2 * 2, r % 2)
            grid.addWidget(widget, r // 2 * 2 + 1, r % 2)
        layout.addLayout(grid)
        seed_row = QHBoxLayout()
        self.seed_edit = QLineEdit()
        self.seed_edit.setPlaceholderText("Random")
        self.seed_edit.setValidator(QRegularExpressionValidator(r"\d{0,10}"))
        self.seed_edit.setToolTip("Seed: the same seed and settings make the same picture. Empty = random.")
        self.random_seed_button = _tool_button("dice", "Random seed for every job")
        self.reuse_seed_button = _tool_button("reuse", "Reuse the seed of the last picture")
        self.reuse_seed_button.setEnabled(False)
        seed_label = QLabel("Seed")
        seed_row.addWidget(seed_label)
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.random_seed_button)
        seed_row.addWidget(self.reuse_seed_button)
        layout.addLayout(seed_row)

        # A plugin generator's own settings
        self.plugin_box = PluginGeneratorBox(lambda: self.image_sources())
        self.plugin_box.hide()
        layout.addWidget(self.plugin_box)
        # Where picture parameters can take a picture from (the canvas, the gallery); set by the window.
        self.image_sources: Callable[[], list[ImageSource]] = list

        # Img2img
        img2img_label = section_label("Image to image")
        layout.addSpacing(6)
        layout.addWidget(img2img_label)
        self.use_canvas_check = QCheckBox("Use canvas as input")
        self.use_canvas_check.setToolTip("Start from the picture on the canvas instead of noise")
        layout.addWidget(self.use_canvas_check)
        strength_row = QHBoxLayout()
        self.strength_label = QLabel("Strength")
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(1, 100)
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(0.01, 1.0)
        self.strength_spin.setSingleStep(0.05)
        self.strength_spin.setDecimals(2)
        self.strength_spin.setToolTip("How much the picture may change: low keeps it close, 1 redraws it")
        strength_row.addWidget(self.strength_label)
        strength_row.addWidget(self.strength_slider, 1)
        strength_row.addWidget(self.strength_spin)
        layout.addLayout(strength_row)
        self._diffusers_only += [img2img_label, self.use_canvas_check, self.strength_label, self.strength_slider,
                                 self.strength_spin]
        self.inpaint_box = InpaintOptionsBox()
        self.inpaint_box.hide()
        layout.addWidget(self.inpaint_box)

        layout.addStretch(1)
        footer = QVBoxLayout()
        footer.setContentsMargins(12, 8, 12, 12)
        footer.setSpacing(6)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorLabel")
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        footer.addWidget(self.error_label)
        self.generate_button = QPushButton("  Generate")
        self.generate_button.setIcon(icon("generate", "#ffffff"))
        self.generate_button.setProperty("primary", True)
        self.generate_button.setMinimumHeight(40)
        self.generate_button.setToolTip("Generate (Ctrl+Enter). Pressing again while a job runs queues another.")
        footer.addWidget(self.generate_button)
        outer.addLayout(footer)

        self._wire()
        self.load_defaults(GenerationDefaults())

    @staticmethod
    def _size_spin(tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(MIN_SIZE, MAX_SIZE)
        spin.setSingleStep(SIZE_MULTIPLE)
        spin.setSuffix(" px")
        spin.setToolTip(tip)
        return spin

    def _wire(self) -> None:
        self.generate_button.clicked.connect(self.generate_requested)
        self.prompt_edit.picture_dropped.connect(self.picture_dropped)
        self.negative_edit.picture_dropped.connect(self.picture_dropped)
        self.styles_button.chosen.connect(self.apply_style)
        self.browse_model_button.clicked.connect(self.browse_model_requested)
        self.refresh_models_button.clicked.connect(self.refresh_models_requested)
        self.swap_size_button.clicked.connect(self._swap_size)
        self.size_presets.activated.connect(self._apply_preset)
        self.random_seed_button.clicked.connect(self.seed_edit.clear)
        self.reuse_seed_button.clicked.connect(self._reuse_seed)
        self.strength_slider.valueChanged.connect(lambda v: self.strength_spin.setValue(v / 100))
        self.strength_spin.valueChanged.connect(lambda v: self.strength_slider.setValue(round(v * 100)))
        self.use_canvas_check.toggled.connect(self._update_img2img_enabled)
        for signal in (self.prompt_edit.textChanged, self.model_combo.currentIndexChanged,
                       self.use_canvas_check.toggled):
            signal.connect(self.clear_error)
        self.model_combo.currentIndexChanged.connect(self._update_generator_mode)
        self._models: list[ModelEntry] = []
        self._generators: list[Contribution] = []
        self._models_dir = ""
        self._wanted = ""  # the model path or generator id to select once it is listed
        self._last_seed: int | None = None
        self._mask_active = False
        self._update_img2img_enabled()

    # -- models ------------------------------------------------------------------------------
    def set_models(self, models: list[ModelEntry], selected: str, models_dir: str) -> None:
        self._models, self._models_dir = list(models), models_dir
        self._rebuild_picker(selected or self._current_key())

    def set_generators(self, generators: list[Contribution]) -> None:
        """Plugin generators, listed after the models (Studio's own diffusers generator is the models)."""
        self._generators = [g for g in generators if g.id != "diffusers"]
        self._rebuild_picker(self._current_key())

    def _current_key(self) -> str:
        return self._wanted or self.model_combo.currentData() or ""

    def _rebuild_picker(self, selected: str) -> None:
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        for entry in self._models:
            combo.addItem(icon("model"), entry.name, str(entry.path))
            combo.setItemData(combo.count() - 1, f"{entry.label} · {entry.path}" if entry.label else str(entry.path),
                              Qt.ItemDataRole.ToolTipRole)
        if self._generators:
            if self._models:
                combo.insertSeparator(combo.count())
            for generator in self._generators:
                combo.addItem(icon("plugin"), generator.title, GENERATOR_PREFIX + generator.id)
                combo.setItemData(combo.count() - 1, f"{generator.title}, from the plugin {generator.owner}",
                                  Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(selected)
        self._wanted = "" if index >= 0 else selected  # a plugin switched off for now may come back
        combo.setCurrentIndex(index if index >= 0 else 0)
        combo.blockSignals(False)
        combo.setToolTip(f"Models are found in {self._models_dir} (Settings → Models Folder…); plugin generators "
                         "are listed after them (Plugins → Manage Plugins…)")
        self.models_hint.setVisible(not self._models)
        self.models_hint.setText(
            f"No models yet. Open the Model Library (folder button) to import a .safetensors checkpoint, download "
            f"a starter model or link another tool's models folder; or put models in {self._models_dir}.")
        combo.setEnabled(combo.count() > 0)
        self._update_generator_mode()

    def selected_model(self) -> str:
        data = self.model_combo.currentData() or ""
        return "" if data.startswith(GENERATOR_PREFIX) else data

    def selected_generator(self) -> Contribution | None:
        """The plugin generator picked in the list, or None for a Stable Diffusion model."""
        data = self.model_combo.currentData() or ""
        return next((g for g in self._generators if GENERATOR_PREFIX + g.id == data), None)

    def _update_generator_mode(self) -> None:
        generator = self.selected_generator()
        for widget in self._diffusers_only:
            widget.setVisible(generator is None)
        self.inpaint_box.setVisible(generator is None and self._mask_active)
        self.plugin_box.setVisible(generator is not None)
        self.sampling_label.setText("SAMPLING" if generator is None else "OUTPUT")
        if generator is not None:
            self.plugin_box.show_generator(generator)

    # -- values ------------------------------------------------------------------------------
    def load_defaults(self, d: GenerationDefaults) -> None:
        self.prompt_edit.setPlainText(d.prompt)
        self.negative_edit.setPlainText(d.negative_prompt)
        self.width_spin.setValue(d.width)
        self.height_spin.setValue(d.height)
        self.steps_spin.setValue(d.steps)
        self.cfg_spin.setValue(d.cfg_scale)
        self.seed_edit.setText("" if d.seed < 0 else str(d.seed))
        self.scheduler_combo.setCurrentText(d.scheduler)
        self.batch_spin.setValue(d.batch_count)
        self.strength_spin.setValue(d.strength)
        self.strength_slider.setValue(round(d.strength * 100))
        self.inpaint_box.set_options(InpaintOptions(
            masked_only=d.inpaint_masked_only, padding=d.inpaint_padding,
            fill=d.inpaint_fill if d.inpaint_fill in INPAINT_FILLS else "original", feather=d.inpaint_feather))
        self.plugin_box.restore(d.generator_params)
        self.lora_box.set_values([(lora.name, lora.weight) for lora in d.loras], d.vae)
        if d.generator != "diffusers":
            self._rebuild_picker(GENERATOR_PREFIX + d.generator)

    def defaults(self) -> GenerationDefaults:
        text = self.seed_edit.text()
        return GenerationDefaults(
            model=self.selected_model(), prompt=self.prompt_edit.toPlainText(),
            negative_prompt=self.negative_edit.toPlainText(), width=self.width_spin.value(),
            height=self.height_spin.value(), steps=self.steps_spin.value(), cfg_scale=self.cfg_spin.value(),
            seed=int(text) if text and int(text) <= MAX_SEED else -1, scheduler=self.scheduler_combo.currentText(),
            batch_count=self.batch_spin.value(), strength=self.strength_spin.value(),
            **_inpaint_defaults(self.inpaint_box.options()),
            generator=generator.id if (generator := self.selected_generator()) else "diffusers",
            generator_params=self.plugin_box.remembered(),
            loras=[LoraSetting(name=c.name, weight=c.weight) for c in self.lora_box.choices()],
            vae=self.lora_box.vae(),
        )

    def set_mask_active(self, active: bool) -> None:
        """A visible, non-empty mask turns Generate into inpainting (with its own options)."""
        became_active = active and not self._mask_active
        self.inpaint_box.setVisible(active and self.selected_generator() is None)
        self._mask_active = active
        if became_active:  # the first stroke of a mask: show where its options are
            QTimer.singleShot(0, self, lambda: self._scroll.ensureWidgetVisible(self.inpaint_box, 0, 12))
        self._update_img2img_enabled()

    def build_request(self, canvas_image: Image.Image | None, mask: Image.Image | None = None) -> GenerationRequest:
        """The request the panel describes; InvalidRequest (one sentence) if it cannot be made.

        With a mask (the canvas's visible, non-empty mask) the request inpaints the canvas picture.
        """
        seed_text = self.seed_edit.text().strip()
        seed = int(seed_text) if seed_text else -1
        if seed > MAX_SEED:
            raise InvalidRequest(f"The seed must be at most {MAX_SEED}.")
        generator = self.selected_generator()
        if generator is not None:
            if mask is not None:
                raise InvalidRequest(f"{generator.title} cannot inpaint; pick a Stable Diffusion model, or hide "
                                     "the mask (M) to make a new picture.")
            return GenerationRequest(
                model="", prompt=self.prompt_edit.toPlainText(), width=self.width_spin.value(),
                height=self.height_spin.value(), seed=seed, batch_count=self.batch_spin.value(),
                generator=generator.id, params=self.plugin_box.values(), steps=1, cfg_scale=0)
        if not self.selected_model():
            raise InvalidRequest("No model is selected; add one in the Model Library first (the folder button "
                                 "above).")
        init_image = None
        if mask is not None:
            if canvas_image is None:
                raise InvalidRequest("There is no picture to inpaint; open or generate one first.")
            return GenerationRequest(
                model=self.selected_model(), prompt=self.prompt_edit.toPlainText(),
                negative_prompt=self.negative_edit.toPlainText(), width=canvas_image.width,
                height=canvas_image.height, steps=self.steps_spin.value(), cfg_scale=self.cfg_spin.value(),
                seed=seed, scheduler=self.scheduler_combo.currentText(), batch_count=self.batch_spin.value(),
                init_image=canvas_image, mask=mask, strength=self.strength_spin.value(),
                inpaint=self.inpaint_box.options(), loras=self.lora_box.choices(), vae=self.lora_box.vae(),
            )
        if self.use_canvas_check.isChecked():
            if canvas_image is None:
                raise InvalidRequest("The canvas is empty; open or generate a picture before using it as input.")
            init_image = canvas_image
        return GenerationRequest(
            model=self.selected_model(), prompt=self.prompt_edit.toPlainText(),
            negative_prompt=self.negative_edit.toPlainText(), width=self.width_spin.value(),
            height=self.height_spin.value(), steps=self.steps_spin.value(), cfg_scale=self.cfg_spin.value(),
            seed=seed, scheduler=self.scheduler_combo.currentText(), batch_count=self.batch_spin.value(),
            init_image=init_image, strength=self.strength_spin.value(), loras=self.lora_box.choices(),
            vae=self.lora_box.vae(),
        )

    def apply_style(self, style: PromptStyle) -> None:
        prompt, negative = style.apply(self.prompt_edit.toPlainText(), self.negative_edit.toPlainText())
        self.prompt_edit.setPlainText(prompt)
        self.negative_edit.setPlainText(negative)

    def fill(self, *, prompt: str | None = None, negative_prompt: str | None = None, width: int | None = None,
             height: int | None = None, steps: int | None = None, cfg_scale: float | None = None,
             seed: int | None = None, scheduler: str | None = None, strength: float | None = None,
             model_path: str | None = None, inpaint: InpaintOptions | None = None, generator: str | None = None,
             generator_params: dict | None = None, loras: tuple | list | None = None,
             vae: str | None = None) -> list[str]:
        """Set every given field (None: leave as is). Returns notes on what could not be set."""
        notes: list[str] = []
        if prompt is not None:
            self.prompt_edit.setPlainText(prompt)
        if negative_prompt is not None:
            self.negative_edit.setPlainText(negative_prompt)
        for spin, value in ((self.width_spin, width), (self.height_spin, height), (self.steps_spin, steps)):
            if value is not None:
                spin.setValue(int(value))
        if cfg_scale is not None:
            self.cfg_spin.setValue(float(cfg_scale))
        if seed is not None:
            self.seed_edit.setText(str(seed) if 0 <= seed <= MAX_SEED else "")
        if scheduler is not None:
            if scheduler in SCHEDULER_NAMES:
                self.scheduler_combo.setCurrentText(scheduler)
            else:
                notes.append(f"Studio has no sampler like {scheduler!r}; kept {self.scheduler_combo.currentText()}.")
        if strength is not None:
            self.strength_spin.setValue(float(strength))
        if inpaint is not None:
            self.inpaint_box.set_options(inpaint)
        if loras is not None or vae is not None:
            self.lora_box.set_values(list(loras or ()), vae or "")
        if generator not in (None, "diffusers"):
            index = self.model_combo.findData(GENERATOR_PREFIX + generator)
            if index < 0:
                notes.append(f"The generator {generator!r} is not installed and enabled; kept the current one.")
            else:
                self.model_combo.setCurrentIndex(index)
                if (form := self.plugin_box.form()) is not None and isinstance(generator_params, dict):
                    form.set_values(generator_params)
        elif model_path is not None:
            index = self.model_combo.findData(model_path)
            if index >= 0:
                self.model_combo.setCurrentIndex(index)
            else:
                notes.append(f"The model {Path(model_path).name} is not in the model list; kept the current one.")
        return notes

    def remember_seed(self, seed: int) -> None:
        self._last_seed = seed
        self.reuse_seed_button.setEnabled(True)
        self.reuse_seed_button.setToolTip(f"Reuse seed {seed} of the last picture")

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def clear_error(self) -> None:
        self.error_label.hide()

    def _reuse_seed(self) -> None:
        if self._last_seed is not None:
            self.seed_edit.setText(str(self._last_seed))

    def _swap_size(self) -> None:
        w, h = self.width_spin.value(), self.height_spin.value()
        self.width_spin.setValue(h)
        self.height_spin.setValue(w)

    def _apply_preset(self, index: int) -> None:
        data = self.size_presets.itemData(index)
        if data:
            self.width_spin.setValue(data[0])
            self.height_spin.setValue(data[1])
        self.size_presets.setCurrentIndex(0)

    def _update_img2img_enabled(self) -> None:
        on = self.use_canvas_check.isChecked() or self._mask_active
        for widget in (self.strength_label, self.strength_slider, self.strength_spin):
            widget.setEnabled(on)

    def set_size(self, width: int, height: int) -> None:
        self.width_spin.setValue(width)
        self.height_spin.setValue(height)


def _inpaint_defaults(options: InpaintOptions) -> dict:
    return {"inpaint_masked_only": options.masked_only, "inpaint_padding": options.padding,
            "inpaint_fill": options.fill, "inpaint_feather": options.feather}
