"""The built wheel works on its own: presets, bundled splits and report templates ship inside it.

Builds the wheel from this checkout, installs it into a fresh venv, and runs the CLI from a folder outside
the checkout. The fresh venv borrows the test venv's third-party packages through a plain path entry (no
editable-install hooks, so the checkout's `speedbench` cannot leak in); what is proved is the wheel's own
content, which is what a site-packages install was missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _source_tree(dest: Path) -> Path:
    """The files a fresh clone would have (tracked + untracked-not-ignored), without build leftovers."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_tree(tmp / "src")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp / "dist").glob("speedbench-*.whl"))
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp / "elsewhere"
    outside.mkdir()
    # no checkout on the path, no config from the caller's environment; the engine venv's folder is kept (the
    # dry run reads the engine's version from it, as a real sweep does)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SPEEDBENCH_")}
    env["SPEEDBENCH_HOME"] = str(tmp / "home")
    if "SPEEDBENCH_ENGINE_HOME" in os.environ:
        env["SPEEDBENCH_ENGINE_HOME"] = os.environ["SPEEDBENCH_ENGINE_HOME"]
    return {"bin": env_dir / "bin", "cwd": outside, "env": env, "wheel": wheel}


def _run(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(installed["bin"] / "speedbench"), *args],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_wheel_is_what_runs(installed):
    out = subprocess.run(
        [str(installed["bin"] / "python"), "-c", "import speedbench; print(speedbench.__file__)"],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(installed["bin"].parent) in out.stdout and str(REPO) not in out.stdout


def test_engines_list_and_show_from_the_wheel(installed):
    listed = _run(installed, "engines", "list")
    assert listed.returncode == 0, listed.stderr
    assert "cpu-demo" in listed.stdout and "llama3.3-70b-eagle3-vllm" in listed.stdout
    shown = _run(installed, "engines", "show", "cpu-demo")
    assert shown.returncode == 0, shown.stderr
    assert "ngram" in shown.stdout and "vllm.entrypoints.openai.api_server" in shown.stdout


def test_bundled_split_from_the_wheel(installed, gemma_dir):
    res = _run(installed, "data", "inspect", "--split", "qualitative-mini", "--tokenizer", str(gemma_dir))
    assert res.returncode == 0, res.stderr
    assert "Coding" in res.stdout and "Multilingual" in res.stdout


def test_preset_dry_run_from_the_wheel(installed, gemma_dir):
    # the dry run checks the model path exists: point the preset at the prepared model
    res = _run(installed, "sweep", "--preset", "cpu-demo", "--model", str(gemma_dir), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert '"split": "qualitative-mini"' in res.stdout and "--speculative-config" in res.stdout
