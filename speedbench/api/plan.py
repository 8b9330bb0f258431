"""Expand a SPEED-Bench matrix into independent jobs and submit them (Slurm, local processes, or in-process).

Matrix: engines × presets × ISL buckets × SD settings (each SD-on method × draft length, plus SD off).
One job = one engine server configuration = one ``BenchmarkConfig`` whose ``sd`` list holds one setting, so
jobs share nothing and can run on different nodes. Jobs that measure the same prompt set (same preset and
ISL) form a merge group; ``speedbench merge`` (or ``--wait``: speedbench.api.plan_wait) joins each group's
folders into one table; a resubmission with ``--resume`` keeps complete jobs and continues the others
(split_resubmission).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedbench.api.config_sources import resolve_config
from speedbench.config import BenchmarkConfig, ConfigError, parse_isl, parse_sd_list
from speedbench.engines.container import image_of
from speedbench.runner import BenchmarkRunner

# SPEED-Bench's grid (speed-bench-reference.md): qualitative at natural length + throughput ISL buckets.
SPEED_BENCH_ISL: list[str | None] = [None, "1k", "2k", "8k", "16k", "32k"]
SPEED_BENCH_CONCURRENCY = [1, 2, 4, 8, 16, 32, 64]


@dataclass
class PlannedJob:
    job_id: str
    group: str  # jobs of one group measure the same prompts: merge them together
    engine: str
    preset: str | None
    isl: int | None
    sd_label: str
    gpus: int
    config: BenchmarkConfig

    def row(self) -> dict[str, Any]:
        c = self.config
        return {
            "job": self.job_id,
            "group": self.group,
            "engine": self.engine,
            "preset": self.preset or "-",
            "isl": self.isl or "natural",
            "sd": self.sd_label,
            "gpus": self.gpus,
            "concurrency": ",".join(map(str, c.load.concurrency)),
            "output_len": c.load.output_len,
            "launcher": c.engine.launcher
            if c.engine.launcher == "venv"
            else f"{c.engine.launcher} {c.engine.container.image or c.engine.container.images.get(c.engine.name)}",
        }


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")


def sd_settings(base_sd: Sequence[dict], methods: str | None, draft_lengths: Sequence[int] | None) -> list[dict]:
    """SD off once + every SD-on method at every draft length (its own length when none are given)."""
    entries = parse_sd_list(methods) if methods else [dict(s) for s in base_sd]
    out: list[dict] = []
    if any(e.get("method") == "off" for e in entries):
        out.append({"method": "off"})
    for e in entries:
        if e.get("method") == "off":
            continue
        for k in draft_lengths or [e.get("num_speculative_tokens", 3)]:
            item = {kk: v for kk, v in e.items() if kk != "num_speculative_tokens"}
            out.append({**item, "num_speculative_tokens": k})
    return out


def expand_matrix(
    *,
    presets: Sequence[str | None] = (None,),
    engines: Sequence[str] | None = None,
    isl_buckets: Sequence[str | None] | None = None,
    sd_methods: str | None = None,
    draft_lengths: Sequence[int] | None = None,
    output_dir: str = "results/plan",
    resolve: Callable[..., Any] | None = None,
    **resolve_kwargs: Any,
) -> list[PlannedJob]:
    """Jobs for the matrix. ``resolve_kwargs`` (config_file, flags, environ, ...) go to ``resolve_config``
    for each preset, so a job's config has the same precedence as a single sweep's."""

    resolve = resolve or resolve_config
    jobs: list[PlannedJob] = []
    seen: set[str] = set()
    for preset in presets:
        base = resolve(preset=preset, **resolve_kwargs).config
        base_dict = base.model_dump(mode="json")
        for engine in engines or [base.engine.name]:
            for isl_spec in isl_buckets if isl_buckets is not None else [base.data.isl]:
                isl = parse_isl(isl_spec)
                group = _slug(f"{preset or 'config'}-isl{isl or 'natural'}")
                for sd in sd_settings(base_dict["sd"], sd_methods, draft_lengths):
                    d = {
                        **base_dict,
                        "engine": {**base_dict["engine"], "name": engine},
                        "data": {**base_dict["data"], "isl": isl},
                        "sd": [sd],
                    }
                    try:
                        cfg = BenchmarkConfig.model_validate(d)
                    except Exception as e:  # pydantic's message, one line
                        raise ConfigError(f"job {engine}/{preset}/{isl_spec}/{sd}: {e}") from None
                    if cfg.engine.launcher != "venv":  # every job's image pinned before anything is submitted
                        image_of(cfg.engine)
                    label = cfg.sd[0].label
                    job_id = _slug(f"{engine}-{preset or 'config'}-isl{isl or 'natural'}-{label}")
                    if job_id in seen:
                        continue
                    seen.add(job_id)
                    cfg.name = job_id
                    cfg.output_dir = str(Path(output_dir).resolve() / "jobs")  # cluster jobs may start elsewhere
                    jobs.append(
                        PlannedJob(job_id, group, engine, preset, isl, label, cfg.engine.tensor_parallel_size, cfg)
                    )
    return jobs


def job_dir(job: PlannedJob) -> Path:
    return Path(job.config.output_dir) / job.job_id


def run_job(config: Mapping[str, Any], results_dir: str, dry_run: bool = False, resume: bool = False) -> str:
    """What one cluster job executes (module-level so submitit can pickle it by reference). With ``resume``
    a folder an earlier submission left unfinished is continued (its finished points kept)."""

    cfg = BenchmarkConfig.model_validate(dict(config))
    runner = BenchmarkRunner(cfg, progress=False)
    if dry_run:
        runner.validate()
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        (Path(results_dir) / "job-config.json").write_text(cfg.model_dump_json(indent=2))
        return results_dir
    resume = resume and (Path(results_dir) / "manifest.json").is_file()
    return str(runner.run(results_dir, resume=resume).results_dir)


def split_resubmission(jobs: Sequence[PlannedJob], resume: bool) -> tuple[list[PlannedJob], list[PlannedJob]]:
    """(jobs to submit, jobs already complete) for a plan submitted into a plan folder that may hold the
    folders of an earlier submission. Without ``resume`` such a folder is refused: a fresh run would write a
    new manifest over the old one and add its points to the old points.jsonl."""
    todo: list[PlannedJob] = []
    complete: list[PlannedJob] = []
    taken: list[str] = []
    for job in jobs:
        manifest = job_dir(job) / "manifest.json"
        if not manifest.is_file():
            todo.append(job)
        elif not resume:
            taken.append(str(job_dir(job)))
        elif _status(manifest) == "complete":
            complete.append(job)
        else:
            todo.append(job)
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise ConfigError(
            f"the plan folder holds results of an earlier submission ({shown}): give --resume to complete "
            "them (finished jobs and points are kept), or a new --plan-dir"
        )
    return todo, complete


def _status(manifest: Path) -> str | None:
    try:
        return json.loads(manifest.read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None  # unreadable: the job runs again and its resume says what is wrong


@dataclass
class SubmitOptions:
    cluster: str = "slurm"  # slurm | local | debug (submitit AutoExecutor clusters)
    folder: str = "results/plan/submitit"
    partition: str | None = None
    gpus: int | None = None  # per job; default: the job's tensor-parallel size
    time_min: int = 120
    cpus_per_task: int | None = None
    dry_run: bool = False
    resume: bool = False  # jobs continue the unfinished folders of an earlier submission (split_resubmission)


def submit(jobs: Sequence[PlannedJob], opts: SubmitOptions) -> list[tuple[PlannedJob, Any]]:
    """One submitit job per planned job. Returns (planned job, submitit job) pairs."""
    # submitit's first import runs logging.config.dictConfig, which closes every handler on the root
    # logger: ours, and under click's CliRunner the caller's own stderr.  NOCONFIG (its documented switch)
    # leaves logging to the application; its records still reach our handler.
    os.environ.setdefault("SUBMITIT_LOG_LEVEL", "NOCONFIG")
    try:  # the [slurm] extra, needed only to submit
        import submitit
    except ImportError:
        raise ConfigError("job submission needs submitit: pip install 'speedbench[slurm]'") from None
    if opts.cluster not in ("slurm", "local", "debug"):
        raise ConfigError(f"unknown submit target {opts.cluster!r}: use slurm, local or debug")
    executor = submitit.AutoExecutor(folder=str(Path(opts.folder).resolve()), cluster=opts.cluster)
    out = []
    for job in jobs:
        params: dict[str, Any] = {
            "name": job.job_id,
            "timeout_min": opts.time_min,
            "gpus_per_node": opts.gpus if opts.gpus is not None else job.gpus,
        }
        if opts.cpus_per_task:
            params["cpus_per_task"] = opts.cpus_per_task
        if opts.partition:
            params["slurm_partition"] = opts.partition  # ignored by the local/debug executors
        executor.update_parameters(**params)
        sj = executor.submit(run_job, job.config.model_dump(mode="json"), str(job_dir(job)), opts.dry_run, opts.resume)
        out.append((job, sj))
    return out
