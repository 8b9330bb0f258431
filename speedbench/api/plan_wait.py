"""Follow a submitted plan to its end (``speedbench plan --wait``) and merge each group, naming what is missing.

A job can end without a result: cancelled (``scancel``), killed at its time limit, failed. submitit learns
that a Slurm job ended from ``sacct``; on a cluster without accounting storage sacct answers nothing, and
submitit's ``result()`` waits for such a job forever. So a Slurm job also counts as ended once ``squeue``
says so (or no longer knows it), and one that wrote no result is not asked for it. An unfinished job's
folder is merged as it is (its finished points); the points it did not finish are named by the merge
(speedbench.api.merge), and a resubmission with ``--resume`` completes them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speedbench.api.merge import merge_results
from speedbench.api.plan import PlannedJob, job_dir
from speedbench.core.point_id import planned_points
from speedbench.results import ResultsDir


@dataclass
class PlanOutcome:
    merged: dict[str, Path] = field(default_factory=dict)  # group -> merged folder
    unfinished: list[str] = field(default_factory=list)  # one line per job that ended without its result
    missing: list[str] = field(default_factory=list)  # one line per group with planned points not measured


_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT"}


def slurm_end_states(job_ids: Sequence[str]) -> dict[str, str | None]:
    """One ``squeue`` for all jobs: the state each ended in ("CANCELLED", "COMPLETED", ...; "ENDED" once
    slurmctld has forgotten it), None while pending or running, or for all when squeue cannot tell."""
    unknown: dict[str, str | None] = dict.fromkeys(job_ids)
    try:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return unknown  # cannot tell: keep waiting on submitit
    if out.returncode != 0:  # "Invalid job id specified": all of them ended more than MinJobAge ago
        return dict.fromkeys(job_ids, "ENDED") if "invalid job id" in out.stderr.lower() else unknown
    listed = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) >= 2)
    states: dict[str, str | None] = {}
    for jid in job_ids:
        state = listed.get(str(jid), "ENDED").split("+")[0]  # "CANCELLED by 0" prints as "CANCELLED"
        states[jid] = None if state in _ACTIVE else state
    return states


def wait_for(
    submitted: Sequence[tuple[PlannedJob, Any]], cluster: str, poll_s: float = 2.0, result_grace_s: float = 15.0
) -> list[str]:
    """Wait until every job has ended; one line per job that ended without its result."""
    ended: dict[str, str] = {}  # planned job id -> the state Slurm says it ended in
    pending = list(submitted)
    while pending:
        states = slurm_end_states([str(sj.job_id) for _, sj in pending]) if cluster == "slurm" else {}
        still = []
        for job, sj in pending:
            state = states.get(str(sj.job_id))
            if state is not None:
                ended[job.job_id] = state
            elif not sj.done():
                still.append((job, sj))
        pending = still
        if pending:
            time.sleep(poll_s)
    unfinished = []
    for job, sj in submitted:
        if job.job_id in ended and not _result_written(sj, result_grace_s):
            # submitit's result() would wait on sacct for ever: the job wrote no result, so it did not finish
            unfinished.append(
                f"{job.job_id} ({cluster} job {sj.job_id}) ended without finishing: {ended[job.job_id]}, "
                f"no result (its log: {sj.paths.stderr})"
            )
            continue
        try:
            sj.result()
        except Exception as e:  # the job's own error, or submitit's "has not produced any output"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            unfinished.append(f"{job.job_id} ({cluster} job {sj.job_id}) ended without finishing: {first}")
    return unfinished


def _result_written(sj: Any, grace_s: float) -> bool:
    """Whether the job's result file is there (on a shared file system it may show a little after the job
    ended: submitit allows 15 s too)."""
    deadline = time.monotonic() + grace_s
    while not sj.paths.result_pickle.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(1.0, grace_s))
    return True


def free_folder(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... : a later merge (after a resubmission) never replaces an earlier."""
    n, out = 1, path
    while out.exists():
        n += 1
        out = path.with_name(f"{path.name}-{n}")
    return out


def wait_and_merge(
    submitted: Sequence[tuple[PlannedJob, Any]],
    merged_dir: str | Path,
    *,
    cluster: str = "slurm",
    complete: Sequence[PlannedJob] = (),
    poll_s: float = 2.0,
    result_grace_s: float = 15.0,
) -> PlanOutcome:
    """Wait for every job, then merge each group's folders (those of ``complete`` jobs, kept from an earlier
    submission, included) into ``merged_dir/<group>``. Jobs that left no results folder are named with
    their planned points; the others' unfinished points are named by the merged folder itself."""
    outcome = PlanOutcome(unfinished=wait_for(submitted, cluster, poll_s, result_grace_s))
    groups: dict[str, list[PlannedJob]] = {}
    for job in [*complete, *(j for j, _ in submitted)]:
        groups.setdefault(job.group, []).append(job)
    for group, jobs in groups.items():
        folders = [job_dir(j) for j in jobs if (job_dir(j) / "manifest.json").is_file()]
        absent = [p for j in jobs if not (job_dir(j) / "manifest.json").is_file() for p in planned_points(j.config)]
        if folders:
            out = merge_results(folders, free_folder(Path(merged_dir) / group))
            outcome.merged[group] = out
            absent += [f"{m['point']} ({m['why']})" for m in ResultsDir(out).manifest().get("points_missing") or []]
        if absent:
            outcome.missing.append(f"{group}: {len(absent)} planned points not measured: {', '.join(absent)}")
    return outcome


__all__ = ["PlanOutcome", "free_folder", "wait_and_merge", "wait_for"]
