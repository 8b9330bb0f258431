"""Run an engine from its official image: docker / podman / enroot / Slurm pyxis around the adapter's argv.

The adapter's argv is kept as is, except its first word (the venv's Python) becomes the image's Python (the
image's entrypoint, docker/podman, is replaced by it) and,
for docker/podman, ``--host`` becomes 0.0.0.0: behind a ``-p 127.0.0.1:P:P`` port mapping the engine must
listen on the container's own interface, while the mapping exposes it on the host's loopback only.
Model, draft model and any launch file are mounted read-only at the same path, so every path in the argv
is valid inside.  The ``run`` client stays attached: its output (the engine log) streams into ``logs/``.

Teardown on every exit path: the client runs in a ``ServerProcess`` (own process group, stopped by the
runner, atexit, and SIGTERM when the harness dies), and ``ContainerServer.stop`` also asks the runtime to
stop and remove the container by name.  After a harness SIGKILL the container may outlive its client
(docker/podman keep it in their daemon/conmon): every container carries labels naming this host and the
harness pid, and ``cleanup_leftovers`` (run before each containerised sweep, and by
``speedbench engines cleanup``) removes those whose harness is gone.  enroot and pyxis keep no daemon: an
enroot container is a root filesystem the next run's ``enroot create --force`` replaces; pyxis containers
end with the Slurm step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from speedbench.config import ConfigError, EngineConfig
from speedbench.engines.server import ServerProcess

log = logging.getLogger(__name__)

RUNTIMES = {"docker": "docker", "podman": "podman", "enroot": "enroot", "pyxis": "srun"}
LABEL = "speedbench.managed"  # every container speedbench starts carries it
LABEL_HOST, LABEL_PID = "speedbench.host", "speedbench.pid"
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_.-]+")


def runtime_exe(ec: EngineConfig) -> str:
    return ec.container.runtime or RUNTIMES[ec.launcher]


def image_of(ec: EngineConfig) -> str:
    """The configured image for this engine, checked: pinned by tag or digest (never implicit ``latest``)."""
    image = ec.container.image or ec.container.images.get(ec.name)
    if not image:
        raise ConfigError(
            f"engine.launcher={ec.launcher} needs an image: set engine.container.image "
            f"(or engine.container.images.{ec.name})"
        )
    if ec.launcher == "enroot":
        if not image.endswith(".sqsh"):
            raise ConfigError(
                f"enroot needs a squashfs image file (enroot import docker://{image} makes one); got {image!r}"
            )
        return image
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
        raise ConfigError(
            f"container image {image!r} is not pinned: name a version tag (e.g. "
            f"vllm/vllm-openai:v0.11.0) or a digest, never latest"
        )
    return image


def check_launch(ec: EngineConfig) -> None:
    """Before anything is created: the image is pinned and the runtime executable exists."""
    image_of(ec)
    if shutil.which(runtime_exe(ec)) is None:
        raise ConfigError(
            f"container runtime {runtime_exe(ec)!r} not found (install it, or set engine.container.runtime)"
        )


def container_name(results_dir: Path, sd_label: str) -> str:
    """``speedbench-<results folder>-<path hash>-<SD label>``: one container per server, found again by its
    folder. The hash of the folder's full path keeps apart folders of one name: the job folders of two plans
    (PLAN_DIR/jobs/<job>) on one node would otherwise share a name, and the second job's teardown would stop
    and remove the first one's running container."""
    path = Path(results_dir).resolve()
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return _NAME_BAD.sub("-", f"speedbench-{path.name[:80]}-{tag}-{sd_label}")[:120]


def mounts_for(ec: EngineConfig, paths: Sequence[str | None]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only): every existing local path the argv names, at the same path; then extras."""
    out: list[tuple[str, str, bool]] = []
    for p in paths:
        if p and Path(p).exists():
            src = str(Path(p).resolve())
            if all(src != m[0] for m in out):
                out.append((src, src, True))
    for m in ec.container.mounts:
        parts = m.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ConfigError(f"bad container mount {m!r}: use SRC:DST or SRC:DST:ro")
        out.append((parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"))
    return out


def in_container_argv(ec: EngineConfig, engine_argv: Sequence[str]) -> list[str]:
    """The adapter's argv as the image runs it: its Python; docker/podman listen on every interface inside."""
    argv = [ec.container.python, *engine_argv[1:]]
    if ec.launcher in ("docker", "podman") and "--host" in argv:
        argv[argv.index("--host") + 1] = "0.0.0.0"
    return argv


def gpu_flags(launcher: str, gpus: str) -> list[str]:
    """docker: ``--gpus``; podman: CDI devices (``--device nvidia.com/gpu=all``, NVIDIA Container Toolkit)."""
    if gpus == "none":
        return []
    if launcher == "docker":
        return ["--gpus", gpus]
    ids = ["all"] if gpus == "all" else gpus.removeprefix("device=").split(",")
    return [x for i in ids for x in ("--device", f"nvidia.com/gpu={i.strip()}")]


def run_argv(
    ec: EngineConfig,
    engine_argv: Sequence[str],
    name: str,
    port: int,
    mounts: Sequence[tuple[str, str, bool]],
    env: dict[str, str],
) -> list[str]:
    """The full container command (argv list). ``env`` values travel by name only where the runtime allows."""
    exe, image, c = runtime_exe(ec), image_of(ec), ec.container
    inner = in_container_argv(ec, engine_argv)
    if ec.launcher in ("docker", "podman"):
        argv = [
            exe,
            "run",
            "--rm",
            "--name",
            name,
            "--label",
            f"{LABEL}=1",
            "--label",
            f"{LABEL_HOST}={socket.gethostname()}",
            "--label",
            f"{LABEL_PID}={os.getpid()}",
        ]
        argv += gpu_flags(ec.launcher, c.gpus)
        argv += ["--shm-size", c.shm_size] if c.shm_size else ["--ipc=host"]
        argv += ["-p", f"{ec.host}:{port}:{port}"]
        for src, dst, ro in mounts:
            argv += ["-v", f"{src}:{dst}" + (":ro" if ro else "")]
        for k in sorted(env):
            argv += ["-e", k]  # the value comes from the client's environment, never from the argv
        # the image's own entrypoint (vllm/vllm-openai: the API server) would take our argv as its arguments
        return argv + ["--entrypoint", inner[0], image, *inner[1:]]
    if ec.launcher == "enroot":
        argv = [exe, "start"]
        for src, dst, ro in mounts:
            argv += ["--mount", f"{src}:{dst}:" + ("ro,x-create=dir" if ro else "x-create=dir")]
        for k in sorted(env):
            argv += ["--env", k]
        return argv + [name, *inner]
    # pyxis: one srun step inside the allocation; srun passes the environment through (--export=ALL)
    argv = [exe, "--ntasks=1", f"--container-image={image}", f"--container-name={name}"]
    if mounts:
        argv.append("--container-mounts=" + ",".join(f"{s}:{d}" + (":ro" if ro else "") for s, d, ro in mounts))
    return argv + [*inner]


def prepare_argv(ec: EngineConfig, name: str) -> list[str] | None:
    """A step before ``run`` (enroot unpacks the image into a named root filesystem), or None."""
    if ec.launcher == "enroot":
        return [runtime_exe(ec), "create", "--force", "--name", name, image_of(ec)]
    return None


def remove_argv(ec: EngineConfig, name: str) -> list[str] | None:
    if ec.launcher in ("docker", "podman"):
        return [runtime_exe(ec), "rm", "-f", name]
    if ec.launcher == "enroot":
        return [runtime_exe(ec), "remove", "--force", name]
    return None  # pyxis: the container ends with its Slurm step


def _run(argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def image_info(ec: EngineConfig) -> dict | None:
    """``{"digest": "repo@sha256:..." or None (a local build has none), "id": "sha256:..."}`` of the image as
    the runtime holds it (docker/podman), or None when it does not hold it."""
    try:
        out = _run([runtime_exe(ec), "image", "inspect", image_of(ec)])
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_image_inspect(out.stdout) if out.returncode == 0 else None


def parse_image_inspect(stdout: str) -> dict | None:
    """The digest and id from ``image inspect``'s default JSON (an array of one object), read as JSON and not
    through ``--format``: the template field is ``.Id`` in docker and ``.ID`` in podman (4.3 refuses
    ``.Id``), while the JSON keys are ``Id`` and ``RepoDigests`` in both. podman's ``Id`` is bare hex,
    docker's carries ``sha256:``; both are recorded with it."""
    try:
        found = json.loads(stdout)
    except ValueError:
        return None
    info = found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None
    if info is None or not isinstance(info.get("Id"), str):
        return None
    image_id = info["Id"] if info["Id"].startswith("sha256:") else "sha256:" + info["Id"]
    return {"digest": (info.get("RepoDigests") or [None])[0], "id": image_id}


def ensure_image(ec: EngineConfig, timeout_s: float) -> dict | None:
    """Pull the image when the runtime does not hold it yet, so its digest is known before any server
    starts and a bad tag is one clear line, not a server that never came up."""
    if ec.launcher not in ("docker", "podman"):
        return None
    info = image_info(ec)
    if info is None:
        log.info("pulling %s", image_of(ec))
        out = _run([runtime_exe(ec), "pull", image_of(ec)], timeout=timeout_s)
        if out.returncode != 0:
            last = (out.stdout.strip().splitlines() or [""])[-1]
            raise ConfigError(f"{runtime_exe(ec)} pull {image_of(ec)} failed (exit {out.returncode}): {last}")
        info = image_info(ec)
    return info


class ContainerServer(ServerProcess):
    """A ``ServerProcess`` whose process is the runtime's attached client; stop also removes the container."""

    def __init__(self, ec: EngineConfig, name: str, argv: list[str], log_path: Path, health_url: str, **kw) -> None:
        super().__init__(argv, log_path, health_url, **kw)
        self.ec, self.name = ec, name

    def start(self) -> ContainerServer:
        prep = prepare_argv(self.ec, self.name)
        if prep is not None:
            try:
                out = _run(prep, timeout=self.startup_timeout_s)
            except FileNotFoundError:
                raise ConfigError(f"container runtime {prep[0]!r} not found (engine.container.runtime)") from None
            if out.returncode != 0:
                raise ConfigError(
                    f"{' '.join(prep[:2])} failed (exit {out.returncode}): "
                    f"{(out.stdout.strip().splitlines() or [''])[-1]}"
                )
        super().start()  # the runtime itself was found by check_launch before the sweep began
        return self

    def stop(self, grace_s: float = 20.0) -> None:
        try:
            if self.proc is not None and self.ec.launcher in ("docker", "podman"):
                quiet([runtime_exe(self.ec), "stop", "-t", str(int(grace_s)), self.name], grace_s + 30)
        finally:
            try:
                super().stop(grace_s)
            finally:
                rm = remove_argv(self.ec, self.name)
                if rm is not None:
                    quiet(rm, 60)


def quiet(argv: list[str], timeout: float) -> None:
    """Best effort: a container already gone is what we want."""
    try:
        _run(argv, timeout)
    except (OSError, subprocess.SubprocessError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_containers(runtime: str, *, all_hosts_pids: bool = False) -> list[str]:
    """Names of speedbench containers (docker/podman) whose harness process on this host is gone.

    Listed by label with ``ps``, their labels read with ``inspect`` (``.Config.Labels`` is a map in both
    runtimes; ``ps --format '{{.Label ...}}'`` is docker's only)."""
    out = _run([runtime, "ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}"])
    if out.returncode != 0:
        raise ConfigError(f"{runtime} ps failed (exit {out.returncode}): {out.stdout.strip()[:200]}")
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    if not names or all_hosts_pids:
        return names
    fmt = '{{index .Config.Labels "%s"}}\t{{index .Config.Labels "%s"}}' % (LABEL_HOST, LABEL_PID)
    out = _run([runtime, "inspect", "--format", fmt, *names])
    host = socket.gethostname()
    gone = []
    # one line per name, in order; a container removed meanwhile drops its line (and fails the call)
    for name, line in zip(names, out.stdout.splitlines()) if out.returncode == 0 else ():
        h, _, pid = line.partition("\t")
        if h == host and pid.isdigit() and not _pid_alive(int(pid)):
            gone.append(name)
    return gone


def cleanup_leftovers(runtime: str, *, force_all: bool = False) -> list[str]:
    """Remove leftover containers (see ``leftover_containers``); returns their names."""
    names = leftover_containers(runtime, all_hosts_pids=force_all)
    for name in names:
        quiet([runtime, "rm", "-f", name], 60)
    return names


def container_argv(
    ec: EngineConfig,
    engine_argv: list[str],
    files: Sequence[str],
    draft_model: str | None,
    name: str,
    port: int,
    env: dict[str, str],
) -> list[str]:
    """The run command of one server: the model, draft model and launch files' folders mounted read-only."""
    mounts = mounts_for(ec, [ec.model, draft_model, *(str(Path(f).parent) for f in files)])
    return run_argv(ec, engine_argv, name, port, mounts, env)


def launch(
    ec: EngineConfig,
    engine_argv: list[str],
    files: Sequence[str],
    draft_model: str | None,
    results_dir: Path,
    sd_label: str,
    port: int,
    log_path: Path,
    health_url: str,
    env: dict[str, str],
) -> ContainerServer:
    """The server of one SD setting in a container named after the results folder (not started yet)."""
    name = container_name(results_dir, sd_label)
    argv = container_argv(ec, engine_argv, files, draft_model, name, port, env)
    return ContainerServer(
        ec, name, argv, log_path, health_url, env=env, host=ec.host, port=port, startup_timeout_s=ec.startup_timeout_s
    )


def prepare_sweep(ec: EngineConfig, results) -> None:
    """Before a containerised sweep: remove containers a killed harness left (docker/podman), make sure the
    image is there, and record it in the manifest by digest."""
    if ec.launcher in ("docker", "podman"):
        for name in cleanup_leftovers(runtime_exe(ec)):
            log.info("removed leftover container %s (its harness is gone)", name)
    info = ensure_image(ec, ec.startup_timeout_s) or {}
    results.update_manifest(
        container={
            "launcher": ec.launcher,
            "runtime": runtime_exe(ec),
            "image": image_of(ec),
            "digest": info.get("digest"),
            "image_id": info.get("id"),
        }
    )
