"""`speedbench plan --submit slurm` and the make targets carry the container launcher (fake sbatch; no cluster)."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedbench.api.plan import expand_matrix
from speedbench.cli import main
from speedbench.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"vllm": "vllm/vllm-openai:v0.11.0", "sglang": "lmsysorg/sglang:v0.5.4"}


def test_matrix_jobs_take_the_image_of_their_engine(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "engine:\n  launcher: pyxis\n  container:\n    images:\n"
        + "".join(f"      {k}: {v}\n" for k, v in IMAGES.items())
    )
    jobs = expand_matrix(
        presets=["cpu-demo"], engines=["vllm", "sglang"], sd_methods="off", environ={}, config_file=str(cfg)
    )
    assert {(j.engine, j.row()["launcher"]) for j in jobs} == {(e, f"pyxis {i}") for e, i in IMAGES.items()}


def test_matrix_refuses_an_unpinned_image_before_submitting():
    with pytest.raises(ConfigError, match="not pinned"):
        expand_matrix(
            presets=["cpu-demo"],
            sd_methods="off",
            environ={},
            flags={"launcher": "docker", "image": "vllm/vllm-openai"},
        )


def test_plan_submit_slurm_with_the_pyxis_launcher(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # records the script submitit writes and answers with a job id
    sbatch.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/sbatch.calls\necho Submitted batch job 4242\n')
    sbatch.chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit only checks that it exists
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    res = CliRunner().invoke(
        main,
        [
            "plan",
            "--preset",
            "cpu-demo",
            "--sd",
            "off",
            "--launcher",
            "pyxis",
            "--image",
            IMAGES["vllm"],
            "--submit",
            "slurm",
            "--partition",
            "gpu",
            "--plan-dir",
            str(tmp_path / "plan"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "submitted vllm-cpu-demo-islnatural-sd-off: slurm job 4242" in res.output
    assert f"pyxis {IMAGES['vllm']}" in res.output
    submitted = next((tmp_path / "plan" / "submitit").glob("*_submitted.pkl"))
    job_config = pickle.loads(submitted.read_bytes()).args[0]
    assert job_config["engine"]["launcher"] == "pyxis"
    assert job_config["engine"]["container"]["image"] == IMAGES["vllm"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_targets_pass_the_launcher(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text(f"include {ROOT / 'mk' / 'gpu.mk'}\n")

    def dry(*args):
        r = subprocess.run(["make", "-s", "-n", "-f", str(mk), *args], capture_output=True, text=True, timeout=30)
        return r.returncode, " ".join(r.stdout.replace("\\\n", " ").split())

    rc, cmd = dry("sweep", "LAUNCHER=docker", f"IMAGE={IMAGES['vllm']}", "GPU_HOUR_USD=2.5")
    assert rc == 0 and f"--launcher 'docker' --image '{IMAGES['vllm']}' --gpu-hour-usd '2.5'" in cmd
    rc, cmd = dry("plan", "LAUNCHER=pyxis", f"IMAGE={IMAGES['vllm']}", "EXTRA=--submit slurm")
    assert rc == 0 and "plan" in cmd and "--launcher 'pyxis'" in cmd and cmd.endswith("--submit slurm")
    rc, cmd = dry("containers-cleanup", "LAUNCHER=podman")
    assert rc == 0 and cmd.endswith("engines cleanup --runtime 'podman'")
