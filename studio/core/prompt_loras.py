"""AUTOMATIC1111's LoRA tags in a prompt: ``<lora:name>`` (weight 1), ``<lora:name:0.8>``, and
``<lora:name:te:unet>`` (``te=``/``unet=`` may be named), plus ``<lyco:…>``, which A1111 has read as the same since 1.5.

A1111 takes the tags out of the prompt before the text encoder sees it, and applies their LoRAs; so does Studio
(``take_lora_tags``, which ``prepare_request`` calls), leaving the rest of the prompt tidy where a tag was.

- Weights: A1111 gives a LoRA's text-encoder layers the ``te`` weight and its UNet layers the ``unet`` weight (which
  is the ``te`` one unless given). Studio merges a LoRA at one weight into both, so a tag with two different weights
  is applied at its UNet weight, the one that shapes the picture most, and a note says so.
- A LoRA both chosen (the LoRA list, ``--lora``) and tagged is applied once, at the chosen weight, with a note.
- Only the prompt's tags are LoRAs: A1111 leaves the negative prompt's in its text, and so does Studio (with a note).
- A1111's other extra network, ``<hypernet:name:weight>``, Studio does not have: its tag is taken out of the prompt
  too (the model would read it as words), with a note that says it was left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from studio.core.errors import InvalidRequest
from studio.core.hashing import same_hash
from studio.core.models import SAFE_SUFFIX
from studio.core.requests import MAX_LORA_WEIGHT, MAX_LORAS, LoraChoice
from studio.core.units import short_number

# A1111's extra-network syntax (``<kind:arg:arg…>``) for the LoRA kinds; the arguments are split as A1111 splits them.
LORA_TAG = re.compile(r"<(?:lora|lyco):([^>]*)>")
# Those Studio does not apply, by kind: what a note calls them.
UNSUPPORTED_NETWORKS = {"hypernet": "Hypernetworks"}
UNSUPPORTED_TAG = re.compile(rf"<({'|'.join(UNSUPPORTED_NETWORKS)}):[^>]*>")
_EXTRA_NETWORK_TAG = re.compile(rf"{LORA_TAG.pattern}|{UNSUPPORTED_TAG.pattern}")
_BLANKS = " \t"
_EXAMPLE = "write <lora:NAME:WEIGHT>, e.g. <lora:detail:0.8>"
Named = TypeVar("Named")


@dataclass(frozen=True)
class LoraTag:
    """One tag as A1111 reads it. Weights are left as written: ``lora_choice`` checks them."""

    text: str  # as written: "<lora:ink:0.8>"
    name: str
    text_weight: str | None = None  # None: not given (1)
    unet_weight: str | None = None  # None: as the text encoder's
    unused: tuple[str, ...] = ()  # what Studio does not apply: dyn (a LyCORIS rank), arguments A1111 ignores too

    @property
    def weight_text(self) -> str:
        return next((w for w in (self.unet_weight, self.text_weight) if w is not None), "1")


def read_tags(prompt: str) -> list[LoraTag]:
    """The prompt's LoRA tags, in order, unchecked."""
    tags = []
    for match in LORA_TAG.finditer(prompt):
        positional: list[str] = []
        named: dict[str, str] = {}
        for item in match.group(1).split(":"):
            key, sep, value = item.partition("=")
            if sep and "=" not in value:  # A1111: an item with one "=" is named
                named[key] = value
            else:
                positional.append(item)
        name = positional[0].strip() if positional else ""
        text_weight = named.pop("te", positional[1] if len(positional) > 1 else None)
        unet_weight = named.pop("unet", positional[2] if len(positional) > 2 else None)
        # A1111's fourth argument is dyn, a LyCORIS rank to cut the LoRA to; Studio applies it whole.
        unused = (*(f"dyn={item}" for item in positional[3:4]), *positional[4:],
                  *(f"{key}={value}" for key, value in named.items()))
        tags.append(LoraTag(match.group(0), name, text_weight, unet_weight, tuple(unused)))
    return tags


def written_tag(name: str, weight: float) -> str:
    """The tag A1111 applies this LoRA by: ``<lora:ink:0.8>``. A1111 splits a tag at ":" and ends it at ">", so those
    are left out of the name (as A1111 leaves ":" out of its ``Lora hashes`` names); the weight is always written,
    since A1111's reading of ``Lora hashes`` on paste looks for ``<lora:name:``."""
    return f"<lora:{name.replace(':', '').replace('>', '')}:{tag_weight(weight)}>"


def tag_weight(weight: float) -> str:
    """A weight as A1111's LoRA cards write it into a prompt (JavaScript's number text): "1", "0.8", "-1.5"; the
    shortest text that reads back as the same number."""
    return repr(float(weight)).removesuffix(".0")


def with_tags(prompt: str, tags: Sequence[str]) -> str:
    """The prompt as A1111 is given it, the tags after it with a space (A1111's separator where a card adds a tag):
    A1111 takes them out again, and the encoder reads the rest as it is. ``written_prompt`` undoes it exactly."""
    return " ".join([prompt, *tags]) if prompt else " ".join(tags)


def written_prompt(text: str) -> str | None:
    """The prompt ``with_tags`` was given, where ``text`` ends the way it writes (tags after a space), else None.
    Exact where ``without_tags`` tidies: a prompt's own comma before the tags stays."""
    cut = len(text)
    for match in reversed(list(LORA_TAG.finditer(text))):
        if match.end() != cut:
            break
        cut = match.start()
        if cut == 0:
            return ""
        if text[cut - 1] != " ":
            return None
        cut -= 1
    return text[:cut] if cut < len(text) else None


def without_tags(prompt: str, tags: re.Pattern[str] = LORA_TAG) -> str:
    """The prompt as the text encoder reads it: the LoRA tags (or ``tags``) out, with the spaces, comma or line each
    leaves."""
    text, position = "", 0
    for match in tags.finditer(prompt):
        text = (text + prompt[position:match.start()]).rstrip(_BLANKS)
        rest = prompt[match.end():].lstrip(_BLANKS)
        line_start = not text or text.endswith("\n")
        if rest.startswith(",") and (line_start or text.endswith(",")):
            rest = rest[1:].lstrip(_BLANKS)  # "a, <tag>, b" and "<tag>, b": one comma goes with the tag
        elif rest.startswith("\n") and line_start:
            rest = rest[1:]  # a tag on a line of its own: the line goes
        elif (not rest or rest.startswith("\n")) and text.endswith(","):
            text = text[:-1].rstrip(_BLANKS)  # "a, <tag>" at a line's end
        if text and rest and not text.endswith(("\n", "(", "[")) and not rest.startswith(("\n", ",", ")", "]")):
            text += " "  # "a <tag> b": the words stay apart (a space before a next tag goes with it)
        position = len(prompt) - len(rest)
    return text + prompt[position:]


def lora_choice(tag: LoraTag) -> LoraChoice:
    """The LoRA a tag asks for, at the weight Studio applies (its UNet weight); one sentence for a tag that
    names none or has a weight that is not a number or out of range."""
    if not tag.name:
        raise InvalidRequest(f"The tag {tag.text} in the prompt names no LoRA; {_EXAMPLE}.")
    for written in (tag.text_weight, tag.unet_weight):
        if written is None:
            continue
        try:
            weight = float(written)
        except ValueError:
            raise InvalidRequest(f"The tag {tag.text} in the prompt has the weight {written.strip()!r}, which is "
                                 f"not a number; {_EXAMPLE}.") from None
        if not math.isfinite(weight) or abs(weight) > MAX_LORA_WEIGHT:
            raise InvalidRequest(f"The weight of the LoRA {tag.name} ({tag.text} in the prompt) must be between "
                                 f"{-MAX_LORA_WEIGHT:g} and {MAX_LORA_WEIGHT:g}, not {weight:g}.")
    return LoraChoice(tag.name, float(tag.weight_text), tag=tag.text)


def tag_choices(prompt: str) -> tuple[LoraChoice, ...]:
    """The LoRAs the prompt's tags ask for, named as written (the window and the CLI find their files as they find
    a chosen LoRA's, and hand them in a request's ``loras``, where ``take_lora_tags`` knows them by their tag)."""
    return tuple(lora_choice(tag) for tag in read_tags(prompt))


def describe(choices: Sequence[LoraChoice]) -> str:
    """Each LoRA by the name its tag gives it, with its weight: "ink (0.8), film grain (1)"."""
    return ", ".join(f"{tag_name(c)} ({short_number(c.weight)})" for c in choices)


def take_lora_tags(prompt: str, negative_prompt: str, chosen: Sequence[LoraChoice]
                   ) -> tuple[str, tuple[LoraChoice, ...], list[str]]:
    """The prompt without its LoRA tags; the chosen LoRAs and then the tags' (``applied_loras``); and notes on what
    the person might not expect (the first one lists the LoRAs from the prompt).
    One sentence for a bad tag, a LoRA tagged twice at two weights, or more than MAX_LORAS in all."""
    tags = read_tags(prompt)
    loras, notes = applied_loras(tags, chosen)
    if negative := [tag.text for tag in read_tags(negative_prompt)]:
        notes.append(f"The negative prompt's {', '.join(negative)} {'is' if len(negative) == 1 else 'are'} read as "
                     "words, as A1111 reads them: LoRAs are taken from the prompt only.")
    notes += unsupported_notes(prompt)
    taken_out = tags or UNSUPPORTED_TAG.search(prompt)
    return without_tags(prompt, _EXTRA_NETWORK_TAG) if taken_out else prompt, loras, notes


def applied_loras(tags: Sequence[LoraTag], chosen: Sequence[LoraChoice]) -> tuple[tuple[LoraChoice, ...], list[str]]:
    """The chosen LoRAs and then those of the prompt's ``tags`` (read once by the caller: the window checks them on
    every keystroke), each LoRA once (a tag's LoRA already among ``chosen``, as the window or the CLI found its
    file, is that one), with notes on the tags. One sentence for a bad tag, a LoRA tagged twice at two weights,
    or more than MAX_LORAS in all."""
    taken = {c.tag: c for c in chosen if c.tag}
    # A tag's LoRA whose tag is no longer in the prompt was taken out by an earlier call (a prepared request's).
    loras = [c for c in chosen if not c.tag or c.tag not in {tag.text for tag in tags}]
    notes: list[str] = []
    by_key = {name_key(c.name): c for c in loras}
    applied: list[LoraTag] = []  # the tags whose weight is the one applied
    for tag in tags:
        choice = lora_choice(tag)
        choice = replace(taken[tag.text], weight=choice.weight) if tag.text in taken else choice
        earlier = by_key.get(name_key(choice.name))
        if earlier is None:
            by_key[name_key(choice.name)] = choice
            loras.append(choice)
            applied.append(tag)
        elif not earlier.tag:
            notes.append(f"The LoRA {tag.name} is chosen at {short_number(earlier.weight)} and tagged in the prompt "
                         f"as {tag.text}; it is applied once, at the chosen {short_number(earlier.weight)}.")
        elif earlier.weight != choice.weight:
            raise InvalidRequest(f"The prompt tags the LoRA {tag.name} twice, as {earlier.tag} and {tag.text}; keep "
                                 "one tag, with one weight.")
    from_tags = [c for c in loras if c.tag]
    if from_tags and len(loras) > MAX_LORAS:
        raise InvalidRequest(f"At most {MAX_LORAS} LoRAs can be applied at once, not {len(loras)} "
                             f"({len(loras) - len(from_tags)} chosen and {len(from_tags)} tagged in the prompt).")
    if from_tags:
        notes.insert(0, f"LoRAs from the prompt: {describe(from_tags)}.")
    return tuple(loras), notes + _weight_notes(applied)


def unsupported_notes(prompt: str) -> list[str]:
    """A note for each tag of an extra network Studio does not have (``<hypernet:…>``), which ``take_lora_tags``
    takes out of the prompt: whichever generator the job runs, it was left out."""
    return [f"{UNSUPPORTED_NETWORKS[match.group(1)]} are not supported; {match.group(0)} left out."
            for match in UNSUPPORTED_TAG.finditer(prompt)]


def _weight_notes(tags: Sequence[LoraTag]) -> list[str]:
    notes = []
    for tag in tags:
        if tag.text_weight is not None and tag.unet_weight is not None \
                and float(tag.text_weight) != float(tag.unet_weight):
            notes.append(f"Studio applies a LoRA at one weight: {tag.text} is applied at its UNet weight, "
                         f"{short_number(float(tag.unet_weight))}, to its text-encoder layers too.")
        if tag.unused:
            notes.append(f"{', '.join(tag.unused)} in {tag.text} {'is' if len(tag.unused) == 1 else 'are'} not "
                         "used by Studio; the LoRA is applied whole.")
    return notes


def name_key(name: str) -> str:
    """A LoRA's name as names are matched whatever their letter case: trimmed, case folded, without .safetensors
    ("Styles/INK.safetensors " and "styles/ink" are one name)."""
    return name.strip().casefold().removesuffix(SAFE_SUFFIX)


def the_one_named(name: str, candidates: Iterable[Named], names: Callable[[Named], Iterable[str]]) -> Named | None:
    """The candidate ``name`` names: the one with a name (``names``: its name, file name, path inside the LoRA
    folder ...) spelled as ``name`` is, else the only one with a name that is ``name`` but for letter case, with or
    without .safetensors (``<lora:INK>`` for ink.safetensors, as A1111 and the file systems of Windows and macOS find
    it). None when none is, or when several have that name or differ from it only in case: Studio does not guess
    between them."""
    listed = [(candidate, tuple(names(candidate))) for candidate in candidates]
    exact = [candidate for candidate, its in listed if name in its]
    if exact:  # several spelled as ``name`` is (loras/a/ink and loras/b/ink): no guess
        return exact[0] if len(exact) == 1 else None
    wanted = name_key(name)
    folded = [candidate for candidate, its in listed if any(name_key(n) == wanted for n in its)]
    return folded[0] if len(folded) == 1 else None


def tag_name(choice: LoraChoice) -> str:
    """The name a LoRA's tag gives it ("ink", where its file was found at a path); a chosen one's own name."""
    tags = read_tags(choice.tag) if choice.tag else []
    return tags[0].name if tags else choice.name


def the_library_item(name: str, items: Iterable[Named], names: Callable[[Named], Iterable[str]],
                     alias: Callable[[Named], str], digest: str = "",
                     hash_of: Callable[[Named], str] | None = None) -> Named | None:
    """The library item (a LoRA, VAE, ControlNet…) ``name`` names: by its name (``the_one_named``), else the only
    one whose alias (``alias``: a LoRA's ss_output_name, which A1111 tags and records it by when its "use alias"
    option is on) is ``name`` but for case, else, given the ``digest`` a picture recorded for it (A1111's "Lora
    hashes"), the one (of those with that alias, if several have it) that ``hash_of`` gives that hash, as far as
    both go (``same_hash``: one renamed since). None when none is, or several are. Hashes are asked for only when
    nothing else found it."""
    listed = list(items)
    if (named := the_one_named(name, listed, names)) is not None:
        return named
    wanted = name_key(name)
    aliased = [item for item in listed if alias(item) and name_key(alias(item)) == wanted]
    if len(aliased) == 1:
        return aliased[0]
    if not digest or hash_of is None:
        return None
    hashed = [item for item in aliased or listed if (found := hash_of(item)) and same_hash(digest, found)]
    return hashed[0] if len(hashed) == 1 else None
