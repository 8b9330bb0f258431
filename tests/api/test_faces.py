"""The README example and the make targets, checked without a real engine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speedbench.testing.fake_openai import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_example_runs_against_fake_server_via_env(tmp_path, tiny_tokenizer):
    """The example as written; the environment layer points the cpu-demo preset at the fake server."""
    with FakeOpenAIServer(sd_k=3, model="gemma3-270m") as srv:
        env = {
            **os.environ,
            "SPEEDBENCH_ENGINE__ENDPOINT": srv.url,
            "SPEEDBENCH_SD": "ngram:3",
            "SPEEDBENCH_DATA__TOKENIZER": tiny_tokenizer,
            "SPEEDBENCH_DATA__CACHE_DIR": str(tmp_path / "cache"),
            "SPEEDBENCH_OUTPUT_DIR": str(tmp_path / "results"),
        }
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "api_quickstart.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "complete: " + str(tmp_path / "results") in out.stdout
    assert out.stdout.count("ngram-k3 c=") == 2  # concurrency 1 and 4 from the example's keywords
    assert "ngram-k3-c1 {'Coding':" in out.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_targets_are_thin_cli_wrappers(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text(f"include {ROOT / 'mk' / 'gpu.mk'}\n")

    def dry(*args):
        r = subprocess.run(["make", "-s", "-n", "-f", str(mk), *args], capture_output=True, text=True, timeout=30)
        return r.returncode, " ".join(r.stdout.replace("\\\n", " ").split())

    rc, cmd = dry("sweep", "ENGINE=vllm", "ISL=8k", "PRESET=cpu-demo", "CONCURRENCY=1,2,4")
    assert rc == 0
    assert cmd.startswith(
        "env -u SPEEDBENCH_ENGINE_PYTHON .venv/bin/speedbench sweep --preset 'cpu-demo' --engine 'vllm'"
    )
    assert "--isl '8k'" in cmd and "--concurrency '1,2,4'" in cmd
    rc, cmd = dry("qualitative", "SPEEDBENCH=sb")
    assert (
        cmd == "env -u SPEEDBENCH_ENGINE_PYTHON sb sweep --split 'qualitative-mini' --isl none --concurrency '32' "
        "--name 'qualitative'"
    )  # --isl none: a GPU preset's ISL (its throughput split) gives way to the qualitative split
    rc, cmd = dry("throughput", "THROUGHPUT_ISLS=1k 8k")
    assert cmd.count('--isl "$isl"') == 1 and "for isl in 1k 8k" in cmd
    rc, cmd = dry("compare", "RESULTS=a b", "FORMAT=md")
    assert cmd.endswith(".venv/bin/speedbench report 'a' 'b' --format 'md'")
    rc, _ = dry("report")
    assert rc == 0  # -n prints the guard; running it fails:
    r = subprocess.run(
        ["make", "-s", "-f", str(mk), "compare", "RESULTS=only-one"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode != 0 and "two or more" in r.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_gpu_targets_ignore_the_cpu_demo_engine_python_export(tmp_path):
    """The main Makefile exports SPEEDBENCH_ENGINE_PYTHON for the CPU demo; GPU targets must not inherit it."""
    mk = tmp_path / "Makefile"
    mk.write_text(f"export SPEEDBENCH_ENGINE_PYTHON := /cpu/venv/bin/python\ninclude {ROOT / 'mk' / 'gpu.mk'}\n")
    speedbench = str(Path(sys.executable).with_name("speedbench"))
    r = subprocess.run(
        ["make", "-s", "-f", str(mk), "config-show", "PRESET=cpu-demo", f"SPEEDBENCH={speedbench}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("python:"))
    assert "/cpu/venv" not in line and line.endswith("# preset cpu-demo")
