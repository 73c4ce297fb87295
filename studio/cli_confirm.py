"""How a ``studio`` command that deletes, downloads or installs asks first: on a terminal it asks, with no terminal
(a script, a pipe) it refuses unless -y (--yes) was given, in the same words for every such command."""

from __future__ import annotations

import sys

from studio.cli_exit import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_FAILED


def confirmed(question: str) -> bool:
    """The person's yes at the terminal. Ctrl+D (end of input) at the question is a no, not a traceback. Ctrl+C is
    a cancel, as anywhere else: "studio: cancelled." and exit 130 (not "Nothing was removed." and 1, nor a
    "download stopped; run it again to resume" for a download that never started)."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()  # the question's line was left open
        return False
    except KeyboardInterrupt:
        print()
        print("studio: cancelled.", file=sys.stderr)
        # SystemExit, not KeyboardInterrupt: the commands' own Ctrl+C handlers speak of work stopped part-way,
        # and nothing was started yet; their ``finally`` clean-ups still run on the way out.
        raise SystemExit(EXIT_CANCELLED) from None
    return answer.strip().lower() in ("y", "yes")


def no_terminal_to_ask(what_was_not: str, action: str) -> int:
    """What a command that asks first says when stdin is no terminal (a script, a pipe) and -y was not given: "…so
    nothing was ``what_was_not``; pass -y (--yes) to ``action``." and its exit status."""
    print(f"studio: there is no terminal to ask on, so nothing was {what_was_not}; pass -y (--yes) to {action}.",
          file=sys.stderr)
    return EXIT_BAD_INPUT


def declined(what_was_not: str) -> int:
    """What a command says when the person answered no: "Nothing was ``what_was_not``." (a bare exit left them
    guessing whether anything happened), and its exit status, the same for every command that asks."""
    print(f"Nothing was {what_was_not}.")
    return EXIT_FAILED
