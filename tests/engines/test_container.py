"""Container launcher: the run argv, and a fake docker/enroot on PATH running the sglang emulator for real.

The fake (speedbench.testing.fake_container_runtime) checks the port mapping against the engine's argv,
streams the "container" output through its attached client and keeps containers alive past their client
like a daemon; nothing here claims how a real runtime behaves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speedbench.config import BenchmarkConfig, ConfigError, EngineConfig, SDConfig
from speedbench.engines import container as ct
from speedbench.engines import get_adapter
from speedbench.testing import fake_container_runtime as fake
from speedbench.testing.emulators import write_engine_shims
from tests.conftest import sigint_as_at_a_terminal

REPO = Path(__file__).resolve().parents[2]


def engine(**kw) -> EngineConfig:
    base = {
        "name": "sglang",
        "model": "/nonexistent/model",
        "launcher": "docker",
        "container": {"image": "lmsysorg/sglang:v0.5.4"},
    }
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return EngineConfig.model_validate(base)


def docker_argv(ec: EngineConfig, tmp_path: Path, env=None) -> list[str]:
    adapter = get_adapter(ec)
    argv = adapter.launch_argv(SDConfig(method="off"), ec.host, 8123, 4)
    return ct.run_argv(ec, argv, "speedbench-run-sd-off", 8123, ct.mounts_for(ec, [ec.model, str(tmp_path)]), env or {})


def test_docker_argv_pins_maps_mounts_and_labels(tmp_path):
    argv = docker_argv(engine(model=str(tmp_path)), tmp_path, {"HF_TOKEN": "secret-value"})
    image_at = argv.index("lmsysorg/sglang:v0.5.4")
    run, inner = argv[:image_at], argv[image_at + 1 :]
    assert run[:5] == ["docker", "run", "--rm", "--name", "speedbench-run-sd-off"]
    assert "speedbench.managed=1" in run and f"speedbench.pid={os.getpid()}" in run
    assert run[run.index("--gpus") + 1] == "all" and "--ipc=host" in run
    assert run[run.index("-p") + 1] == "127.0.0.1:8123:8123"  # host loopback only
    assert run[run.index("-v") + 1] == f"{tmp_path}:{tmp_path}:ro"  # model read-only, same path, once
    assert run.count("-v") == 1
    assert run[run.index("-e") + 1] == "HF_TOKEN" and "secret-value" not in " ".join(argv)
    assert run[-2:] == ["--entrypoint", "python3"]  # the image's Python, not its entrypoint
    assert inner[:2] == ["-m", "sglang.launch_server"]
    assert inner[inner.index("--host") + 1] == "0.0.0.0" and inner[inner.index("--port") + 1] == "8123"


def test_podman_shm_size_and_cdi_gpus(tmp_path):
    argv = docker_argv(
        engine(launcher="podman", container={"shm_size": "16g", "gpus": "device=0,1", "runtime": "/opt/podman"}),
        tmp_path,
    )
    assert argv[0] == "/opt/podman" and argv[argv.index("--shm-size") + 1] == "16g"
    assert "--ipc=host" not in argv and "--gpus" not in argv
    image_at = argv.index("lmsysorg/sglang:v0.5.4")
    assert " ".join(argv[:image_at]).count("--device nvidia.com/gpu=") == 2
    assert ct.gpu_flags("podman", "all") == ["--device", "nvidia.com/gpu=all"] and ct.gpu_flags("docker", "none") == []


def test_enroot_and_pyxis_argv(tmp_path):
    sqsh = tmp_path / "sglang.sqsh"
    ec = engine(launcher="enroot", model=str(tmp_path), container={"image": str(sqsh)})
    assert ct.prepare_argv(ec, "n") == ["enroot", "create", "--force", "--name", "n", str(sqsh)]
    argv = docker_argv(ec, tmp_path, {"A": "1"})
    assert argv[:2] == ["enroot", "start"] and "-p" not in argv  # enroot shares the host network
    assert argv[argv.index("--mount") + 1] == f"{tmp_path}:{tmp_path}:ro,x-create=dir"
    inner = argv[argv.index("speedbench-run-sd-off") + 1 :]
    assert inner[0] == "python3" and inner[inner.index("--host") + 1] == "127.0.0.1"
    assert ct.remove_argv(ec, "n") == ["enroot", "remove", "--force", "n"]
    pyxis = docker_argv(engine(launcher="pyxis", model=str(tmp_path)), tmp_path)
    assert pyxis[:4] == [
        "srun",
        "--ntasks=1",
        "--container-image=lmsysorg/sglang:v0.5.4",
        "--container-name=speedbench-run-sd-off",
    ]
    assert (
        f"--container-mounts={tmp_path}:{tmp_path}:ro" in pyxis
        and ct.remove_argv(engine(launcher="pyxis"), "n") is None
    )


@pytest.mark.parametrize(
    "image,why", [("lmsysorg/sglang", "not pinned"), ("lmsysorg/sglang:latest", "not pinned"), (None, "needs an image")]
)
def test_unpinned_or_missing_image_is_one_clear_line(image, why):
    with pytest.raises(ConfigError, match=why):
        ct.image_of(engine(container={"image": image}))
    assert ct.image_of(engine(container={"image": "registry:5000/x@sha256:" + "a" * 64}))


def test_images_per_engine_from_a_preset():
    ec = engine(
        container={"image": None, "images": {"sglang": "lmsysorg/sglang:v0.5.4", "vllm": "vllm/vllm-openai:v0.11.0"}}
    )
    assert ct.image_of(ec) == "lmsysorg/sglang:v0.5.4"


def test_container_name_follows_the_results_folder():
    name = ct.container_name(Path("/r/20261201-040000-my run"), "ngram-k3")
    assert name.startswith("speedbench-20261201-040000-my-run-") and name.endswith("-ngram-k3")
    assert ct.container_name(Path("/r/20261201-040000-my run"), "ngram-k3") == name  # found again by its folder
    # two plans' job folders of one name (PLAN_DIR/jobs/<job>) on one node: never one container name, or the
    # second job's teardown (runtime stop / rm -f by name) would remove the first one's running container
    job = "jobs/vllm-cpu-demo-islnatural-sd-off"
    assert ct.container_name(Path("/plan-a", job), "sd-off") != ct.container_name(Path("/plan-b", job), "sd-off")
    assert len(ct.container_name(Path("/r", "x" * 300), "ngram-k3")) <= 120


# ---- the fake runtime, for real ------------------------------------------------------------------------


def calls(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def sweep_dict(
    tmp_path, tokenizer, launcher="docker", image="lmsysorg/sglang:v0.5.4", step_ms="1", requests=12
) -> dict:
    shims = write_engine_shims(tmp_path / "shims")
    return {
        "engine": {
            "name": "sglang",
            "model": str(tmp_path / "shims"),
            "launcher": launcher,
            "startup_timeout_s": 60,
            "container": {"image": image, "gpus": "none"},
            # the fake image's Python must find the shims and this checkout
            "env": {"PYTHONPATH": f"{shims}{os.pathsep}{REPO}"},
            "extra_args": ["--accept", "0.8,0.6,0.4", "--step-ms", step_ms],
        },
        "sd": [{"method": "off"}],
        "output_dir": str(tmp_path / "results"),
        "quality": {"enabled": False},
        "data": {
            "split": "qualitative-mini",
            "tokenizer": tokenizer,
            "prompts_per_category": 1,
            "cache_dir": str(tmp_path / "cache"),
            "turns": "first",
        },  # one request per prompt: counts below
        "load": {"concurrency": [2], "output_len": 16, "requests_per_point": requests, "allow_repeats": True},
    }


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.slow
def test_docker_sweep_end_to_end_leaves_no_container(tmp_path, tiny_tokenizer, fake_runtime):
    from speedbench.runner import BenchmarkRunner

    # a leftover of a killed harness (its pid is gone) and one of a live sweep (this very process)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, pid in (("speedbench-old-sd-off", dead.pid), ("speedbench-live-sd-off", os.getpid())):
        sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
        fake._save(
            {
                "name": name,
                "image": "x:1",
                "pid": sleeper.pid,
                "cmd": [],
                "rm": True,
                "labels": {ct.LABEL: "1", ct.LABEL_HOST: os.uname().nodename, ct.LABEL_PID: str(pid)},
            }
        )
    # the image's Python has sglang 0.5.23 (its tag says v0.5.4): read after the pull, before the server
    fake.add_image("lmsysorg/sglang:v0.5.4", {"sglang": "0.5.23"}, held=False)
    cfg = BenchmarkConfig.model_validate(sweep_dict(tmp_path, tiny_tokenizer))
    result = BenchmarkRunner(cfg, progress=False).run()
    assert [(p.ok, p.sent) for p in result.points] == [(12, 12)]
    left = fake.containers()
    assert set(left) == {"speedbench-live-sd-off"}  # the live sweep's container is kept
    os.killpg(left["speedbench-live-sd-off"]["pid"], signal.SIGKILL)
    run = next(c["argv"] for c in calls(tmp_path) if c["argv"][:1] == ["run"] and "--name" in c["argv"])
    assert run[run.index("--name") + 1] == ct.container_name(result.results_dir, "sd-off")
    port = run[run.index("-p") + 1].split(":")
    assert port[0] == "127.0.0.1" and port[1] == port[2]
    log = (result.results_dir / "logs" / "sglang-sd-off.log").read_text()
    assert log.startswith("$ docker run")
    assert f"fake-runtime: container {run[run.index('--name') + 1]} runs python3 -m sglang.launch_server" in log
    assert any(c["argv"][:2] == ["rm", "-f"] for c in calls(tmp_path))
    manifest = json.loads((result.results_dir / "manifest.json").read_text())
    assert manifest["container"]["image"] == "lmsysorg/sglang:v0.5.4"
    assert manifest["container"]["digest"].startswith("lmsysorg/sglang@sha256:")
    assert manifest["container"]["image_id"].startswith("sha256:")
    assert manifest["container"]["release"] == {"version": "0.5.23", "source": "image", "dist": "sglang", "why": None}
    assert manifest["engine"]["version"] == "0.5.23"
    docker_calls = [c["argv"][0] for c in calls(tmp_path) if c["prog"] == "docker"]
    assert docker_calls.index("pull") < docker_calls.index("run")  # pulled once, before any server
    assert docker_calls.count("pull") == 1
    probe = [c["argv"] for c in calls(tmp_path) if c["argv"][:1] == ["run"] and "--pull" in c["argv"]]
    assert len(probe) == 1 and docker_calls.index("pull") < docker_calls.index("run")  # asked once, once pulled


@pytest.mark.slow
def test_enroot_sweep_end_to_end(tmp_path, tiny_tokenizer, fake_runtime):
    from speedbench.runner import BenchmarkRunner

    sqsh = tmp_path / "sglang.sqsh"
    sqsh.write_bytes(b"hsqs")
    cfg = BenchmarkConfig.model_validate(sweep_dict(tmp_path, tiny_tokenizer, "enroot", str(sqsh)))
    result = BenchmarkRunner(cfg, progress=False).run()
    assert [(p.ok, p.sent) for p in result.points] == [(12, 12)]
    assert fake.containers() == {}
    progs = [c["argv"][0] for c in calls(tmp_path) if c["prog"] == "enroot"]
    assert progs == ["create", "start", "remove"] * 2  # the release probe, then the server


@pytest.mark.slow
def test_engine_failing_at_start_up_leaves_no_container(tmp_path, tiny_tokenizer, fake_runtime):
    from speedbench.engines.server import EngineError
    from speedbench.runner import BenchmarkRunner

    d = sweep_dict(tmp_path, tiny_tokenizer)
    d["engine"]["extra_args"] = ["--no-such-engine-flag"]  # the engine exits at once
    with pytest.raises(EngineError, match="server exited with code 2 during start-up") as e:
        BenchmarkRunner(BenchmarkConfig.model_validate(d), progress=False).run()
    assert "--no-such-engine-flag" in str(e.value)  # the container's output reached the log
    assert fake.containers() == {}


def test_missing_runtime_is_one_clear_line(tmp_path, tiny_tokenizer):
    from click.testing import CliRunner

    from speedbench.cli import main

    d = sweep_dict(tmp_path, tiny_tokenizer)
    d["engine"]["container"]["runtime"] = str(tmp_path / "no-docker")
    (tmp_path / "c.json").write_text(json.dumps(d))
    res = CliRunner().invoke(main, ["sweep", "--config", str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "container runtime" in res.output and "not found" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "results").exists()  # refused before a results folder exists


def test_a_tag_the_registry_lacks_is_one_clear_line(tmp_path, tiny_tokenizer, fake_runtime):
    from click.testing import CliRunner

    from speedbench.cli import main

    (tmp_path / "c.json").write_text(json.dumps(sweep_dict(tmp_path, tiny_tokenizer, image="lmsysorg/sglang:missing1")))
    res = CliRunner().invoke(main, ["sweep", "--config", str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "docker pull lmsysorg/sglang:missing1 failed" in res.output
    assert "manifest unknown" in res.output and "Traceback" not in res.output
    assert not any(c["argv"][0] == "run" for c in calls(tmp_path))
    # a refusal before any point ended leaves no results folder behind (issue 30), never one left "running"
    assert not list((tmp_path / "results").glob("*"))


def _start_cli_sweep(tmp_path, tiny_tokenizer) -> subprocess.Popen:
    cfg_file = tmp_path / "sweep.json"
    cfg_file.write_text(json.dumps(sweep_dict(tmp_path, tiny_tokenizer, step_ms="50", requests=400)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "speedbench.cli", "sweep", "--config", str(cfg_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=sigint_as_at_a_terminal,  # a suite started in the background inherits SIGINT ignored
    )


def _wait_serving(proc, timeout=60.0) -> dict:
    """The container once its engine answers /health, and the load has started on it."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        for c in fake.containers().values():
            if "--port" not in c["cmd"]:  # the engine-release probe (`python3 -c ...`) runs briefly before the server
                continue
            port = c["cmd"][c["cmd"].index("--port") + 1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        time.sleep(2.0)  # the harness measures now (requests in flight)
                        return c
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError("the container never became ready")


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_remove_the_container(tmp_path, tiny_tokenizer, fake_runtime, sig, code):
    proc = _start_cli_sweep(tmp_path, tiny_tokenizer)
    try:
        c = _wait_serving(proc)
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=60) == code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert fake.containers() == {}
    deadline = time.monotonic() + 10
    while not _dead(c["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _dead(c["pid"])


@pytest.mark.slow
def test_harness_sigkill_leftover_is_removed_by_engines_cleanup(tmp_path, tiny_tokenizer, fake_runtime):
    proc = _start_cli_sweep(tmp_path, tiny_tokenizer)
    try:
        c = _wait_serving(proc)
        # worst case: the attached client is killed too (no signal proxied), then the harness
        os.kill(c["client_pid"], signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert set(fake.containers()) == {c["name"]} and not _dead(c["pid"])  # the "daemon" kept it
    out = subprocess.run(
        [sys.executable, "-m", "speedbench.cli", "engines", "cleanup"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert f"removed {c['name']}" in out.stdout
    assert fake.containers() == {}
    deadline = time.monotonic() + 10
    while not _dead(c["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _dead(c["pid"])


def test_dry_run_prints_the_full_container_command(tmp_path, tiny_tokenizer):
    from click.testing import CliRunner

    from speedbench.cli import main

    res = CliRunner().invoke(
        main,
        [
            "sweep",
            "--engine",
            "sglang",
            "--model",
            str(tmp_path),
            "--sd",
            "off",
            "--launcher",
            "docker",
            "--image",
            "lmsysorg/sglang:v0.5.4",
            "--tokenizer",  # the dry run builds the prompt set, as the sweep does before any server
            str(tiny_tokenizer),
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("docker run"))
    assert "--name speedbench-RESULTS-sd-off" in line and f"-v {tmp_path}:{tmp_path}:ro" in line
    assert "--entrypoint python3 lmsysorg/sglang:v0.5.4 -m sglang.launch_server" in line


# what podman 4.3.1 (Debian 12) printed for `podman image inspect` of the image built by make image-cpu
# (abridged to the keys read); docker's Id carries "sha256:"
PODMAN_IMAGE_INSPECT = """[
    {
        "Id": "3031e74edec4dcc41fa75ce7d73001b131996b3a1f3b2c6a8b5b5d2d51aa2d61",
        "Digest": "sha256:32f226a4c6e5d6cdc857db59890660563d804415b2fe106cf40d816a41fc4d99",
        "RepoTags": ["localhost/speedbench-vllm-cpu:0.32.0-28f248f5502f"],
        "RepoDigests": [
            "localhost/speedbench-vllm-cpu@sha256:32f226a4c6e5d6cdc857db59890660563d804415b2fe106cf40d816a41fc4d99"
        ]
    }
]"""


def test_image_inspect_is_read_from_json_as_podman_and_docker_print_it():
    podman = ct.parse_image_inspect(PODMAN_IMAGE_INSPECT)
    assert podman == {
        "digest": "localhost/speedbench-vllm-cpu@sha256:32f226a4c6e5d6cdc857db59890660563d804415b2fe106cf40d816a41fc4d99",
        "id": "sha256:3031e74edec4dcc41fa75ce7d73001b131996b3a1f3b2c6a8b5b5d2d51aa2d61",
    }
    docker = ct.parse_image_inspect(json.dumps([{"Id": "sha256:" + "a" * 64, "RepoDigests": []}]))
    assert docker == {"digest": None, "id": "sha256:" + "a" * 64}  # a local build has no digest
    assert ct.parse_image_inspect("[]") is None and ct.parse_image_inspect("Error: no such image") is None


def test_image_info_asks_for_the_default_json_not_a_template(tmp_path, monkeypatch):
    """podman 4.3 refuses docker's ``--format '{{json .Id}}'`` ("can't evaluate field Id"): no template."""
    seen = []

    def run(argv, timeout=60.0):
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, PODMAN_IMAGE_INSPECT, "")

    monkeypatch.setattr(ct, "_run", run)
    ec = engine(launcher="podman", container={"image": "localhost/speedbench-vllm-cpu:0.32.0-28f248f5502f"})
    assert ct.image_info(ec)["id"].startswith("sha256:3031e74e")
    assert seen == [["podman", "image", "inspect", "localhost/speedbench-vllm-cpu:0.32.0-28f248f5502f"]]
