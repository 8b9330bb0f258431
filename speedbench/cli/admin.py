"""Engines, config, the REST service and multi-node planning: `engines`, `config`, `serve-api`, `plan`, `merge`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from speedbench.api.config_sources import render_with_origins
from speedbench.cli import _fail, main
from speedbench.cli.options import config_options, resolve_from_flags, setup_logging
from speedbench.cli.sweep import server_commands
from speedbench.config import PRESETS_DIR, BenchmarkConfig, ConfigError, load_preset, parse_int_list
from speedbench.engines import engine_names

# Lazy in the commands (rule: speedbench.cli): api.plan ~320 ms (the runner), api.merge and report.load ~145 ms,
# api.rest ~600 ms and absent without the [api] extra, engines.container ~18 ms, rich's table ~20 ms.


@main.group()
def engines() -> None:
    """Engine adapters and presets."""


@engines.command("list")
def engines_list() -> None:
    click.echo("engines: " + ", ".join(engine_names()))
    click.echo("presets: " + ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))))


@engines.command("show")
@click.argument("preset")
@click.option("--draft-length", type=int, help="Draft length for every SD-on setting of the preset.")
def engines_show(preset, draft_length) -> None:
    """Print the exact server commands of a preset, one per SD setting."""

    try:
        base = load_preset(preset)
        if draft_length is not None:
            base["sd"] = [
                dict(s, num_speculative_tokens=draft_length) if s.get("method") != "off" else s
                for s in base.get("sd") or []
            ]
        click.echo(server_commands(BenchmarkConfig.from_dict(base)))
    except ConfigError as e:
        _fail(str(e), 2)


@engines.command("cleanup")
@click.option("--runtime", type=click.Choice(["docker", "podman"]), default="docker", show_default=True)
@click.option("--runtime-path", help="The runtime executable (default: --runtime on PATH).")
@click.option(
    "--all", "force_all", is_flag=True, help="Remove every speedbench container, also those of sweeps still running."
)
def engines_cleanup(runtime, runtime_path, force_all) -> None:
    """Remove containers left by a killed sweep (label speedbench.managed; their harness process is gone)."""
    from speedbench.engines.container import cleanup_leftovers

    try:
        names = cleanup_leftovers(runtime_path or runtime, force_all=force_all)
    except FileNotFoundError:
        _fail(f"container runtime {runtime_path or runtime!r} not found", 2)
    except ConfigError as e:
        _fail(str(e), 2)
    for name in names:
        click.echo(f"removed {name}")
    click.echo(f"{len(names)} leftover container(s) removed")


@main.group("config")
def config_group() -> None:
    """The effective configuration and where each value comes from."""


@config_group.command("show")
@config_options("config show")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def config_show(config_file, preset, sd_spec, draft_length, fmt, **flags) -> None:
    """Print the config a sweep with these options would run (YAML notes each value's source)."""

    try:
        resolved = resolve_from_flags(config_file, preset, sd_spec, draft_length, flags)
    except ConfigError as e:
        _fail(str(e), 2)
    if fmt == "json":
        click.echo(
            json.dumps({"config": resolved.config.model_dump(mode="json"), "origins": resolved.origins()}, indent=2)
        )
    else:
        click.echo(render_with_origins(resolved), nl=False)


@main.command("serve-api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--token",
    envvar="SPEEDBENCH_API_TOKEN",
    help="Bearer token clients must send (env SPEEDBENCH_API_TOKEN); without one, one is generated and printed once.",
)
@click.option(
    "--output-dir", default="results", show_default=True, help="Where runs write results (and are listed from)."
)
@click.option(
    "--allow-root",
    "allow_roots",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder whose paths (model, tokenizer, split, draft model, cache) requests may name; repeatable. "
    "Without it a request may name no path (presets only).",
)
@click.option(
    "--preset-dir",
    "preset_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Extra presets requests may pick with ?preset= (searched before the package's); repeatable.",
)
@click.option(
    "--config",
    "service_config",
    type=click.Path(exists=True, dir_okay=False),
    help="The service's own config (e.g. engine.python, engine.env), under every request body.",
)
@click.option(
    "--allow-origin",
    "allow_origins",
    multiple=True,
    help="A browser origin (https://host:port) allowed to call the service; repeatable.",
)
def serve_api_cmd(host, port, token, output_dir, allow_roots, preset_dirs, service_config, allow_origins) -> None:
    """REST service: POST /runs, GET /runs[/{id}[/report]], GET /compare, GET /health; docs at /docs.

    Every route but /health needs the bearer token. Requests cannot set engine.python, engine.extra_args,
    engine.env, engine.host or output_dir, nor name paths outside --allow-root folders (README, "REST service")."""
    setup_logging(logging.INFO)  # the progress lines of the sweeps it runs, in the service's log
    try:
        from speedbench.api.rest import serve_api
    except ImportError as e:
        _fail(f"the REST service needs FastAPI and uvicorn: pip install 'speedbench[api]' ({e})", 2)
    try:
        serve_api(
            host,
            port,
            token,
            output_dir,
            allow_roots=allow_roots,
            preset_dirs=preset_dirs,
            service_config=service_config,
            allow_origins=allow_origins,
        )
    except ConfigError as e:
        _fail(str(e), 2)


@main.command()
@config_options("plan")
@click.option("--presets", help="Comma-separated presets to cross (default: --preset).")
@click.option("--engines", "engines_list", help="Comma-separated engines to cross (default: the config's engine).")
@click.option("--isl-buckets", help="Comma-separated ISL buckets; 'natural' = the prompts' own length.")
@click.option("--draft-lengths", help="Comma-separated draft lengths for every SD-on method.")
@click.option("--full", is_flag=True, help="SPEED-Bench grid: ISL natural,1k,2k,8k,16k,32k; concurrency 1..64.")
@click.option("--submit", type=click.Choice(["slurm", "local", "debug"]), help="Submit the jobs with submitit.")
@click.option("--partition", help="Slurm partition.")
@click.option("--gpus", type=int, help="GPUs per job (default: the job's tensor-parallel size).")
@click.option("--cpus-per-task", type=int, help="CPUs per job (default: the cluster's).")
@click.option("--time", "time_min", type=int, default=120, show_default=True, help="Job time limit, minutes.")
@click.option("--plan-dir", default="results/plan", show_default=True, help="Jobs write to PLAN_DIR/jobs/<job>.")
@click.option("--wait", is_flag=True, help="Wait for the jobs, then merge each group into PLAN_DIR/merged/<group>.")
@click.option("--job-dry-run", is_flag=True, help="Jobs validate and write their config only (no engine).")
@click.option(
    "--resume",
    is_flag=True,
    help="Resubmit into a plan folder an earlier submission left unfinished: complete jobs are kept (not "
    "submitted), the others continue their folders.",
)
def plan(
    config_file,
    preset,
    sd_spec,
    draft_length,
    presets,
    engines_list,
    isl_buckets,
    draft_lengths,
    full,
    submit,
    partition,
    gpus,
    cpus_per_task,
    time_min,
    plan_dir,
    wait,
    job_dry_run,
    resume,
    **flags,
) -> None:
    """Expand engines × presets × ISL × SD × draft lengths into one job per engine configuration.

    \b
    Exit status with --wait: 0 every job finished and was merged; 1 a job ended without finishing (its
    missing points are named; resubmit with --resume); 2 bad input or the folders could not be merged."""
    from speedbench.api import plan as pl

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
            engines=[x.strip() for x in engines_list.split(",")] if engines_list else None,
            isl_buckets=isls,
            sd_methods=sd_spec,
            draft_lengths=parse_int_list(draft_lengths, "draft lengths") if draft_lengths else None,
            output_dir=plan_dir,
            config_file=config_file,
            flags=flags,
            draft_length=draft_length,
        )
    except ConfigError as e:
        _fail(str(e), 2)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(jobs)} jobs", header_style="bold")
    rows = [j.row() for j in jobs]
    for col in rows[0] if rows else {}:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    Console(width=200).print(table)
    if not submit:
        return
    try:
        todo, complete = pl.split_resubmission(jobs, resume) if not job_dry_run else (jobs, [])
        submitted = pl.submit(
            todo,
            pl.SubmitOptions(
                cluster=submit,
                folder=str(Path(plan_dir) / "submitit"),
                partition=partition,
                gpus=gpus,
                cpus_per_task=cpus_per_task,
                time_min=time_min,
                dry_run=job_dry_run,
                resume=resume,
            ),
        )
    except ConfigError as e:
        _fail(str(e), 2)
    for job in complete:
        click.echo(f"complete {job.job_id}: kept {pl.job_dir(job)}")
    for job, sj in submitted:
        click.echo(f"submitted {job.job_id}: {submit} job {sj.job_id}")
    if wait and not job_dry_run:
        from speedbench.api.plan_wait import wait_and_merge
        from speedbench.report.load import ReportError

        try:
            outcome = wait_and_merge(submitted, Path(plan_dir) / "merged", cluster=submit, complete=complete)
        except (ConfigError, ReportError) as e:  # the jobs' own folders stay as they are
            _fail(f"jobs finished but were not merged: {e}", 2)
        for line in outcome.unfinished:
            click.echo(f"speedbench: {line}", err=True)
        for group, path in outcome.merged.items():
            click.echo(f"merged {group}: {path}")
        for line in outcome.missing:
            click.echo(f"missing {line}")
        if outcome.unfinished or outcome.missing:
            _fail("the plan is not complete: rerun the same plan command with --resume to complete it", 1)


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the merged results.")
@click.option(
    "--allow-generation-mismatch",
    is_flag=True,
    help="Merge although output length, EOS policy, sampling or engine version differ (recorded).",
)
def merge(results, out, allow_generation_mismatch) -> None:
    """Merge results folders measured on the same prompts and generation settings (e.g. one per cluster job)."""
    from speedbench.api.merge import merge_results
    from speedbench.report.load import ReportError
    from speedbench.results import ResultsDir

    try:
        path = merge_results(results, out, allow_generation_mismatch)
    except (ConfigError, ReportError) as e:
        _fail(str(e), 2)
    click.echo(f"merged {len(results)} folders into {path}")
    missing = ResultsDir(path).manifest().get("points_missing") or []
    for m in missing:  # the merge is partial: what it lacks, and where to complete it
        click.echo(f"missing {m['point']}: {m['why']}")
