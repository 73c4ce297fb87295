"""Studio's built-in generator: txt2img, img2img and inpainting with diffusers, on the engine thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import InvalidRequest, ModelError, StudioError
from studio.core.generation import JobContext
from studio.core.held_memory import CACHED, IN_USE, KEPT, HeldModel
from studio.core.hashing import in_background, lora_hash, model_hash
from studio.core.hires import BUILT_IN_UPSCALERS, LANCZOS, HiresFix
from studio.core.metadata import LoraRecord, Recipe
from studio.core.requests import GenerationRequest, prepare_request
from studio.core.weight_files import check_weights_file
from studio.engine import depth_maps
from studio.engine.batch_run import run_batch
from studio.engine.control_nets import ControlNets, bytes_to_place, check_fits, find_controlnet, place
from studio.engine.cpu_precision import job_device, lay_out_for_cpu
from studio.engine.device import DeviceInfo, dtype_name, free_memory, on_spare_memory, select_device
from studio.engine.fast_path_choices import options_for
from studio.engine.fast_path_state import let_graphs_go
from studio.engine.fast_path_memory import held_by_fast_path
from studio.engine.held_memory import describe
from studio.engine.hires_pass import LatentStart, enlarge_lanczos, hires_pictures
from studio.engine.ip_adapter import (
    find_ip_adapter,
    kept_reference,
    let_reference_go,
    reference_attached,
    reference_bytes,
)
from studio.engine.job_memory import plan_job_memory
from studio.engine.job_runs import JobRun, full_mask_run, inpaint_run, plain_run
from studio.engine.libraries import quiet_imports
from studio.engine.loader import LoadedModel, load_model
from studio.engine.loras import resolve_loras, use_loras
from studio.engine.memory import MemoryPlan, apply_plan, oom_advice, weight_parts
from studio.engine.model_keeping import (
    KeptModels,
    ModelStamp,
    in_precision,
    in_system_memory,
    model_files_key,
    note_from_memory,
)
from studio.engine.schedulers import make_scheduler
from studio.engine.upscale import Upscale, find_upscaler, import_spandrel
from studio.engine.vae_override import VaeOverride, find_vae
from studio.engine.worker import Job, WorkerContext

log = logging.getLogger(__name__)


class DiffusersGenerator:
    """Keeps one model in use, and the few before it loaded for switching back (model_keeping)."""

    def __init__(self, env: GeneratorEnvironment) -> None:
        self._env = env
        self._device: DeviceInfo | None = None
        self._in_use: DeviceInfo | None = None  # the device as the current job uses it (cpu_precision.job_device)
        self._model: LoadedModel | None = None
        self._kept = KeptModels()  # the models before, still loaded for switching back
        self._vae = VaeOverride()
        self._controls = ControlNets()  # the last guided job's ControlNets, kept for the next
        self._plan: MemoryPlan | None = None  # the last job's memory measures (what an OOM message builds on)
        self._upscale: Upscale | None = None  # a hires fix's upscaler, where no registry hands over the filter's
        self._registry: Any = None  # Studio's registry, which hands over the Upscale filter (use_registry)
        on_spare_memory(self._let_kept_go)  # another job out of memory (an upscaler's tiles) gets its room

    def use_linked_dirs(self, linked: tuple[Path, ...]) -> None:
        """Other tools' folders were linked or unlinked: the next job finds their embeddings (nothing reloads)."""
        self._env = replace(self._env, linked_dirs=linked)

    def warm_up(self, status) -> None:  # noqa: ANN001 - StatusFn from the worker
        """Import the heavy libraries and pick the device, so the first job starts at once."""
        started = time.perf_counter()
        quiet_imports()
        import diffusers.pipelines.auto_pipeline  # noqa: F401 - the import is the point

        self._device = select_device(self._env.device)
        # As a job with the default Speed setting will use it (the preload, or the first job, says otherwise).
        self._in_use = job_device(self._device, options_for("fast").enabled)
        log.info("Engine ready on %s after %.2f s", self.device.description, time.perf_counter() - started)
        if self._device.note:  # an unknown STUDIO_DEVICE: said where the window shows the engine's state
            log.warning("%s", self._device.note)
            status(**self.device.status_fields, message=self._device.note)
        else:
            status(**self.device.status_fields)

    def preload(self, likely: GenerationRequest, status) -> None:  # noqa: ANN001 - StatusFn from the worker
        """Prepare for the job the person will likely run first, while they write its prompt.

        The model is loaded (on the CPU: the first job's memory plan places it, as for any job). On a GPU, one
        step of that job is also run at its size and CFG, output discarded: the device's first-use costs (CUDA
        context and libraries, kernels loaded on first use, cuDNN's choices, the fast path's captured UNet
        step, the VAE decode's kernels) are paid now instead of in the first picture. LoRAs, a VAE choice and
        input pictures are left out: the first job loads those.
        """
        self._use(likely)
        path = Path(likely.model)
        if not path.exists():
            status(**self.device.status_fields)  # the precision the person's Speed setting picks
            return
        model = self._load(path, status)
        if not warm_up_worthwhile(self.device):
            return
        try:
            trial = prepare_request(replace(
                likely, prompt="", negative_prompt="", steps=1, batch_count=1, seed=0, init_image=None, mask=None,
                reference_image=None, loras=(), vae="", post=(), controls=())).request
        except InvalidRequest as exc:
            log.info("No warm-up run: %s", exc)
            return
        status(**self.device.status_fields, model=model.name,
               message=f"Warming up the GPU for {trial.width}x{trial.height}…")
        started = time.perf_counter()
        unheard = WorkerContext(Job(0, trial), lambda _event: None)  # no job: nothing it says goes out
        for _ in self.generate(trial, unheard):
            pass
        log.info("Warm-up run at %dx%d took %.2f s", trial.width, trial.height, time.perf_counter() - started)
        status(**self.device.status_fields, model=model.name, message="")

    @property
    def device(self) -> DeviceInfo:
        """The device as the current (or last) job uses it: on the CPU, in that job's precision."""
        return self._in_use or self._selected_device()

    def _selected_device(self) -> DeviceInfo:
        if self._device is None:
            self._device = select_device(self._env.device)
        return self._device

    def _use(self, request: GenerationRequest) -> None:
        """The device for ``request``'s job from now on: its Speed setting picks the CPU's precision (a rerun's
        recorded one wins where the processor computes it)."""
        self._in_use = job_device(self._selected_device(), options_for(request.speed).enabled,
                                  precision=request.precision)

    def _ensure_model(self, path: Path, context: JobContext) -> LoadedModel:
        """The model at path, loaded (on the CPU: the job's memory plan places it). Switching keeps the model
        before loaded where that costs nothing (model_keeping), and lets the oldest kept go where needed."""
        return self._load(path, context.status, context.note)

    def _load(self, path: Path, status,  # noqa: ANN001 - StatusFn / JobContext.status
              note: Callable[[str], None] = log.info) -> LoadedModel:
        resolved = path.resolve()
        files = model_files_key(path)  # stat calls only: cheap enough for every job
        if self._model is not None and self._model.path == resolved and in_precision(self._model, self.device):
            if files == self._model.files_key or self._from_memory(self._model, path, files, note):
                return self._model
        self._vae.clear()  # the next model may want another VAE anyway
        if self._model is not None:
            let_reference_go(self._model.text2img)  # a kept IP-Adapter holds up to 3.6 GB
        previous, self._model = self._model, None
        found, let_go, from_memory = self._kept.take(resolved, files, self.device)
        reloaded = previous is not None and previous.path == resolved and previous.files_key != files
        if reloaded:  # its files changed: a copy of what they held before is no use to switch back to
            let_go.append(previous)
        elif previous is not None:
            let_go += self._kept.keep(self._keep(previous))
        if found is not None:
            self._model = found
            log.info("Switched back to %s, kept loaded", path)
            if from_memory is not None:  # its files were removed or damaged since
                note(from_memory)
        else:
            let_go += self._kept.make_room(path, self.device)
        let_gone = bool(let_go)
        del previous, found, let_go  # no reference may outlive the collection that frees their memory
        if let_gone:
            free_memory(self._device)
        if self._model is None:
            status(**self.device.status_fields, message=f"Loading {path.name}…")
            started = time.perf_counter()
            self._model = load_model(path, self.device, self._env.cache_dir / "model-hashes.json",
                                     models_dir=self._env.models_root, cache_dir=self._env.cache_dir, place=False)
            lay_out_for_cpu(self._model.text2img, self.device)
            log.info("Loaded %s in %.2f s", path, time.perf_counter() - started)
            if reloaded:
                note(f"The model {self._model.name} changed on disk; loaded again.")
        self._controls.model_changed(self._model.text2img.unet, self.device.dtype)
        status(**self.device.status_fields, model=self._model.name, message="")
        return self._model

    def _from_memory(self, model: LoadedModel, path: Path, files: ModelStamp, note: Callable[[str], None]) -> bool:
        """Whether the job runs on the model in use as it is, its files having changed since it was loaded, as a
        kept model would (``note_from_memory`` decides both); the job says so."""
        try:
            said = note_from_memory(model, path, files)
        except ModelError:
            self._model = None  # touching its weights could read the damaged pages (or crash on missing ones)
            raise
        if said is not None:
            note(said)
        return said is not None

    def _let_kept_go(self) -> bool:
        return bool(self._kept.let_all_go())

    def held_models(self) -> list[HeldModel]:
        """The model in use, the models kept for switching back (most recent first), and the parts kept for the
        next job that wants them (the fast path's VAE copy and captured steps, a VAE, an IP-Adapter, ControlNets): what
        the Models in Memory window lists."""
        held = [] if self._model is None else [_described(self._model, IN_USE)]
        if self._model is not None:  # a model kept aside let its fast path's parts go (``_keep``)
            held += held_by_fast_path(self._model.text2img.unet, self._model.name)
        held += [_described(model, KEPT) for model in self._kept.models]
        vae = self._vae.kept
        if vae is not None:
            held.append(describe(f"VAE {vae[0].name}", CACHED, [vae[1]], vae[0]))
        adapter = kept_reference(self._model.text2img) if self._model is not None else ()
        if adapter:
            held.append(describe(f"IP-Adapter for {self._model.name}", CACHED, adapter))
        held += [describe(f"ControlNet {source.name}", CACHED, [net], source.path)
                 for source, net in self._controls.kept]
        held += depth_maps.held_models()  # a depth guide's model, on the device and on the CPU (the thumbnails')
        if self._upscale is not None:  # a hires fix's upscaler model
            held += self._upscale.held_models()
        return held

    def release_memory(self, in_use: bool = False) -> list[HeldModel]:
        """Let the kept models and parts go and, with ``in_use``, the model in use (the next job loads it again);
        returns what went. Called between jobs; held_memory collects and empties the device's cache after."""
        let_go = [model for model in self.held_models() if in_use or model.role != IN_USE]
        self._kept.let_all_go()
        self._vae.clear()
        self._controls.clear()
        if self._upscale is not None:
            self._upscale.forget()
        if self._model is not None:
            let_reference_go(self._model.text2img)
            let_graphs_go(self._model.text2img.unet)  # and its bfloat16 VAE copy: the next job makes them again
            if in_use:  # its captured steps, LoRA originals and cached prompts are held by it weakly: they go too
                self._model = None
        return let_go

    @staticmethod
    def _keep(model: LoadedModel | None) -> LoadedModel | None:
        """A model set aside for switching back keeps its weights where they are, not its captured steps."""
        if model is not None and not in_system_memory(model):
            let_graphs_go(model.text2img.unet)
        return model

    def generate(self, request: GenerationRequest, context: JobContext) -> Iterator[tuple[Image.Image, Recipe]]:
        try:
            if request.hires is not None:
                if request.hires.upscaler not in BUILT_IN_UPSCALERS:  # a missing file or library: said at once
                    find_upscaler(self._env, request.hires.upscaler)
                    import_spandrel()
                yield from hires_pictures(request, context, self._generate, self._enlarge)
            else:
                yield from self._generate(request, context)
            return
        except torch.OutOfMemoryError:
            pass
        # Out of the except clause: its traceback's frames hold the job's model and tensors (diffusers' step loop
        # keeps a snapshot of its locals there), so the cache emptied inside it would keep their GPU memory.
        self._model = None
        self._kept.let_all_go()
        self._vae.clear()
        self._controls.clear()
        free_memory(self._device)  # cached TAESD decoders and upscalers go too
        width, height = request.output_size
        advice = oom_advice(self._plan, width, height)
        raise StudioError(
            f"The GPU ran out of memory making a {width}x{height} image; {advice}. Studio "
            "freed its cached models, so the next job starts clean.")

    def _enlarge(self, picture: Image.Image, hires: HiresFix, size: tuple[int, int],
                 context: JobContext) -> Image.Image:
        """A hires fix's first picture at its final size: by Lanczos, or an upscaler model (kept for the next)."""
        if hires.upscaler == LANCZOS:
            return enlarge_lanczos(picture, size)
        return self._upscaler().process(picture, {"model": hires.upscaler, "outscale": hires.scale}, context)

    def use_registry(self, registry: Any) -> None:  # noqa: ANN401 - the plugin host's Registry (a sibling layer)
        self._registry = registry

    def _upscaler(self) -> Upscale:
        """The Upscale filter's own instance, so a hires fix and an Upscale step share one loaded model (and Models
        in Memory lists it once); one of this generator's own where it was made without Studio's registry."""
        if self._registry is not None:
            return self._registry.instance("postprocessor", "upscale", self._env)
        if self._upscale is None:
            self._upscale = Upscale(self._env)
        return self._upscale

    def _generate(self, request: GenerationRequest, context: JobContext,
                  start: LatentStart | None = None) -> Iterator[tuple[Image.Image, Recipe]]:
        """The pictures of one job; ``start``: an image-to-image job starts from latents (a hires fix's)."""
        self._use(request)
        model = self._ensure_model(Path(request.model), context)
        if model.unet_channels not in (4, 9):
            raise ModelError(
                f"The model {model.name} has a UNet with {model.unet_channels} input channels (an instruct or "
                "depth model); Studio runs ordinary and inpainting (9-channel) models.")
        if request.is_inpaint:
            run = inpaint_run(request, model)
        elif model.is_inpainting:
            run = full_mask_run(request, model)
        else:
            run = plain_run(request, model)
        if start is not None:
            self._start_from_latents(run, request, model, start, context)
        run.recipe["precision"] = dtype_name(self.device.dtype)  # bfloat16 or float32 on the CPU, as Speed chose
        # Names are resolved (and LoRAs checked, below) before anything is loaded, so a bad file fails at once.
        controls = [find_controlnet(self._env.models_root, guide.model) for guide in request.controls]
        for source in controls:
            check_fits(source, run.pipe.unet, model.name)
        loras = resolve_loras(self._env.models_root, request.loras)
        vae = find_vae(self._env.models_root, request.vae) if request.vae else None
        reference = request.reference_image
        adapter = find_ip_adapter(self._env.models_root, model.family) if reference is not None else None
        # Hashed while the job runs (a first use reads the whole file): only the pictures' metadata waits.
        hashes = self._env.cache_dir / "model-hashes.json"
        for lora in loras:
            check_weights_file(lora.path)  # a pickle is refused before a byte of it is hashed or loaded
        lora_hashes = [in_background(partial(lora_hash, f.path, hashes), f.path) for f in loras]
        run.later["loras"] = lambda: tuple(LoraRecord(f.name, digest.result(), f.weight)
                                           for f, digest in zip(loras, lora_hashes, strict=True))
        if vae is not None:
            run.recipe["vae_name"] = vae.name
            run.later["vae_hash"] = in_background(partial(model_hash, vae.path, hashes), vae.path).result
        if controls:  # the job's pipeline becomes its ControlNet counterpart, on the same components
            self._controls.attach(run, request, controls, self.device, self._env.models_root,
                                  lambda text: context.status(**self.device.status_fields, model=model.name,
                                                              message=text))
        run.pipe.scheduler = make_scheduler(request.scheduler, model.base_scheduler_config)
        # Every job: the same LoRAs as the last job's stay merged; other LoRAs, or none, put the base weights back.
        use_loras(run.pipe, loras, model.name,
                  lambda: context.status(**self.device.status_fields, message="Loading LoRAs…"))
        with ExitStack() as stack:
            if vae is not None:
                context.status(**self.device.status_fields, message=f"Loading the VAE {vae.name}…")
                stack.enter_context(self._vae.attached(run.pipe, vae, model.name))
            if loras or vae is not None:
                context.status(**self.device.status_fields, model=model.name, message="")
            lay_out_for_cpu(run.pipe, self.device)  # a VAE chosen for the job too
            if adapter is None:
                let_reference_go(run.pipe)  # before the memory plan counts what is free
            # After the LoRAs and VAE are on: the measures (offload hooks, VAE tiling) must cover what runs.
            extra = 0 if adapter is None else reference_bytes(run.pipe, adapter, self.device.dtype.itemsize)
            self._fit_memory(request, model, run.pipe, run.kwargs, context,
                             extra + bytes_to_place(run.pipe, self.device))
            place(run.pipe, model.offloaded, self.device)
            if adapter is not None:
                if model.sliced:  # diffusers' IP-Adapter loading fails on sliced attention, and has no sliced kind
                    run.pipe.disable_attention_slicing()
                    context.note("Attention slicing is off for this job: a reference picture's IP-Adapter "
                                 "attention cannot be sliced.")
                model.sliced = False  # attaching replaces every processor; taking it off leaves plain SDPA
                context.status(**self.device.status_fields, message="Loading the IP-Adapter…")
                run.kwargs.update(stack.enter_context(reference_attached(
                    run.pipe, adapter, reference, request.reference_scale, request.cfg_scale)))
            yield from run_batch(request, model, run, context, self.device, self._plan, self._env)

    @staticmethod
    def _start_from_latents(run: JobRun, request: GenerationRequest, model: LoadedModel, start: LatentStart,
                            context: JobContext) -> None:
        if model.unet_channels != 4 or not request.is_img2img:
            context.note(f"An inpainting model redraws a picture, not latents: the hires fix enlarged it with "
                         f"Lanczos instead of {start.upscaler}.")
            return
        del run.kwargs["image"]  # encoded when the picture is made: the model is placed by then
        size = (request.width, request.height)
        run.per_seed = lambda seed: {"image": start.latents(run.pipe, size)}

    def _fit_memory(self, request: GenerationRequest, model: LoadedModel, pipe: Any, call_kwargs: dict[str, Any],
                    context: JobContext, extra: int = 0) -> None:
        """Plan the job's memory (job_memory), take the measures, and say which and why."""
        device = self.device
        self._plan = plan_job_memory(request, pipe, call_kwargs, context, device, self._controls, self._kept, extra)
        model.offloaded, model.sliced = apply_plan(pipe, self._plan, device, model.offloaded, model.sliced)
        if device.kind != "cpu":
            context.note(self._plan.reason)
            context.status(**device.status_fields, model=model.name, message=self._plan.reason)


def _described(model: LoadedModel, role: str) -> HeldModel:
    return describe(model.name, role, weight_parts(model.text2img), model.path)


def warm_up_worthwhile(device: DeviceInfo) -> bool:
    """A warm-up run pays off on a GPU; on the CPU there are no first-use costs to hide, and a step would take
    seconds of the processor the window shares."""
    return device.kind != "cpu"
