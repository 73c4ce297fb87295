"""Studio's own generators and post-processors, declared exactly as a plugin's manifest declares them.

Targets are imported on first use, so listing them costs nothing (the neural ones pull in torch).
"""

from __future__ import annotations

from studio.core.parameters import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    ImageParam,
    IntParam,
    SeedParam,
    TextParam,
)
from studio.plugin_host.registry import GENERATOR, POSTPROCESSOR, Contribution

STYLE = ImageParam("style", label="Style picture", help="The picture whose colours or style to take")
PRESERVE = BoolParam("preserve_colors", label="Keep the picture's own colours",
                     help="Take the style's texture and brushwork but keep the original colours")


def _post(id: str, title: str, target: str, description: str, *params: object) -> Contribution:
    return Contribution(POSTPROCESSOR, id, title, target, parameters=tuple(params), description=description)


BUILTIN_CONTRIBUTIONS: tuple[Contribution, ...] = (
    Contribution(GENERATOR, "diffusers", "Stable Diffusion (diffusers)", "studio.engine.diffusion:DiffusersGenerator"),
    _post("color", "Colour Transfer", "studio.engine.color_filters:ColorTransfer",
          "Give the picture the colours of a reference (Reinhard's L*a*b* mean and spread). Instant; no weights.",
          STYLE),
    _post("histogram", "Colour Transfer (Histogram)", "studio.engine.color_filters:HistogramTransfer",
          "Match each colour channel's histogram to a reference's. Instant; no weights.", STYLE),
    _post("neural", "Neural Style Transfer", "studio.engine.style.neural:NeuralStyle",
          "Repaint the picture in the style of a reference by optimising it against VGG-19 features "
          "(Gatys et al.). The quality option; takes a while. Needs VGG-19 weights.",
          STYLE,
          IntParam("iterations", default=200, min=1, max=2000, step=10,
                   help="More iterations: stronger style, longer wait"),
          IntParam("resolution", default=512, min=64, max=2048, step=64,
                   help="Long side in pixels the style is worked out at; the result is scaled back"),
          FloatParam("content_weight", label="Content weight", default=1.0, min=0.0, max=100.0, step=0.5,
                     help="How much of the picture's own shapes to keep"),
          FloatParam("style_weight", label="Style weight", default=1e5, min=0.0, max=1e9, step=1e4, decimals=0,
                     help="How strongly to follow the style picture"),
          ChoiceParam("init", label="Start from", choices=("content", "noise"),
                      help="The picture itself (faster, keeps shapes) or noise"),
          PRESERVE, SeedParam("seed", default=0)),
    _post("adain", "Fast Style Transfer (AdaIN)", "studio.engine.style.adain:AdaINStyle",
          "Restyle the picture after a reference in about a second (adaptive instance normalisation). "
          "Needs the AdaIN encoder and decoder weights.",
          STYLE,
          FloatParam("alpha", label="Style amount", default=1.0, min=0.0, max=1.0,
                     help="0 keeps the picture's features, 1 takes the style's fully"),
          IntParam("resolution", default=768, min=64, max=2048, step=64,
                   help="Long side in pixels the style is applied at; the result is scaled back"),
          PRESERVE),
    _post("restyle", "Diffusion Restyle", "studio.engine.restyle:Restyle",
          "Redraw the picture with a Stable Diffusion model and a style prompt (image to image); a reference "
          "picture can steer it too, through IP-Adapter.",
          TextParam("prompt", label="Style prompt", default="an oil painting, thick brush strokes",
                    help="What the picture should look like"),
          TextParam("negative", label="Negative prompt", default="", help="What to avoid"),
          FloatParam("denoise", label="Denoising", default=0.5, min=0.05, max=1.0,
                     help="How far the picture may move: low keeps it close, 1 redraws it"),
          IntParam("steps", default=20, min=1, max=150),
          FloatParam("cfg_scale", label="CFG scale", default=7.0, min=0.0, max=30.0, step=0.5, decimals=1),
          SeedParam("seed", default=0),
          TextParam("model", label="Model", default="",
                    help="A diffusers model folder, or the name of one in the models folder; empty in the "
                         "post-processing chain: the model each picture was generated with"),
          ImageParam("reference", label="Reference picture", optional=True,
                     help="Steers the style with a picture too (needs IP-Adapter weights in models/ip-adapter)"),
          FloatParam("reference_strength", label="Reference strength", default=0.6, min=0.0, max=1.0,
                     help="How strongly the reference picture steers")),
    _post("upscale", "Upscale", "studio.engine.upscale:Upscale",
          "Enlarge the picture with a super-resolution model (Real-ESRGAN, 4x-UltraSharp and the "
          "like), in tiles so large pictures fit in memory. Needs the model in models/upscalers.",
          TextParam("model", label="Upscaler", default="",
                    help="A .safetensors file in the models folder's upscalers/ (its name, or a path); "
                         "empty: the first one there"),
          FloatParam("outscale", label="Final scale", default=0.0, min=0.0, max=8.0, step=0.5,
                     help="How many times larger the result is; 0 keeps the model's own scale (a 4x model "
                          "at 2 is scaled down after)"),
          IntParam("tile", label="Tile size", default=512, min=64, max=2048, step=64,
                   help="Pixels a side of each piece the picture is upscaled in; smaller needs less memory"),
          IntParam("tile_overlap", label="Tile overlap", default=32, min=0, max=256, step=8,
                   help="Pixels each piece shares with its neighbours, blended so no seams show")),
)
