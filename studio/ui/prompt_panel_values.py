"""The prompt panel's fields read out as a GenerationRequest or as GenerationDefaults, and defaults or a recipe's
values put back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from studio.core.errors import InvalidRequest
from studio.core.hires import HiresFix
from studio.core.inpaint import INPAINT_FILLS, InpaintOptions
from studio.core.requests import MAX_SEED, SCHEDULER_NAMES, GenerationRequest
from studio.core.settings_sections import GenerationDefaults, LoraSetting
from studio.ui.generation_controls import seed_refusal

if TYPE_CHECKING:  # the panel imports this module
    from studio.ui.prompt_panel import PromptPanel


def build_request(panel: PromptPanel, canvas_image: Image.Image | None,
                  mask: Image.Image | None = None) -> GenerationRequest:
    """The request the panel describes; InvalidRequest (one sentence) if it cannot be made.

    With a mask (the canvas's visible, non-empty mask) the request inpaints the canvas picture. A plugin generator's
    picture file is in it as its Path, unread: JobSubmission reads it off the window's thread.
    """
    seed_text = panel.seed_edit.text().strip()
    if refusal := seed_refusal(seed_text):  # by length first: int() of over 4300 digits raises
        raise InvalidRequest(refusal)
    seed = int(seed_text) if seed_text else -1
    generator = panel.selected_generator()
    if generator is not None:
        if mask is not None:
            raise InvalidRequest(f"{generator.title} cannot inpaint; pick a Stable Diffusion model, or hide "
                                 "the mask (M) to make a new picture.")
        return GenerationRequest(
            model="", prompt=panel.prompt_edit.toPlainText(), width=panel.width_spin.value(),
            height=panel.height_spin.value(), seed=seed, batch_count=panel.batch_spin.value(),
            generator=generator.id, params=panel.plugin_box.choices(), steps=1, cfg_scale=0)
    if refusal := panel.model_picker.switched_off_refusal():  # current, but its plugin failed until restart
        raise InvalidRequest(refusal)
    if not panel.selected_model() and panel.model_combo.count():  # listed, none current (a plugin was switched off)
        raise InvalidRequest("Choose a model or generator in the list above first.")
    if not panel.selected_model():
        raise InvalidRequest("No model is selected; add one in the Model Library first (the folder button "
                             "above).")
    init_image = None
    controls = panel.control_box.guides()  # a guide that cannot be used is said before anything is queued
    # The prompt's <lora:name:weight> tags with their files found as the list's are (prepare_request takes them out
    # of the prompt); a tag with a bad weight is said here.
    loras = panel.lora_box.with_prompt_tags(panel.prompt_edit.toPlainText())
    if mask is not None:
        if canvas_image is None:
            raise InvalidRequest("There is no picture to inpaint; open or generate one first.")
        return GenerationRequest(
            model=panel.selected_model(), prompt=panel.prompt_edit.toPlainText(),
            negative_prompt=panel.negative_edit.toPlainText(), width=canvas_image.width,
            height=canvas_image.height, steps=panel.steps_spin.value(), cfg_scale=panel.cfg_spin.value(),
            seed=seed, scheduler=panel.scheduler_combo.currentText(), batch_count=panel.batch_spin.value(),
            init_image=canvas_image, mask=mask, strength=panel.strength_spin.value(),
            inpaint=panel.inpaint_box.options(), loras=loras, vae=panel.lora_box.vae(), controls=controls,
        )
    if panel.use_canvas_check.isChecked():
        if canvas_image is None:
            raise InvalidRequest("The canvas is empty; open or generate a picture before using it as input.")
        init_image = canvas_image
    return GenerationRequest(
        model=panel.selected_model(), prompt=panel.prompt_edit.toPlainText(),
        negative_prompt=panel.negative_edit.toPlainText(), width=panel.width_spin.value(),
        height=panel.height_spin.value(), steps=panel.steps_spin.value(), cfg_scale=panel.cfg_spin.value(),
        seed=seed, scheduler=panel.scheduler_combo.currentText(), batch_count=panel.batch_spin.value(),
        init_image=init_image, strength=panel.strength_spin.value(), loras=loras,
        vae=panel.lora_box.vae(), hires=panel.hires_box.hires() if init_image is None else None, controls=controls,
    )


def likely_request(panel: PromptPanel) -> GenerationRequest | None:
    """The job the panel will most likely make next, for the engine to prepare before it is asked: the picked
    model at the panel's size, CFG and sampler. None when a plugin generator or no model is picked."""
    if panel.selected_generator() is not None or not panel.selected_model():
        return None
    return GenerationRequest(
        model=panel.selected_model(), prompt="", width=panel.width_spin.value(), height=panel.height_spin.value(),
        cfg_scale=panel.cfg_spin.value(), scheduler=panel.scheduler_combo.currentText())


def read_defaults(panel: PromptPanel) -> GenerationDefaults:
    """Every field as settings keep it (a seed out of range is saved as random)."""
    text = panel.seed_edit.text()
    return GenerationDefaults(
        model=panel.selected_model(), prompt=panel.prompt_edit.toPlainText(),
        negative_prompt=panel.negative_edit.toPlainText(), width=panel.width_spin.value(),
        height=panel.height_spin.value(), steps=panel.steps_spin.value(), cfg_scale=panel.cfg_spin.value(),
        seed=int(text) if text.isdigit() and not seed_refusal(text) else -1,
        scheduler=panel.scheduler_combo.currentText(),
        batch_count=panel.batch_spin.value(), strength=panel.strength_spin.value(),
        **_inpaint_defaults(panel.inpaint_box.options()),
        generator=generator.id if (generator := panel.selected_generator()) else "diffusers",
        generator_params=panel.plugin_box.remembered(),
        loras=[LoraSetting(name=c.name, weight=c.weight) for c in panel.lora_box.choices()],
        vae=panel.lora_box.vae(),
        **_hires_defaults(panel.hires_box.enabled_check.isChecked(), panel.hires_box.saved_values()),
        controls=panel.control_box.records(),
    )


def load_defaults(panel: PromptPanel, d: GenerationDefaults) -> None:
    """Every field from saved defaults but the model, which set_models or fill selects; a plugin generator is
    selected now, or once its plugin lists it."""
    panel.prompt_edit.replace_text(d.prompt)
    panel.negative_edit.replace_text(d.negative_prompt)
    panel.width_spin.setValue(d.width)
    panel.height_spin.setValue(d.height)
    panel.steps_spin.setValue(d.steps)
    panel.cfg_spin.setValue(d.cfg_scale)
    panel.seed_edit.setText("" if d.seed < 0 else str(d.seed))
    panel.scheduler_combo.setCurrentText(d.scheduler)
    panel.batch_spin.setValue(d.batch_count)
    panel.img2img.set_strength(d.strength)
    panel.inpaint_box.set_options(InpaintOptions(
        masked_only=d.inpaint_masked_only, padding=d.inpaint_padding,
        fill=d.inpaint_fill if d.inpaint_fill in INPAINT_FILLS else "original", feather=d.inpaint_feather))
    panel.plugin_box.restore(d.generator_params)
    panel.lora_box.set_values([(lora.name, lora.weight) for lora in d.loras], d.vae)
    panel.hires_box.set_values(HiresFix(d.hires_scale, d.hires_steps, d.hires_strength, d.hires_upscaler), d.hires)
    panel.control_box.set_records(d.controls)
    if d.generator != "diffusers":
        panel.model_picker.prefer_generator(d.generator)


def fill(panel: PromptPanel, *, prompt: str | None = None, negative_prompt: str | None = None,
         width: int | None = None, height: int | None = None, steps: int | None = None,
         cfg_scale: float | None = None, seed: int | None = None, scheduler: str | None = None,
         strength: float | None = None, model_path: str | None = None, inpaint: InpaintOptions | None = None,
         generator: str | None = None, generator_params: dict | None = None, loras: tuple | list | None = None,
         vae: str | None = None, hires: HiresFix | bool | None = None) -> list[str]:
    """Set every given field (None: leave as is; ``hires=False`` turns the hires fix off). Returns notes on
    what could not be set."""
    notes: list[str] = []
    if prompt is not None:
        panel.prompt_edit.replace_text(prompt)
    if negative_prompt is not None:
        panel.negative_edit.replace_text(negative_prompt)
    for spin, value in ((panel.width_spin, width), (panel.height_spin, height), (panel.steps_spin, steps)):
        if value is not None:
            spin.setValue(int(value))
    if cfg_scale is not None:
        panel.cfg_spin.setValue(float(cfg_scale))
    if seed is not None:
        panel.seed_edit.setText(str(seed) if 0 <= seed <= MAX_SEED else "")
    if scheduler is not None:
        if scheduler in SCHEDULER_NAMES:
            panel.scheduler_combo.setCurrentText(scheduler)
        else:
            notes.append(f"Studio has no sampler like {scheduler!r}; kept {panel.scheduler_combo.currentText()}.")
    if strength is not None:
        panel.strength_spin.setValue(float(strength))
    if inpaint is not None:
        panel.inpaint_box.set_options(inpaint)
    if loras is not None or vae is not None:
        panel.lora_box.set_values(list(loras or ()), vae)  # vae None: the one chosen stays
    if hires is False:
        panel.hires_box.enabled_check.setChecked(False)
    elif isinstance(hires, HiresFix):
        notes += panel.hires_box.set_values(hires)
    if generator not in (None, "diffusers"):
        if not panel.model_picker.select_generator(generator):
            notes.append(f"The generator {generator!r} is not installed and enabled; kept the current one.")
        elif (form := panel.plugin_box.form()) is not None and isinstance(generator_params, dict):
            form.set_values(generator_params)
    elif model_path is not None and not panel.model_picker.select_model(model_path):
        notes.append(model_not_listed(panel, f"The model {Path(model_path).name}", "; kept the current one."))
    return notes


def model_not_listed(panel: PromptPanel, the_model: str, kept: str) -> str:
    """What is said of a Stable Diffusion picture's model the list lacks (``the_model`` names it; ``kept`` ends the
    sentence while a model stays current): see model_unusable."""
    return model_unusable(panel, f"{the_model} is not in the model list", kept,
                          "add it in the Model Library (the folder button above), or choose one.")


def model_gone(panel: PromptPanel, name: str, path: str) -> str:
    """What is said of a Stable Diffusion picture's model whose file or folder ``path`` is gone (the list, read
    before it went, may still name it; it is not selected, as Generate would refuse it): see model_unusable."""
    return model_unusable(panel, f"The model {name} is gone", f", so the current one was kept; {path} no longer "
                          "exists.", f"{path} no longer exists; choose one in the list above.",
                          f"{path} no longer exists; choose a model in the list above.")


def model_unusable(panel: PromptPanel, why: str, kept: str, none: str,
                   choose: str = "choose a model in the list above.") -> str:
    """``why`` a Stable Diffusion picture's model is not selected, and what is current instead: ``kept`` ends the
    sentence while a model stays current, ``none`` while nothing is. A plugin generator current does not stay:
    Generate would make another kind of picture with the same prompt, so nothing is current (``choose`` ends the
    sentence) and Generate asks for a model."""
    picker = panel.model_picker
    if (generator := picker.selected_generator()) is not None:
        panel.model_combo.setCurrentIndex(-1)
        return f"{why}, and {generator.title} would make another kind of picture, so nothing is selected now; {choose}"
    if not picker.selected_model():
        return f"{why}, and no model is selected; {none}"
    return f"{why}{kept}"



def _hires_defaults(enabled: bool, hires: HiresFix) -> dict:
    return {"hires": enabled, "hires_scale": hires.scale, "hires_steps": hires.steps,
            "hires_strength": hires.strength, "hires_upscaler": hires.upscaler}


def _inpaint_defaults(options: InpaintOptions) -> dict:
    return {"inpaint_masked_only": options.masked_only, "inpaint_padding": options.padding,
            "inpaint_fill": options.fill, "inpaint_feather": options.feather}

