"""The ``studio`` command's exit statuses, the same for every command, so a script can tell its outcomes apart."""

from __future__ import annotations

EXIT_FAILED = 1  # the work was tried and did not succeed (a job failed, a write failed), or the person said no
EXIT_BAD_INPUT = 2  # refused before any work: what was asked for cannot be done (as argparse's usage errors)
EXIT_CANCELLED = 130  # 128 + SIGINT: stopped by Ctrl+C (or a cancel), as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (`studio … | head`), as for cat or grep
