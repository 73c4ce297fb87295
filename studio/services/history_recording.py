"""Recording jobs in the history, on the engine thread: one row per saved image, and one for the pictures a job
that failed or was cancelled did not make. A history that cannot be written never fails the job: the person gets a
note instead."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image

from studio import __version__
from studio.core.errors import StudioError
from studio.core.metadata import Recipe
from studio.core.parameters import SOURCE_KEY, params_for_record
from studio.core.requests import GenerationRequest
from studio.engine.worker import WorkerContext, describe_exception
from studio.plugin_host.registry import GENERATOR, Registry
from studio.services.history_errors import HistoryLocked
from studio.services.history_store import HistoryEntry, HistoryStore
from studio.services.outputs import OutputStore, is_kept_control

log = logging.getLogger(__name__)


def generator_version(registry: Registry, generator_id: str) -> str:
    """The version of the plugin that contributes a generator (Studio's own version for built-in ones)."""
    try:
        contribution = registry.get(GENERATOR, generator_id)
    except StudioError:
        return ""
    if contribution.plugin_version:
        return contribution.plugin_version
    return __version__ if contribution.plugin_id == "studio" else ""


def request_mode(request: GenerationRequest) -> str:
    return "inpaint" if request.is_inpaint else "img2img" if request.is_img2img else "txt2img"


class HistoryRecorder:
    """Writes one job's rows. The source picture and mask are kept once per job, before the first row."""

    def __init__(self, history: HistoryStore, outputs: OutputStore | None, registry: Registry,
                 request: GenerationRequest, context: WorkerContext) -> None:
        self._history = history
        self._outputs = outputs
        self._request = request
        self._context = context
        self._version = generator_version(registry, request.generator)
        # What the MODEL column shows for a job without a picture: a plugin's generator by its title, as its pictures.
        self._model_name = Path(str(request.model)).name if request.generator == "diffusers" else \
            registry.title(GENERATOR, request.generator)
        self._sources: tuple[str | None, str | None] | None = None

    def image(self, index: int, recipe: Recipe, path: Path | None, elapsed: float) -> None:
        """Record one image, already saved at path."""
        request = self._request
        source, mask = self._source_paths()
        self._add(HistoryEntry(
            prompt=recipe.prompt, negative_prompt=recipe.negative_prompt,
            model_name=recipe.model_name, model_hash=recipe.model_hash, model_path=str(request.model),
            seed=recipe.seed, steps=recipe.steps, cfg_scale=recipe.cfg_scale, sampler=recipe.sampler,
            width=recipe.width, height=recipe.height, strength=recipe.strength,
            generator=request.generator, generator_version=self._version, postprocess=list(recipe.post),
            params=self._params(index, recipe), outcome="ok", elapsed=round(elapsed, 4),
            image_path=None if path is None else str(path), source_image_path=source, source_mask_path=mask,
        ), what=("The image was saved, but it could not be added to the history{yet}" if path is not None else
                 "The picture could not be added to the history{yet} either"))  # after the note on why not saved

    def ended(self, outcome: str, message: str) -> None:
        """Record a job that failed or was cancelled: before making any image, or the pictures it did not make
        (``message`` says how many it made)."""
        request = self._request
        source, mask = self._source_paths()
        self._add(HistoryEntry(
            prompt=request.prompt, negative_prompt=request.negative_prompt,
            model_name=self._model_name, model_path=str(request.model),
            seed=request.seed, steps=request.steps, cfg_scale=request.cfg_scale, sampler=request.scheduler,
            width=request.width, height=request.height,
            strength=request.strength if request.init_image is not None else None,
            generator=request.generator, generator_version=self._version, postprocess=[],
            params=self._params(0, None), outcome=outcome, message=message,
            elapsed=round(self._context.elapsed, 4),  # without the time earlier pictures' rows waited for a lock
            source_image_path=source, source_mask_path=mask,
        ), what=f"The {outcome} job could not be added to the history{{yet}}")

    def _params(self, index: int, recipe: Recipe | None) -> dict[str, Any]:
        request = self._request
        params: dict[str, Any] = {
            "mode": request_mode(request),
            "batch_index": index,
            "batch_count": request.batch_count,
            "job_seed": request.seed,
        }
        if request.is_inpaint:
            params["inpaint"] = asdict(request.inpaint)
        if recipe is not None and recipe.plugin:
            params["plugin"] = recipe.plugin
        if request.params or request.post:  # pictures: their kept copies (keep_parameter_pictures ran first)
            self._keep_parameter_pictures_again()
        if request.params:
            params["generator_params"] = params_for_record(request.params, keep_files=True)
        # As chosen (a name or a path), so a rerun finds the same files; with the hashes the recipe records, so a
        # rerun can tell another file under the same name even once the picture (and its recipe) is deleted.
        if request.loras:
            hashes = [r.hash for r in recipe.loras] if recipe is not None and len(recipe.loras) == len(
                request.loras) else [""] * len(request.loras)
            params["loras"] = [{"name": c.name, "weight": c.weight} | ({"hash": digest} if digest else {})
                               for c, digest in zip(request.loras, hashes, strict=True)]
        if request.vae:
            params["vae"] = request.vae
            if recipe is not None and recipe.vae_hash:
                params["vae_hash"] = recipe.vae_hash
        if request.hires is not None:
            params["hires"] = request.hires.to_record()
        if request.controls:  # image: the kept copy (keep_control_pictures ran first), so a rerun finds it
            self._keep_controls_again()
            params["controls"] = [guide.to_record(digest) for guide, digest in
                                  zip(request.controls, _control_hashes(recipe, len(request.controls)))]
        if request.post:
            params["post"] = [{"processor": s.processor, "params": params_for_record(s.params, keep_files=True),
                               "strength": s.strength} for s in request.post]
        if recipe is not None:
            params["studio_version"] = recipe.version
            if recipe.precision:
                params["precision"] = recipe.precision
        if notes := [*self._context.warnings, *self._context.notes]:
            params["notes"] = notes
        return params

    def _keep_controls_again(self) -> None:
        """A kept control picture this job names is shared with other entries: deleting the last of them while
        the job ran removed it. It is written again where it was, so this row (and the pictures' recipes) name a
        file that is there."""
        if self._outputs is None:
            return
        for guide in self._request.controls:
            path = Path(guide.image_path) if guide.image_path else None
            if path is None or guide.image is None or not is_kept_control(path) or path.is_file():
                continue
            try:
                self._outputs.restore_control(guide.image, path)
            except Exception as exc:  # noqa: BLE001 - keeping the picture is a nicety, never fatal
                log.warning("Could not keep the control picture %s again", path, exc_info=True)
                self._context.note(f"The control picture {path} was removed with a deleted history entry and could "
                                   f"not be kept again: {describe_exception(exc)}")

    def _keep_parameter_pictures_again(self) -> None:
        """As ``_keep_controls_again``, for the kept pictures of the generator's and the chain's parameters."""
        if self._outputs is None:
            return
        values = [*self._request.params.values(), *(v for step in self._request.post for v in step.params.values())]
        for picture in values:
            path = picture.info.get(SOURCE_KEY) if isinstance(picture, Image.Image) else None
            if not isinstance(path, str) or not is_kept_control(path) or Path(path).is_file():
                continue
            try:
                self._outputs.restore_control(picture, Path(path))
            except Exception as exc:  # noqa: BLE001 - keeping the picture is a nicety, never fatal
                log.warning("Could not keep the picture %s again", path, exc_info=True)
                self._context.note(f"The picture {path} was removed with a deleted history entry and could not be "
                                   f"kept again: {describe_exception(exc)}")

    def _source_paths(self) -> tuple[str | None, str | None]:
        if self._sources is None:
            self._sources = (None, None)
            request = self._request
            if self._outputs is not None and request.init_image is not None:
                try:
                    image, mask = self._outputs.save_sources(request.init_image, request.mask)
                    self._sources = (str(image), None if mask is None else str(mask))
                except Exception as exc:  # noqa: BLE001 - keeping the sources is a nicety, never fatal
                    log.warning("Could not keep the source picture of a job", exc_info=True)
                    self._context.note(f"The source picture could not be kept for the history: "
                                       f"{describe_exception(exc)}")
        return self._sources

    def _add(self, entry: HistoryEntry, what: str) -> None:
        """``what``: the sentence's start, with ``{yet}`` where a lock (the entry kept for later) adds " yet"."""
        try:
            if added := self._history.add_pending():  # written before this one: kept in the order they came
                self._context.note(added)
            self._history.add(entry)
        except HistoryLocked as exc:  # another program's lock, for longer than busy_timeout: kept, added later
            log.warning("%s: %s", what.format(yet=" yet"), exc)
            self._history.keep_for_later(entry)
            where = f" {exc.path}" if exc.path else ""  # not "try again": nothing is left for the person to do
            self._context.note(f"{what.format(yet=' yet')}: the history database{where} is locked by another "
                               "program. Studio keeps the entry and adds it once the lock is gone.")
        except Exception as exc:  # noqa: BLE001 - the image is safe on disk; the job goes on
            log.exception("%s", what.format(yet=""))
            self._context.note(f"{what.format(yet='')}: {describe_exception(exc)}")
        for news in self._history.take_news():  # the file was removed or damaged meanwhile: a new one was started
            self._context.note(news)


def _control_hashes(recipe: Recipe | None, count: int) -> list[str]:
    """The ControlNet models' hashes as the engine recorded them in the picture's recipe ("" where it did not:
    a job that ended before making a picture)."""
    recorded = list(recipe.controls) if recipe is not None else []
    if len(recorded) != count:
        return [""] * count
    return [digest if isinstance(digest := record.get("hash", ""), str) else "" for record in recorded]

