"""Running one job's batch: a picture per seed through the prepared pipeline, with live previews, cancelling, and
the recipe each picture carries."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from PIL import Image

from studio.core.environment import GeneratorEnvironment
from studio.core.errors import JobCancelledError
from studio.core.generation import JobContext
from studio.core.hashing import file_sha256, files_key
from studio.core.metadata import Recipe
from studio.core.library_embeddings import embeddings_for
from studio.core.requests import GenerationRequest
from studio.engine.device import DeviceInfo
from studio.engine.device_lookups import device_lookups_pinned
from studio.engine.embeddings import mentioned
from studio.engine.encoded_pictures import encodings_cached
from studio.engine.fast_path import FastJob, fast_job
from studio.engine.fast_path_choices import options_for
from studio.engine.job_runs import JobRun
from studio.engine.loader import LoadedModel
from studio.engine.memory import MemoryPlan, vae_precision_kept
from studio.engine.preview import LivePreviews, latents_to_preview
from studio.engine.prompt_cache import prompts_cached
from studio.engine.prompt_weighting import embeddings_named, prompts_weighted
from studio.engine.taesd import taesd_decoder
from studio.engine.tiled_retry import vae_tiled_on_oom


def run_batch(request: GenerationRequest, model: LoadedModel, run: JobRun, context: JobContext, device: DeviceInfo,
              plan: MemoryPlan | None, env: GeneratorEnvironment) -> Iterator[tuple[Image.Image, Recipe]]:
    """The job's pictures, one per seed, each with its recipe: the pipeline set up and run inside what the whole
    batch shares (embeddings, the fast path, cached prompts and encodings, tiling on running out of memory).
    ``plan``: the job's memory plan (job_memory), which the fast path takes into account."""
    run.kwargs.update(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        num_inference_steps=request.steps,
        guidance_scale=request.cfg_scale,
        output_type="pil",
    )

    prompts = (request.prompt, request.negative_prompt)
    library = embeddings_for(env.models_root, env.linked_dirs, prompts)
    named = embeddings_named(run.pipe, library.files, prompts)
    for note in [*mentioned(prompts, library.refused).values(), *named.notes]:
        context.note(note)
    if named.paths:  # A1111's "TI hashes": model sites link the picture to the embeddings by them
        run.recipe["ti_hashes"] = ", ".join(f"{path.stem}: {file_sha256(path)[:12]}"
                                            for path in named.paths.values())
    # The fast path (CUDA graphs, fused attention) when the job allows it; it is undone when the job ends.
    # Emphasis and long prompts are read as A1111 reads them (prompt_weighting).
    # A prompt read, or a picture encoded, before (this batch's first picture, an earlier job) is not again;
    # nor is the device searched for at every picture.
    with (fast_job(run.pipe, device, plan, model.offloaded, run.kwargs, context.note,
                   options_for(request.speed)) as fast,
          prompts_weighted(run.pipe, named.vectors),
          prompts_cached(run.pipe, also=files_key(named.paths.values())),
          encodings_cached(run.pipe),
          # Over the kept encodings: a retry in tiles looks up, and keeps, a tiled encoding, not a whole one.
          vae_tiled_on_oom(run.pipe, device, context.note, fast.let_graphs_go, also=fast.own_vae),
          device_lookups_pinned(run.pipe)):
        yield from _images(request, model, run, context, env, fast)


def _images(request: GenerationRequest, model: LoadedModel, run: JobRun, context: JobContext, env: GeneratorEnvironment,
            fast: FastJob) -> Iterator[tuple[Image.Image, Recipe]]:
    for index in range(request.batch_count):
        context.check_cancelled()
        seed = request.seed_for(index)

        # Previews are throttled and made without waiting for the device (studio.engine.preview); none at all where
        # nobody would see them (the command line).
        previews = LivePreviews(model.family, latents_to_preview, taesd_decoder(env.models_root, model.family),
                                context.note) if context.wants_previews else None

        def on_step_end(pipeline, step: int, timestep, tensors: dict, _index: int = index,
                        _previews: LivePreviews | None = previews) -> dict:
            if context.is_cancelled():
                raise JobCancelledError()
            total = getattr(pipeline, "num_timesteps", None) or request.steps
            preview = None if _previews is None else _previews(tensors["latents"], step + 1, total)
            context.report_progress(step + 1, total, _index, None if preview is None else run.preview(preview),
                                    preview_box=run.preview_box)
            return {}

        def make_image(seed: int = seed, on_step_end: Callable = on_step_end) -> Image.Image:
            # CPU generator: the same seed gives the same picture on every device (A1111 does the same).
            # A fresh one per call: a fast-path failure makes the picture again, eagerly.
            generator = torch.Generator("cpu").manual_seed(seed)
            with torch.inference_mode(), vae_precision_kept(run.pipe):
                return run.pipe(generator=generator, callback_on_step_end=on_step_end,
                                **run.kwargs, **run.per_seed(seed)).images[0]

        image = fast.run(make_image)
        image = run.finish(image)
        yield image, Recipe(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            steps=request.steps,
            sampler=request.scheduler,
            cfg_scale=request.cfg_scale,
            seed=seed,
            width=image.width,
            height=image.height,
            model_name=model.name,
            model_hash=model.hash,
            generator=request.generator,
            **run.recipe,
            **{name: value() for name, value in run.later.items()},
        )
