"""What the command line takes from plugins' manifests (no plugin code, no torch): the ids installed and enabled,
for a command's help, and a chosen contribution's parameters as flags."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from studio.cli_exit import EXIT_BAD_INPUT
from studio.cli_params import KIND_WORDS, add_param_flags, check_contributions, option_value
from studio.core.errors import InvalidRequest, StudioError
from studio.plugin_host.registry import GENERATOR

if TYPE_CHECKING:
    from studio.plugin_host.host import PluginHost
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
        host = open_host()
    except StudioError:
        return None  # said when the job is checked
    if not host.registry.has(kind, chosen):
        if {"-h", "--help"} & set(argv):  # else Studio's own help, exit 0, as if the id were fine
            print(f"studio: {_not_there(host, kind, chosen, option)}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT)
        return None  # reported when the job is checked, with the list of what is installed
    contribution = host.registry.get(kind, chosen)
    add_param_flags(parser, contribution.title, contribution.parameters, contribution.builtin)
    if kind == GENERATOR:
        from studio.cli_plugin_help import plugin_generator_usage

        parser.usage = plugin_generator_usage(contribution)  # a bad option of its own: its usage, not Studio's own
    return contribution


def _not_there(host: PluginHost, kind: str, chosen: str, option: str) -> str:
    """Why ``chosen`` is not there to ask the help of: what its run says (check_chosen)."""
    try:
        check_chosen(host, kind, [chosen], option)
    except StudioError as exc:
        return str(exc)
    return f"No {KIND_WORDS[kind]} called {chosen!r} is installed and enabled."


def check_chosen(host: PluginHost, kind: str, names: Sequence[str], option: str) -> None:
    """Each generator or post-processor named is installed and enabled, said as its ``--help`` says it: one whose
    plugin is switched off, how to switch it on; else the ones there are (check_contributions)."""
    from studio.plugin_host.host import DISABLED

    for name in names:
        if host.registry.has(kind, name):
            continue
        plugin_id, _ = host.taken_contributions().get((kind, name), ("", ""))
        if plugin_id and any(record.id == plugin_id and record.status == DISABLED for record in host.records):
            raise InvalidRequest(f"{name} is from the plugin {plugin_id}, which is switched off; "
                                 f"`studio plugins enable {plugin_id}` turns it on.")
    check_contributions(kind, names, host.registry, option)
