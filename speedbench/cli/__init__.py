"""The command line: a thin layer over BenchmarkRunner and the results folder (imports stay lazy).

Import rule of the cli modules (measured with ``python -X importtime``, on top of what ``--help`` already
loads): a module imports at its top what building the commands needs and anything that costs under ~10 ms;
a command imports in its body what only that command uses when it costs more (the runner ~300 ms, the report
and results readers ~140 ms with numpy, pyarrow ~110 ms, the REST service ~600 ms), so ``speedbench --help``
and ``speedbench engines list`` load none of it (about 150 ms of CPU in all).  The 12-20 ms ones (containers,
engine server, preflight, rich) stay in their commands too: at the top together they added ~55 ms to every
start.

One module per family of commands; each registers itself on ``main`` when imported below.
"""

from __future__ import annotations

import sys

import click

from speedbench.cli.options import setup_logging
from speedbench.config.base import redact_credentials


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"speedbench: error: {redact_credentials(msg)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="speedbench")
def main() -> None:
    """speedbench: does speculative decoding pay on my model, prompts, engine and concurrency?"""

    setup_logging()  # warnings on stderr for every command; a sweep widens it to its progress lines


from speedbench.cli import admin, analysis, data, sweep  # noqa: E402,F401  (registers the commands)

__all__ = ["main"]
