"""The one console speedbench writes its messages and progress bar to: rich, on the current stderr.

Log records (the CLI's handler, speedbench.cli.options) and the sweep's progress bar share it, so a line
logged while the bar is live is printed above the bar instead of through it. stdout stays for results.
"""

from __future__ import annotations

import sys

from rich.console import Console

_console: Console | None = None


def stderr_console() -> Console:
    """A rich Console on ``sys.stderr`` as it is now: rebuilt when stderr was replaced (click's CliRunner swaps
    it per command and closes the old one), kept while a live progress bar proxies it (rich's FileProxy)."""
    global _console
    current = getattr(sys.stderr, "rich_proxied_file", sys.stderr)
    if _console is None or _console.file is not current:
        # soft_wrap: a message is never cut into lines at the terminal's width (logs and tests grep whole
        # lines); no markup or highlighting: messages hold paths and brackets, printed as they are
        _console = Console(file=current, soft_wrap=True, markup=False, highlight=False, emoji=False)
    return _console
