"""Config flags shared by every command that builds a BenchmarkConfig (sweep, config show, plan)."""

from __future__ import annotations

import logging

import click
from pydantic import BaseModel

from speedbench.api.config_sources import resolve_config
from speedbench.config import BenchmarkConfig
from speedbench.config.base import redact_credentials
from speedbench.config.cli_flag import FlagSpec, cli_flags


class ConsoleHandler(logging.Handler):
    """The one console channel for speedbench's messages: each record printed through the rich console on
    stderr (speedbench.core.console), which the sweep's progress bar shares, so a line logged while the bar is
    live lands above it.

    The console follows whatever ``sys.stderr`` is when a record is emitted: ``logging.basicConfig`` (or a
    StreamHandler) binds the stream of the first call for the life of the process, and under click's
    CliRunner (tests, the Python API calling commands) that stream is closed after the command, and every
    later warning then failed with 'I/O operation on closed file'."""

    STYLES = {logging.WARNING: "yellow", logging.ERROR: "bold red", logging.CRITICAL: "bold red"}

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        # rich (~12 ms) loads with the first message, not with every start (rule: speedbench.cli)
        from speedbench.core.console import stderr_console

        try:
            stderr_console().print(self.format(record), style=self.STYLES.get(record.levelno))
        except Exception:
            self.handleError(record)


class _Formatter(logging.Formatter):
    """``speedbench: message`` for progress (INFO), ``speedbench: WARNING: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        msg = redact_credentials(super().format(record))  # a URL with a password in any library's message
        return f"speedbench: {msg}" if record.levelno <= logging.INFO else f"speedbench: {record.levelname}: {msg}"


def setup_logging(level: int = logging.WARNING) -> None:
    """Install the console handler once per process: warnings of every library, and speedbench's own records
    from ``level`` on (a sweep passes INFO: its progress lines). Levels only ever widen, never narrow."""
    root = logging.getLogger()
    if not any(isinstance(h, ConsoleHandler) for h in root.handlers):
        root.addHandler(ConsoleHandler())
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    ours = logging.getLogger("speedbench")
    if level < logging.WARNING and (ours.level == logging.NOTSET or ours.level > level):
        ours.setLevel(level)  # speedbench's own INFO only: other libraries' stay quiet


# Options that are no single config field: the sources below the flags, and the SD list (``--sd`` builds it
# with ``--draft-length``; ``--draft-length`` alone rewrites the lower layers' list; see flag_layer).
_SOURCE_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON config file."),
    click.option("--preset", help="Preset from speedbench/resources/presets (e.g. cpu-demo)."),
]
_SD_OPTIONS = [
    click.option("--sd", "sd_spec", help="SD settings: off,ngram:3,eagle3:3@/draft/path (method[:k][@draft])."),
    click.option("--draft-length", type=int, help="Draft length for every SD-on setting without its own."),
]
_CLICK_TYPES = {"int": click.INT, "float": click.FLOAT, "text": click.STRING}


def field_option(spec: FlagSpec):
    """The click option of one flag declared on the schema; None when not given, so lower layers stay."""
    if spec.kind == "bool":
        return click.option(f"{spec.flag}/--no-{spec.flag[2:]}", spec.dest, default=None, help=spec.cli.help)
    kind = click.Choice(spec.choices) if spec.kind == "choice" else _CLICK_TYPES[spec.kind]
    return click.option(spec.flag, spec.dest, type=kind, help=spec.cli.help)


def config_options(command: str, model: type[BaseModel] | None = None):
    """The flags of a config-taking command (sweep, config show, plan): --config, --preset, one flag per
    schema field that declares a ``CLIFlag`` for this command (speedbench.config.cli_flag), --sd, --draft-length."""
    options = [*_SOURCE_OPTIONS, *(field_option(s) for s in cli_flags(model or BenchmarkConfig, command)), *_SD_OPTIONS]

    def decorate(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return decorate


def resolve_from_flags(config_file, preset, sd_spec, draft_length, flags, base=None, base_name="base"):
    """defaults < preset < config file < SPEEDBENCH_* env < flags (see speedbench.api.config_sources)."""

    return resolve_config(
        preset=preset,
        config_file=config_file,
        flags=flags,
        sd_spec=sd_spec,
        draft_length=draft_length,
        base=base,
        base_name=base_name,
    )
