"""The command line: a thin layer over BenchmarkRunner and the results folder (imports stay lazy).

One module per family of commands; each registers itself on ``main`` when imported below.
"""

from __future__ import annotations

import sys

import click


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"speedbench: error: {msg}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="speedbench")
def main() -> None:
    """speedbench: does speculative decoding pay on my model, prompts, engine and concurrency?"""
    from speedbench.cli.options import setup_logging

    setup_logging()  # warnings on stderr for every command; a sweep widens it to its progress lines


from speedbench.cli import admin, analysis, data, sweep  # noqa: E402,F401  (registers the commands)

__all__ = ["main"]
