"""Other tools' sampler names (and separate schedules) as Studio's schedulers, and why where Studio has none."""

from __future__ import annotations

from studio.core.requests import SCHEDULER_NAMES, canonical_scheduler
from studio.core.safe_text import escaped

# Lower-case sampler names of every tool -> the Studio name they share, without the Karras schedule.
_SAMPLER_BASES = {
    "euler": "Euler", "euler a": "Euler a", "euler_a": "Euler a", "euler_ancestral": "Euler a",
    "heun": "Heun", "ddim": "DDIM", "unipc": "UniPC", "uni_pc": "UniPC", "uni_pc_bh2": "UniPC",
    "dpm++ 2m": "DPM++ 2M", "dpmpp_2m": "DPM++ 2M",
    "dpm++ 2m sde": "DPM++ 2M SDE", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
}
# Schedules that mean "the sampler's usual one" (A1111's Automatic/Uniform, ComfyUI's normal, NovelAI's native).
_PLAIN_SCHEDULES = {"", "automatic", "uniform", "normal", "simple", "native", "default"}
MAX_NAME_CHARS = 60  # of a name shown in a sentence: metadata may hold any text


def studio_scheduler(sampler: str | None, schedule: str | None = None) -> str | None:
    """The Studio scheduler another tool's sampler (and separate schedule, if any) corresponds to.

    Reads A1111 names ("DPM++ 2M Karras", or "DPM++ 2M" + "Schedule type: Karras"), ComfyUI and
    Fooocus (sampler_name "dpmpp_2m" + scheduler "karras"), InvokeAI ("dpmpp_2m_k") and NovelAI
    ("k_euler_ancestral"). None where Studio has no equivalent (``missing_scheduler`` says why).
    """
    return _matched(sampler, schedule)[0]


def missing_scheduler(sampler: str | None, schedule: str | None = None) -> str | None:
    """Why Studio has no scheduler for this sampler and schedule, as the start of a sentence ("Studio has no DPM++
    SDE Karras sampler", "Studio has no Euler sampler with the Exponential schedule"); None where it has one, or no
    sampler is named."""
    return _matched(sampler, schedule)[1]


def _matched(sampler: str | None, schedule: str | None) -> tuple[str | None, str | None]:
    """(Studio's scheduler, None) or (None, why there is none); (None, None) for no sampler."""
    if not isinstance(sampler, str) or not sampler.strip():
        return None, None
    name = sampler.strip().lower()
    karras = False
    if name.endswith(" karras"):
        name, karras = name[: -len(" karras")], True
    name = name.removeprefix("k_")  # NovelAI, old InvokeAI and A1111 aliases
    for suffix in ("_karras", "_ka", "_k"):  # InvokeAI's and A1111's aliases
        if name.endswith(suffix):
            name, karras = name[: -len(suffix)], True
            break
    shown_schedule = _shown(schedule) if isinstance(schedule, str) else ""
    schedule_name = shown_schedule.lower()
    plain = schedule_name in _PLAIN_SCHEDULES
    karras = karras or schedule_name == "karras"
    base = _SAMPLER_BASES.get(name) or canonical_scheduler(name)  # Studio's own names, as its command line takes them
    if base is None:
        named = f"{_shown(sampler)}{'' if plain else ' ' + shown_schedule}"
        return None, f"Studio has no {named}{'' if named.lower().endswith('sampler') else ' sampler'}"
    if not plain and schedule_name != "karras":
        return None, f"Studio has no {base} sampler with the {shown_schedule} schedule"
    result = f"{base} Karras" if karras else base
    return (result, None) if result in SCHEDULER_NAMES else (None, f"Studio has no {result} sampler")


def _shown(name: str) -> str:
    """A name from metadata, fit for a sentence: trimmed, its hidden characters escaped, cut to MAX_NAME_CHARS."""
    text = escaped(name.strip(), allowed="")
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"
