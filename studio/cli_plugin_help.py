"""``studio generate --generator ID --help`` for a plugin's generator: its own options (from its manifest) and the
common options it uses, not Studio's own generator's options, which it does not take (plugins/README.md: a plugin's
generator is given the prompts, size, seed, batch count and its own parameters)."""

from __future__ import annotations

import argparse

from studio.plugin_host.registry import Contribution

# The options of `studio generate` a plugin's generator uses (and the ones every command has).
PLUGIN_GENERATOR_OPTIONS = ("--prompt", "--negative", "--seed", "--size", "--batch-count", "--device", "--post",
                            "--output", "--overwrite", "--generator", "--help")


def narrow_help_to_plugin_generator(parser: argparse.ArgumentParser, contribution: Contribution,
                                    own_dests: set[str]) -> None:
    """Leave out of ``parser``'s help the options ``contribution`` (a plugin's generator) does not use, keep its own
    (``own_dests``: their argparse destinations), and say in the description which common options it takes. Only
    the help changes: an option left out is still parsed (and refused or noted as for any run)."""
    used = [action for action in parser._actions
            if action.dest in own_dests or set(action.option_strings) & set(PLUGIN_GENERATOR_OPTIONS)]
    for action in parser._actions:
        if action not in used:
            action.help = argparse.SUPPRESS
        elif "--size" in action.option_strings and action.help:  # it takes no --init-image either
            action.help = action.help.replace("; with --init-image, the picture's size", "")
    for group in parser._action_groups:  # a group whose options all went: its heading and words go too
        if not any(action.help != argparse.SUPPRESS for action in group._group_actions):
            group.description = None
            group.title = None
    parser.usage = plugin_generator_usage(contribution)
    common = ", ".join(option for option in PLUGIN_GENERATOR_OPTIONS if option not in ("--generator", "--help"))
    # A plugin named as its generator is ("Procedural patterns" from "Procedural patterns") is named once.
    named = contribution.id if contribution.owner == contribution.title else \
        f"{contribution.id}, from {contribution.owner}"
    own = f"; its own options are under \"{contribution.title} options\"" if own_dests else \
        "; it declares no options of its own"
    parser.description = (
        f"Make images with {contribution.title} ({named}). It uses the common "
        f"options {common}{own}. Studio's own generator's options (--model, --steps, --cfg, --scheduler, "
        "--init-image, inpainting, the hires fix, ControlNets, LoRAs, the VAE, --speed, --memory) do not apply to "
        "it and are left out here.").replace("%", "%%")


def plugin_generator_usage(contribution: Contribution) -> str:
    """The usage line of ``studio generate`` with a plugin's generator, for its help and for a bad option's error
    (which else lists every option of Studio's own generator). Written out: argparse's own usage trips over a mutually
    exclusive group whose options are all left out of the help."""
    return f"%(prog)s --generator {contribution.id.replace('%', '%%')} --prompt PROMPT -o OUTPUT [OPTIONS]"
