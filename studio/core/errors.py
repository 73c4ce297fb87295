"""Errors that carry one sentence a person can act on."""

from collections.abc import Sequence


class StudioError(Exception):
    """A failure whose message is a complete, human sentence (shown as-is in the UI and CLI)."""


class InvalidRequest(StudioError):
    """The person asked for something that cannot be done as asked."""


class ModelError(StudioError):
    """A model is missing, unreadable, or in a format Studio refuses to load."""


class ImageError(StudioError):
    """An image file is missing, unreadable, or refused."""


class JobCancelledError(Exception):
    """Raised inside a running job when the person cancelled it; not an error. Its message, when it has one, is
    the sentence the person is shown ("Cancelled during Blur: ..."); without one they are told "Cancelled."."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message without its full stop (its class name when it has none), for
    putting inside a sentence of our own."""
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def os_reason(exc: OSError) -> str:
    """Why a file or system call failed, for putting inside a sentence of our own: the system's words ("Permission
    denied") where it gives them, else the message, without its full stop."""
    return (exc.strerror or str(exc)).rstrip(".")


def and_list(items: Sequence[str]) -> str:
    """Names for a sentence: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
