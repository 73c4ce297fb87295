"""A short list of hub models worth downloading first, for the model library's "get models" view.

Sizes are approximate (they were not read from the hub): the safetensors files Studio would take, fp16
variants where a repo has them, no safety checker, no pickles. Shown as "about N GB", never as exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.annotators import DEPTH_REPO, DEPTH_TITLE

GB = 1_000_000_000


@dataclass(frozen=True)
class StarterModel:
    repo_id: str
    title: str
    kind: str  # short label: "SD-Turbo", "SDXL", "VAE", ...
    approx_bytes: int  # about how much Studio downloads (rounded; not read from the hub)
    why: str  # one line: what it is good for

    @property
    def size_label(self) -> str:
        return f"about {self.approx_bytes / GB:.1f} GB" if self.approx_bytes >= GB / 10 else (
            f"about {round(self.approx_bytes / 1_000_000)} MB")


STARTER_MODELS: tuple[StarterModel, ...] = (
    StarterModel("stabilityai/sd-turbo", "SD-Turbo", "SD-Turbo", int(2.6 * GB),
                 "1-step drafts at 512×512 on a 6 GB GPU."),
    StarterModel("stabilityai/sdxl-turbo", "SDXL-Turbo", "SDXL-Turbo", int(6.9 * GB),
                 "SDXL quality in 1 to 4 steps; needs an 8 GB GPU or more."),
    StarterModel("stable-diffusion-v1-5/stable-diffusion-v1-5", "Stable Diffusion 1.5", "SD 1.5", int(2.1 * GB),
                 "The classic base most LoRAs and community checkpoints are made for."),
    StarterModel("stabilityai/stable-diffusion-xl-base-1.0", "Stable Diffusion XL 1.0", "SDXL", int(6.9 * GB),
                 "Full-quality 1024×1024 images; the base for SDXL LoRAs."),
    StarterModel("madebyollin/taesd", "TAESD preview decoder", "Preview VAE", 10_000_000,
                 "Tiny decoder that shows live previews while SD 1.x and 2.x images render."),
    StarterModel("madebyollin/sdxl-vae-fp16-fix", "SDXL VAE (fp16 fix)", "VAE", 335_000_000,
                 "SDXL's VAE patched to decode in fp16 without black images, using less memory."),
    StarterModel(DEPTH_REPO, DEPTH_TITLE, "Depth maps", 99_000_000,
                 "Makes depth maps of photos for depth control guides (the Depth preprocessor)."),
)
