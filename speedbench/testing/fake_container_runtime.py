"""A fake ``docker`` / ``podman`` / ``enroot`` for tests: records its argv and runs the image's command here.

Put an executable named ``docker`` (see ``write_fake_runtime``) first on ``PATH``.  It keeps a "daemon"
state folder (``$FAKE_RUNTIME_STATE``): one JSON file per container.  ``run`` starts the container's
command as a process in a session of its own, as a daemon would (so it outlives a killed client, the case
``speedbench engines cleanup`` exists for), and stays attached: the container's output streams to the
client's stdout, SIGTERM / SIGINT to the client are forwarded to the container (docker's sig-proxy), and
``--rm`` removes the state when it exits.  The image is this machine: the command's first word (the image's
Python) is replaced by this interpreter.  Port mapping ``-p 127.0.0.1:H:C`` is checked against the command
(the engine must listen on 0.0.0.0:C inside); the emulator then binds 127.0.0.1:H, loopback only.
Every call appends ``{"argv": [...]}`` to ``$FAKE_RUNTIME_LOG``.  Nothing here says how a real runtime behaves.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_RUN_VALUE_FLAGS = {
    "--name",
    "--label",
    "--gpus",
    "--device",
    "--shm-size",
    "-p",
    "-v",
    "-e",
    "--entrypoint",
    "--pull",
    "--network",
}
_RUN_BARE_FLAGS = {"--rm", "--ipc=host"}


def write_fake_runtime(bin_dir: str | Path, name: str = "docker") -> Path:
    """An executable ``bin_dir/name`` running this module with the current interpreter."""
    path = Path(bin_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\nimport sys\nfrom speedbench.testing.fake_container_runtime import main\n"
        f"sys.exit(main(sys.argv))\n"
    )
    path.chmod(0o755)
    return path


def _state() -> Path:
    p = Path(os.environ.get("FAKE_RUNTIME_STATE", "/tmp/fake-runtime-state"))
    p.mkdir(parents=True, exist_ok=True)
    return p


def containers() -> dict[str, dict]:
    """Every container the fake daemon holds: name -> state (tests assert on it)."""
    out = {}
    for f in _state().glob("*.json"):
        try:
            out[f.stem] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
    return out


def _save(c: dict) -> None:
    tmp = _state() / f".{c['name']}.tmp"
    tmp.write_text(json.dumps(c))
    os.replace(tmp, _state() / f"{c['name']}.json")


def _drop(name: str) -> None:
    (_state() / f"{name}.json").unlink(missing_ok=True)


def _kill(c: dict, sig: int) -> None:
    try:
        os.killpg(c["pid"], sig)
    except (ProcessLookupError, PermissionError, KeyError):
        pass


def _alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:  # not our child (the client that started it is gone)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        return not (stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"))


def _err(msg: str, code: int = 125) -> int:
    print(f"fake-runtime: {msg}", file=sys.stderr)
    return code


def _parse_run(args: list[str]) -> tuple[dict, list[str]]:
    opts: dict = {
        "labels": {},
        "ports": [],
        "volumes": [],
        "env": [],
        "rm": False,
        "gpus": None,
        "ipc": None,
        "shm": None,
        "name": None,
        "entrypoint": None,
    }
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a in _RUN_BARE_FLAGS:
            opts["rm"] |= a == "--rm"
            opts["ipc"] = "host" if a == "--ipc=host" else opts["ipc"]
            i += 1
            continue
        if a not in _RUN_VALUE_FLAGS or i + 1 >= len(args):
            raise ValueError(f"unknown run flag {a!r}")
        v = args[i + 1]
        if a == "--label":
            k, _, val = v.partition("=")
            opts["labels"][k] = val
        else:
            if a in ("--pull", "--network"):
                opts[a[2:]] = v
                i += 2
                continue
            key = {
                "--name": "name",
                "--entrypoint": "entrypoint",
                "--gpus": "gpus",
                "--device": "gpus",
                "--shm-size": "shm",
                "-p": "ports",
                "-v": "volumes",
                "-e": "env",
            }[a]
            if isinstance(opts[key], list):
                opts[key].append(v)
            else:
                opts[key] = v
        i += 2
    if i >= len(args):
        raise ValueError("no image given")
    return opts, args[i:]


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def _run(args: list[str]) -> int:
    try:
        opts, rest = _parse_run(args)
    except ValueError as e:
        return _err(str(e))
    image, cmd = rest[0], rest[1:]
    if opts["entrypoint"] is None:
        return _err("this fake image has no entrypoint of its own: give --entrypoint")
    cmd = [opts["entrypoint"], *cmd]
    name = opts["name"] or f"fake-{os.getpid()}"
    if name in containers():
        return _err(f'Conflict. The container name "/{name}" is already in use')
    if image not in (_images().read_text().split() if _images().is_file() else []):
        if opts.get("pull") == "never":
            return _err(f"Error: {image}: image not known (--pull never)")
        return _err(f"image {image} is not pulled (this fake never pulls on run)")
    for v in opts["volumes"]:
        src = v.split(":")[0]
        if not Path(src).exists():
            return _err(f"invalid mount: {src} does not exist")
    cmd = list(cmd)
    if opts["ports"]:  # the engine must listen inside on the mapped container port, on every interface
        host_ip, host_port, cont_port = opts["ports"][0].split(":")
        if host_ip != "127.0.0.1":
            return _err(f"this fake maps to loopback only (got {host_ip})")
        if _flag(cmd, "--port") != cont_port or _flag(cmd, "--host") != "0.0.0.0":
            return _err(
                f"engine listens on {_flag(cmd, '--host')}:{_flag(cmd, '--port')}, not 0.0.0.0:{cont_port}: "
                "the port mapping would not reach it"
            )
        cmd[cmd.index("--host") + 1] = "127.0.0.1"
        cmd[cmd.index("--port") + 1] = host_port
    env = _image_env(image)
    for var in opts["env"]:
        if "=" not in var and var not in os.environ:
            return _err(f"-e {var}: not set in the client's environment")
    log = _state() / f"{name}.log"
    with log.open("wb") as fh:
        # written into the container's output, so tests see it travel through the attached client
        fh.write(f"fake-runtime: container {name} runs {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.Popen(
            [sys.executable, *cmd[1:]],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _save(
        {
            "name": name,
            "image": image,
            "labels": opts["labels"],
            "pid": proc.pid,
            "cmd": cmd,
            "rm": opts["rm"],
            "client_pid": os.getpid(),
        }
    )
    c = containers()[name]

    def forward(signum, frame):  # docker's default --sig-proxy=true
        _kill(c, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    with log.open("rb") as src:  # attached: the container's output is the client's output
        while True:
            chunk = src.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                continue
            if proc.poll() is not None:
                sys.stdout.buffer.write(src.read())
                break
            time.sleep(0.05)
    if opts["rm"]:
        _drop(name)
    return proc.returncode


def _rm(args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    code = 0
    for name in names:
        c = containers().get(name)
        if c is None:
            print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
            code = 1
            continue
        _kill(c, signal.SIGKILL)
        _drop(name)
        print(name)
    return code


def _stop(args: list[str]) -> int:
    t = float(_flag(args, "-t") or 10)
    name = args[-1]
    c = containers().get(name)
    if c is None:
        print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
        return 1
    _kill(c, signal.SIGTERM)
    deadline = time.monotonic() + t
    while _alive(c["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill(c, signal.SIGKILL)
    print(name)
    return 0


def _ps(args: list[str]) -> int:
    want = _flag(args, "--filter")
    fmt = _flag(args, "--format") or "{{.Names}}"
    for name, c in sorted(containers().items()):
        if want and want.startswith("label="):
            k, _, v = want[6:].partition("=")
            if c["labels"].get(k) != v:
                continue
        line = fmt.replace("{{.Names}}", name)
        for k, v in c["labels"].items():
            line = line.replace('{{.Label "%s"}}' % k, v)
        print(line)
    return 0


def _inspect(args: list[str]) -> int:
    """``inspect --format '{{index .Config.Labels "k"}}...' NAME...``: one line per container, as docker."""
    fmt = _flag(args, "--format") or "{{.Name}}"
    names = [a for a in args if not a.startswith("-") and a != fmt]
    code = 0
    for name in names:
        c = containers().get(name)
        if c is None:
            print(f"Error: No such object: {name}", file=sys.stderr)
            code = 1
            continue
        line = fmt
        for k, v in c["labels"].items():
            line = line.replace('{{index .Config.Labels "%s"}}' % k, v)
        print(line)
    return code


def _images() -> Path:
    return _state() / "images.list"


def _image_site(image: str) -> Path:
    return _state() / "images" / hashlib.sha256(image.encode()).hexdigest()[:16] / "site"


def add_image(image: str, packages: dict[str, str], *, held: bool = True) -> None:
    """An image whose Python has these distributions installed (their metadata only: the image is this machine,
    so a ``python -c`` run in it sees them first on its path); ``held``: as if already pulled."""
    for dist, version in packages.items():
        meta = _image_site(image) / f"{dist.replace('-', '_')}-{version}.dist-info"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    if held:
        with _images().open("a") as fh:
            fh.write(image + "\n")


def _image_env(image: str) -> dict[str, str]:
    """This machine's environment with the image's own distributions first on the Python path."""
    env = dict(os.environ)
    if _image_site(image).is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_image_site(image)), env.get("PYTHONPATH")) if p)
    return env


def _image_inspect(args: list[str]) -> int:
    image = args[-1]
    held = _images().read_text().split() if _images().is_file() else []
    if image not in held:
        print(f"Error: No such image: {image}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(image.encode()).hexdigest()  # the fake's own, derived from the name
    # docker's default output: a JSON array, one object per image
    print(
        json.dumps(
            [
                {
                    "Id": "sha256:" + hashlib.sha256(digest.encode()).hexdigest(),
                    "RepoDigests": [f"{image.rsplit(':', 1)[0]}@sha256:{digest}"],
                }
            ]
        )
    )
    return 0


def _pull(args: list[str]) -> int:
    image = args[-1]
    if "missing" in image:  # how a test asks for a tag the registry does not have
        print(f"Error response from daemon: manifest for {image} not found: manifest unknown", file=sys.stderr)
        return 1
    with _images().open("a") as fh:
        fh.write(image + "\n")
    print(f"Status: Downloaded newer image for {image}")
    return 0


def _enroot(args: list[str]) -> int:
    """enroot create --force --name N IMAGE.sqsh | start [--mount M] [--env K] N cmd... | remove --force N | list"""
    cmd = args[0] if args else ""
    if cmd == "create":
        name = _flag(args, "--name")
        if not Path(args[-1]).is_file():
            return _err(f"no such image file: {args[-1]}", 1)
        _save({"name": name, "image": args[-1], "labels": {}, "pid": -1, "cmd": [], "rm": False})
        return 0
    if cmd == "remove":
        c = containers().get(args[-1])
        if c is not None:
            _kill(c, signal.SIGKILL)
        _drop(args[-1])
        return 0
    if cmd == "list":
        print("\n".join(sorted(containers())))
        return 0
    if cmd == "start":
        i = 1
        while args[i].startswith("--"):
            i += 2
        name, inner = args[i], args[i + 1 :]
        c = containers().get(name)
        if c is None:
            return _err(f"no such container: {name}", 1)
        # no daemon: the command is the client's own child, in its process group (dies with the client)
        c.update(pid=os.getpid(), cmd=inner)
        _save(c)
        os.execve(sys.executable, [sys.executable, *inner[1:]], _image_env(c["image"]))
    return _err(f"unsupported enroot command {cmd!r}", 1)


def main(argv: list[str]) -> int:
    prog, args = Path(argv[0]).name, argv[1:]
    with open(os.environ.get("FAKE_RUNTIME_LOG", str(_state() / "calls.jsonl")), "a") as fh:
        fh.write(json.dumps({"prog": prog, "argv": args}) + "\n")
    if prog == "enroot":
        return _enroot(args)
    sub = args[0] if args else ""
    if sub == "run":
        return _run(args[1:])
    if sub == "rm":
        return _rm(args[1:])
    if sub == "stop":
        return _stop(args[1:])
    if sub == "ps":
        return _ps(args[1:])
    if sub == "pull":
        return _pull(args[1:])
    if sub == "inspect":
        return _inspect(args[1:])
    if sub == "image" and args[1:2] == ["inspect"]:
        return _image_inspect(args[2:])
    return _err(f"unsupported command {sub!r}", 1)
