"""What the command line takes from plugins' manifests (no plugin code, no torch): the ids installed and enabled,
for a command's help, and a chosen contribution's parameters as flags."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from studio.cli_params import add_param_flags, option_value
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.plugin_host.registry import Contribution


def ids_for_help(argv: list[str], command: str, kind: str) -> str:
    """``; one of: ID, ...`` for ``command --help``: the ids installed and enabled now, read from the manifests (no
    plugin code, no torch), so the help names what there is; nothing when no help is asked for."""
    if command not in argv or not {"-h", "--help"} & set(argv):
        return ""
    from studio.cli_plugins import open_host

    try:
        ids = [c.id for c in open_host(safe_mode="--safe-mode" in argv).registry.contributions(kind)]
    except StudioError:
        return ""
    return f"; one of: {', '.join(ids)}".replace("%", "%%") if ids else ""  # argparse formats help with %


def add_plugin_flags(argv: list[str], command: str, option: str, kind: str, parser: argparse.ArgumentParser
                      ) -> Contribution | None:
    """The chosen plugin contribution's parameters as flags (read from its manifest; nothing is imported); the
    contribution, or None where none (or Studio's own generator) is chosen."""
    chosen = option_value(argv, option)
    if command not in argv or not chosen or chosen == "diffusers" or "--safe-mode" in argv:
        return None
    from studio.cli_plugins import open_host

    try:
        contribution = open_host().registry.get(kind, chosen)
    except StudioError:
        return None  # reported when the job is checked, with the list of what is installed
    add_param_flags(parser, contribution.title, contribution.parameters, contribution.builtin)
    return contribution
