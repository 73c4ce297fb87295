"""A method of one object replaced for a block (a job), and put back after, whoever else stood in meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def standing_in(owner: Any, name: str, stand_in: Callable[..., Any]) -> Iterator[None]:  # noqa: ANN401
    """``owner.name`` is ``stand_in`` in the block; then the object's own (instance) attribute comes back, or none,
    so its class's method answers again. Left as it is if something else replaced the stand-in meanwhile."""
    own = vars(owner).get(name)
    setattr(owner, name, stand_in)
    try:
        yield
    finally:
        if vars(owner).get(name) is stand_in:
            if own is None:
                delattr(owner, name)
            else:
                setattr(owner, name, own)
