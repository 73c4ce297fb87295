"""What is wrong with Studio's recipe in an image, in a sentence: the recipe is untrusted JSON (any program can write
a ``studio`` text chunk), and "not valid JSON" for valid JSON with a number for the prompt sent people looking in
the wrong place. Its values are checked against ``Recipe`` by pydantic, strictly (no "12" for 12); for a recipe that
was read, only the values its reader did not use are named."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import fields

from pydantic import TypeAdapter, ValidationError

from studio.core.metadata import Recipe

WHOSE = "Studio's recipe in this image"


def unread_note(text: str) -> str:
    """Why ``Recipe.from_json`` could not read ``text``: the sentence for a recipe that was ignored."""
    wrong, missing = _faults(text)
    if wrong is None:
        return f"{WHOSE} is not valid JSON; it was ignored."
    if wrong == ("",):
        return f"{WHOSE} is JSON but not an object of named values; it was ignored."
    parts = [f"has values of the wrong kind ({', '.join(wrong)})" if wrong else "",
             f"lacks {', '.join(missing)}" if missing else ""]
    return f"{WHOSE} {' and '.join(part for part in parts if part) or 'could not be read'}; it was ignored."


def wrong_kinds_note(text: str, *, dropped: Collection[str] = (), used: Collection[str] = ()) -> str | None:
    """For a recipe that was read: its values that were ignored for their kind, in a sentence, or None.

    Those are the ones its reader dropped (``dropped``) and the ones pydantic finds of the wrong kind, less those the
    reader took all the same (``used``): the reader is lenient ("25" is 25 steps), and a value that was used is
    never called ignored."""
    wrong, _ = _faults(text)
    strictly_wrong = set(wrong or ()) - set(used)
    names = [item.name for item in fields(Recipe) if item.name in dropped or item.name in strictly_wrong]
    return f"{WHOSE} has values of the wrong kind ({', '.join(names)}); they were ignored." if names else None


def _faults(text: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(the fields of the wrong kind, the fields missing), in the recipe's order; (None, ()) for text that is not
    JSON, (("",), ()) for JSON that is not an object."""
    try:
        _recipe_type().validate_json(text, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            return None, ()
        if any(not error["loc"] for error in errors):
            return ("",), ()
        wrong = dict.fromkeys(str(e["loc"][0]) for e in errors if e["type"] != "missing")
        missing = dict.fromkeys(str(e["loc"][0]) for e in errors if e["type"] == "missing")
        return tuple(wrong), tuple(missing)
    return (), ()


@functools.cache
def _recipe_type() -> TypeAdapter[Recipe]:
    return TypeAdapter(Recipe)
