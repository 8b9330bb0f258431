"""Config flags shared by every command that builds a BenchmarkConfig (sweep, config show, plan)."""

from __future__ import annotations

import logging

import click


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
        from speedbench.core.console import stderr_console  # rich loads with the first message, not the CLI

        try:
            stderr_console().print(self.format(record), style=self.STYLES.get(record.levelno))
        except Exception:
            self.handleError(record)


class _Formatter(logging.Formatter):
    """``speedbench: message`` for progress (INFO), ``speedbench: WARNING: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
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


_CONFIG_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON config file."),
    click.option("--preset", help="Preset from speedbench/resources/presets (e.g. cpu-demo)."),
    click.option("--engine", help="Engine adapter: vllm, sglang, trtllm."),
    click.option("--model", help="Model directory (or hub id) the engine serves."),
    click.option("--engine-python", help="Python of the engine's own environment (env: SPEEDBENCH_ENGINE__PYTHON)."),
    click.option("--endpoint", help="Attach to a running server at this URL instead of launching one."),
    click.option(
        "--launcher",
        type=click.Choice(["venv", "docker", "podman", "enroot", "pyxis"]),
        help="Start the engine from --engine-python's venv (default) or from a container image.",
    ),
    click.option("--image", help="Container image, pinned by tag (e.g. vllm/vllm-openai:v0.11.0) or .sqsh."),
    click.option("--gpu-hour-usd", type=float, help="Price of one GPU-hour: adds $ per million output tokens."),
    click.option(
        "--served-model-name",
        help="Model name requests carry (attach mode: one the server lists in "
        "/v1/models; default: the only one it serves).",
    ),
    click.option("--port", type=int, help="Port for the launched server (default: a free one)."),
    click.option("--tp", "tensor_parallel_size", type=int, help="Tensor parallel size."),
    click.option("--tokenizer", help="Tokenizer directory (default: the model)."),
    click.option("--split", help="Prompt split: bundled name or JSONL path."),
    click.option(
        "--isl",
        help="Exact input length in tokens: 1k, 2k, 8k, 16k, 32k or an integer. Without --split: the throughput split.",
    ),
    click.option(
        "--pad-to-isl/--no-pad-to-isl",
        default=None,
        help="Allow padding a split other than throughput to --isl (each prompt its own padding).",
    ),
    click.option("--categories", help="Comma-separated categories to keep."),
    click.option("--prompts-per-category", type=int),
    click.option(
        "--turns",
        type=click.Choice(["all", "first"]),
        help="Multi-turn prompts: every turn with the model's replies (all, default) or the first only.",
    ),
    click.option("--concurrency", help="Comma-separated concurrency list, e.g. 1,2,4,8,16,32."),
    click.option("--output-len", type=int, help="Output cap per request (default 4096); requests stop at EOS."),
    click.option(
        "--fixed-length/--no-fixed-length",
        default=None,
        help="Ignore EOS: exactly --output-len tokens per request (not SPEED-Bench's default).",
    ),
    click.option(
        "--requests-per-point",
        type=int,
        help="Measured requests per point (default: every prompt the warm-up leaves, each once).",
    ),
    click.option(
        "--allow-repeats/--no-allow-repeats",
        default=None,
        help="Let a point measure a prompt more than once (counted per point).",
    ),
    click.option(
        "--prefix-caching/--no-prefix-caching",
        default=None,
        help="Engine prefix caching (off by default, as in SPEED-Bench).",
    ),
    click.option("--sd", "sd_spec", help="SD settings: off,ngram:3,eagle3:3@/draft/path (method[:k][@draft])."),
    click.option("--draft-length", type=int, help="Draft length for every SD-on setting without its own."),
    click.option("--output-dir", help="Parent folder for results (default: results)."),
    click.option("--name", help="Name of this sweep's results folder."),
]


def config_options(f):
    """The flags every config-taking command shares (sweep, config show, plan)."""
    for opt in reversed(_CONFIG_OPTIONS):
        f = opt(f)
    return f


def resolve_from_flags(config_file, preset, sd_spec, draft_length, flags, base=None, base_name="base"):
    """defaults < preset < config file < SPEEDBENCH_* env < flags (see speedbench.api.config_sources)."""
    from speedbench.api.config_sources import resolve_config

    return resolve_config(
        preset=preset,
        config_file=config_file,
        flags=flags,
        sd_spec=sd_spec,
        draft_length=draft_length,
        base=base,
        base_name=base_name,
    )
