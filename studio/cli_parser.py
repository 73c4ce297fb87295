"""The argument parser of the ``studio`` command and of each of its commands and actions."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn


class CommandParser(argparse.ArgumentParser):
    """An argument no parser takes is refused by the innermost command's parser, with that command's usage
    (``studio plugins uninstall: error: …``). argparse's subparsers pass what they do not know up to the top, which
    refused it with ``studio``'s own usage: no help for an option misspelt on ``studio models list``. Subparsers
    added to one are of its class (argparse's default), so every level refuses its own."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.unrecognized(parsed, list(args or ()), extras)
        return parsed, extras

    def unrecognized(self, parsed: Any, args: list[str], extras: list[str]) -> NoReturn:  # noqa: ANN401
        """Refuse ``extras``, arguments this parser does not take (a subclass may say more on how to give them)."""
        self.error(f"unrecognized arguments: {' '.join(extras)}")
