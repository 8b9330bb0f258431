"""A plan whose jobs did not all finish: `plan --wait` ends (also where Slurm keeps no accounting), the merge
names the missing points, and a resubmission needs --resume, which keeps the complete jobs.
The real-cluster run of the same path is tests/api/test_plan_slurm.py."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from speedbench.api.plan import expand_matrix, job_dir
from speedbench.api.plan_wait import wait_and_merge
from speedbench.cli import main
from tests.api.test_plan_merge import _fake_results


def _jobs(plan_dir: Path):
    return expand_matrix(presets=["cpu-demo"], output_dir=str(plan_dir), environ={})


def _job_folder(job, status: str = "complete", finished: bool = True) -> Path:
    """A results folder where the job writes, as the runner leaves it (one point planned)."""
    point = f"{job.sd_label}-c{job.config.load.concurrency[0]}"
    path = _fake_results(job_dir(job).parent, job.job_id, "f" * 64, point=point)
    m = json.loads((path / "manifest.json").read_text())
    m["status"] = status
    (path / "manifest.json").write_text(json.dumps(m))
    if not finished:  # cancelled before its point ended
        (path / "points.jsonl").write_text("")
    return path


def test_merge_names_the_points_a_cancelled_job_did_not_finish(tmp_path):
    off, on = _jobs(tmp_path / "plan")
    _job_folder(off)
    cut = _job_folder(on, status="interrupted", finished=False)
    out = tmp_path / "merged"
    res = CliRunner().invoke(main, ["merge", str(job_dir(off)), str(cut), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"missing ngram-k3-c1: interrupted in {cut}" in res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "partial" and "ngram-k3-c1" in m["points_planned"]
    assert [x["point"] for x in m["points_missing"]] == ["ngram-k3-c1"]
    report = CliRunner().invoke(main, ["report", str(out), "--format", "md"])
    assert report.exit_code == 0, report.output
    assert "1 of 2 planned points missing (ngram-k3-c1: interrupted in" in report.output


class _GoneJob:
    """A submitit Slurm job that was cancelled: it wrote no result, sacct (no accounting storage) says
    nothing, so submitit's done() stays False and its result() waits for ever, as the real one does."""

    job_id = "4242"

    def __init__(self, folder: Path) -> None:
        self.paths = SimpleNamespace(result_pickle=folder / "4242_0_result.pkl", stderr=folder / "4242_0_log.err")

    def done(self) -> bool:
        return False

    def result(self):
        while not self.done():
            time.sleep(0.1)


def _fake_squeue(tmp_path, monkeypatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text("#!/bin/sh\n" + script + "\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(
    "squeue,state",
    [
        ("echo 4242 CANCELLED", "CANCELLED"),  # ended within slurmctld's MinJobAge
        ("exit 0", "ENDED"),  # no longer listed
        ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "ENDED"),  # forgotten since
    ],
)
def test_wait_ends_when_slurm_says_a_job_ended_without_a_result(tmp_path, monkeypatch, squeue, state):
    _fake_squeue(tmp_path, monkeypatch, squeue)
    off, on = _jobs(tmp_path / "plan")
    _job_folder(off)
    _job_folder(on, status="interrupted", finished=False)
    got: list = []
    job = _GoneJob(tmp_path)
    t = threading.Thread(
        target=lambda: got.append(
            wait_and_merge([(on, job)], tmp_path / "merged", complete=[off], poll_s=0.1, result_grace_s=0.2)
        ),
        daemon=True,
    )
    t.start()
    t.join(timeout=60)
    assert got, "plan --wait never ended for a job Slurm says has ended"
    (outcome,) = got
    assert outcome.unfinished == [
        f"{on.job_id} (slurm job 4242) ended without finishing: {state}, no result (its log: {job.paths.stderr})"
    ]
    assert list(outcome.merged) == [on.group]
    assert "ngram-k3-c1 (interrupted in" in outcome.missing[0]


def test_a_resubmission_needs_resume_which_keeps_the_complete_jobs(tmp_path):
    plan_dir = tmp_path / "plan"
    for job in _jobs(plan_dir):
        _job_folder(job)
    argv = ["plan", "--preset", "cpu-demo", "--submit", "debug", "--plan-dir", str(plan_dir), "--wait"]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2 and "submitted" not in res.output
    assert "holds results of an earlier submission" in res.output and "give --resume" in res.output
    first = CliRunner().invoke(main, [*argv, "--resume"])
    assert first.exit_code == 0, first.output
    assert "submitted" not in first.output and first.output.count("complete ") == 2
    again = CliRunner().invoke(main, [*argv, "--resume"])  # a later merge goes beside the earlier one
    assert again.exit_code == 0, again.output
    merged = sorted(p.name for p in (plan_dir / "merged").iterdir())
    assert merged == ["cpu-demo-islnatural", "cpu-demo-islnatural-2"]
    points = (plan_dir / "merged" / "cpu-demo-islnatural-2" / "points.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["point_id"] for x in points) == ["ngram-k3-c1", "sd-off-c1"]
