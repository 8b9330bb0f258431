"""`speedbench sweep`: run a sweep (or resume one) and print its table."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import click

from speedbench.cli import _fail, main
from speedbench.cli.options import config_options, resolve_from_flags, setup_logging
from speedbench.config import BenchmarkConfig, ConfigError
from speedbench.engines import get_adapter

# Lazy in the commands (rule: speedbench.cli): the runner ~300 ms, outcome ~130 ms and results ~135 ms
# (numpy through the metrics), report.load/render/table ~145 ms, engines.container ~18 ms, engines.server
# ~13 ms, preflight ~16 ms, report.conditions ~18 ms.


@main.command()
@config_options("sweep")
@click.option(
    "--draft-lengths",
    help="Sweep draft lengths: every SD-on method once per k, e.g. 1,2,3,4,5 "
    "(SD off runs once); 'auto' adds the fewest k the draft-length model needs and says which.",
)
@click.option("--dry-run", is_flag=True, help="Print the effective config and server commands; run nothing.")
@click.option(
    "--html-report",
    is_flag=True,
    help="After the sweep, write the self-contained HTML report to <results>/report.html.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    help="Continue the sweep in this results folder: finished points are skipped, the rest re-run. "
    "Without other options the folder's own config is used; with them, they must match it.",
)
def sweep(config_file, preset, dry_run, html_report, sd_spec, draft_length, draft_lengths, resume_dir, **flags) -> None:
    """Run an SD-off / SD-on sweep over concurrencies and write a results folder.

    \b
    Exit status: 0 all points ok; 1 a point failed or exceeded load.max_error_rate;
    2 bad input or resume mismatch; 3 server not started/reachable or died (sweep stopped);
    130 Ctrl-C; 143 SIGTERM. Finished points are kept in every case.
    """
    from speedbench.outcome import EXIT_ENGINE, EXIT_USAGE

    setup_logging(logging.INFO)  # the sweep's progress lines (server started, each point's outcome) on stderr
    try:
        if resume_dir and not (
            config_file
            or preset
            or sd_spec
            or draft_length is not None
            or draft_lengths
            or any(v is not None for v in flags.values())
        ):
            cfg = BenchmarkConfig.from_dict(_stored_config(resume_dir))  # exactly what the sweep started with
        else:  # resuming with options: they change the stored config, so a mismatch names the changed field
            resolved = resolve_from_flags(
                config_file,
                preset,
                sd_spec,
                draft_length,
                {**flags, "draft_lengths": draft_lengths},
                base=_stored_config(resume_dir) if resume_dir else None,
                base_name=f"results folder {resume_dir}",
            )
            cfg = resolved.config
            if str(draft_lengths).strip().lower() == "auto":
                click.echo(f"speedbench: {resolved.origin('sd').removeprefix('flag ')}", err=True)
        from speedbench.runner import BenchmarkRunner

        runner = BenchmarkRunner(cfg)
        if dry_run:  # every check that needs no server, so a dry run passes exactly what a run would start
            runner.check_offline(dry_run=True)
            if runner.release_note:
                click.echo(f"speedbench: {runner.release_note}", err=True)
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
        _fail(
            f"interrupted; finished points are kept in {where} (continue with: speedbench sweep --resume {where})"
            if where
            else "interrupted",
            code,
        )
    except Exception as e:  # one clear line for the user; the engine log has the details
        from speedbench.engines.server import EngineError
        from speedbench.preflight import EndpointError

        where = getattr(getattr(locals().get("runner"), "results", None), "path", None)
        engine = isinstance(e, (EngineError, EndpointError))
        msg = str(e).splitlines()[0] if engine else f"{type(e).__name__}: {e}"
        _fail(msg + (f" (finished points kept in {where})" if where else ""), EXIT_ENGINE if engine else 1)
    _finish(result, cfg, html_report)


def _stored_config(results_dir: str) -> dict:
    from speedbench.results import ResultsDir, ResultsError
    from speedbench.resume import refuse_merged

    rd = ResultsDir.open(results_dir)  # not a results folder: says so
    refuse_merged(rd.manifest())
    try:
        stored = rd.manifest()["config"]
        if not isinstance(stored, dict):
            raise TypeError
    except (ResultsError, KeyError, TypeError):
        raise ConfigError(f"unreadable manifest in {results_dir}; cannot resume") from None
    (stored.get("engine") or {}).pop("api_key", None)  # stored masked; the env/flags supply it again
    return stored


def _finish(result, cfg, html_report: bool = False) -> None:
    """Table of every ended point, the HTML report if asked, what to run next, and an exit status that
    means something."""
    from speedbench.outcome import sweep_outcome
    from speedbench.report.conditions import output_rule
    from speedbench.report.table import render_terminal
    from speedbench.results import ResultsDir

    rd = ResultsDir.open(result.results_dir)
    rows = rd.summary_rows()
    if rows:
        title = f"{result.results_dir}; output: {output_rule(cfg.model_dump(mode='json'))}"
        render_terminal(rows, title=title, units=rd.prompt_units)
    points = rd.points()
    ended = {p["point_id"] for p in points}
    missing = [p for p in rd.manifest().get("points_planned", []) if p not in ended]
    out = sweep_outcome(points, cfg.load.max_error_rate, result.stopped_reason, missing)
    if html_report and points:
        click.echo(f"report: {_write_html_report(result.results_dir)}")
    click.echo(f"results: {result.results_dir}")
    click.echo(f"next: speedbench report {result.results_dir} [--format md|csv|json|html]")
    click.echo(f"      speedbench compare {result.results_dir} <other results folder>")
    click.echo(f"speedbench: {out.line}", err=True)
    if out.exit_code:
        sys.exit(out.exit_code)


def _write_html_report(results_dir) -> Path:
    """The same report `speedbench report --format html` writes (default place: <results>/report.html)."""
    from speedbench.report.load import ReportData
    from speedbench.report.render import render

    res = render(ReportData.load([str(results_dir)]), "html", None, "report")
    for w in res.warnings:
        click.echo(f"speedbench: warning: {w}", err=True)
    return Path(res.written[0]).resolve()


def server_commands(cfg, adapter=None) -> str:
    """The exact server command per SD setting, with any config file the command refers to (dry run).

    With a container launcher: the full runtime command; RESULTS stands for the results folder's name."""

    if adapter is None:
        adapter = get_adapter(cfg.engine)
    out = []
    max_conc = max(cfg.load.concurrency)
    for sd in cfg.sd:
        files = adapter.launch_files(sd, max_conc)
        port = cfg.engine.port or 8000
        argv = adapter.launch_argv(sd, cfg.engine.host, port, max_conc)
        out.append(f"# {sd.label}")
        for path, text in files.items():
            out.append(f"# file {path}:\n" + "\n".join(f"#   {line}" for line in text.rstrip().splitlines()))
        if cfg.engine.launcher != "venv":
            from speedbench.engines import container

            name, env = f"speedbench-RESULTS-{sd.label}", adapter.launch_env(sd)
            prep = container.prepare_argv(cfg.engine, name)
            if prep:
                out.append(shlex.join(prep))
            argv = container.container_argv(cfg.engine, argv, list(files), sd.draft_model, name, port, env)
            out += [f"# env {k} (passed by name)" for k in sorted(env)]
        for d in adapter.launch_differences(sd):
            out.append(
                f"# differs from SD off besides SD: {d['setting']} {d['sd_off']} -> {d['sd_on']} "
                f"(set by {d['set_by']}: {d['why']})"
            )
        out.append(shlex.join(argv))
    return "\n".join(out)
