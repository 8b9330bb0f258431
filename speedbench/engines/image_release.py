"""The engine's release as the image holds it, read before any server of a containerised sweep starts.

The image's own Python is asked for the engine distribution's metadata (``importlib.metadata``; the engine is
never imported), exactly as a venv launch asks the venv's interpreter, so the same per-flag floors apply
(speedbench.engines.versions). Image labels are not read: the generic OCI ``version`` label of these images
names their base (e.g. Ubuntu's ``22.04``), not the engine.

How each launcher is asked:
- docker / podman: ``run --rm --pull never --network none --entrypoint <python> IMAGE -c ...`` (labelled like
  every speedbench container, so a killed harness's probe is removed by ``speedbench engines cleanup``);
  only an image the runtime already holds is read (a dry run never pulls; a sweep pulls first).
- enroot: the squashfs file is unpacked into a probe container (``create``, ``start``, ``remove``): one more
  unpack of the image, the price of knowing the release before the first server.
- pyxis: one ``srun`` step in the image, so only inside a Slurm allocation.

When the release cannot be read (no runtime, image not held, outside an allocation, no metadata), a dry run
may take a hint from the image tag (``vllm/vllm-openai:v0.11.0`` → 0.11.0), always labelled as such.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from speedbench.config import EngineConfig, SDConfig
from speedbench.engines.container import LABEL, LABEL_HOST, LABEL_PID, image_info, image_of, quiet, runtime_exe

if TYPE_CHECKING:
    from speedbench.engines.base import EngineAdapter

log = logging.getLogger(__name__)

_MARK = "speedbench-image-release "
# a release at the start of a tag: v0.11.0, 0.5.12-cu129, 1.3.0rc24, 0.4.10.post2
_TAG_RELEASE = re.compile(r"^v?(\d+\.\d+(?:\.\d+)?(?:(?:rc|a|b)\d+|\.post\d+)?)(?=$|[-_+])")


@dataclass(frozen=True)
class ImageRelease:
    """What is known of the engine release in the image: ``source`` "image" (read from its metadata, ``dist``
    names the distribution), "tag" (a hint parsed from the image tag, not read) or "unread" (``why``)."""

    version: str | None
    source: str
    dist: str | None = None
    why: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def as_said(self) -> str:
        """How the checks name where this release came from (empty when read from the image itself)."""
        if self.source != "tag":
            return ""
        return f" (a hint from the image tag, not read from the image: {self.why})"


def probe_code(dists: tuple[str, ...]) -> str:
    return (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        f"for d in {list(dists)!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        f"print({_MARK!r} + json.dumps(out))"
    )


def probe_name() -> str:
    return f"speedbench-release-{os.getpid()}"


def probe_argvs(ec: EngineConfig, dists: tuple[str, ...]) -> list[list[str]]:
    """The commands that print the versions, in order (enroot: create, start; ``remove`` follows always)."""
    exe, image, py, code = runtime_exe(ec), image_of(ec), ec.container.python, probe_code(dists)
    if ec.launcher in ("docker", "podman"):
        labels = [f"{LABEL}=1", f"{LABEL_HOST}={socket.gethostname()}", f"{LABEL_PID}={os.getpid()}"]
        return [
            [exe, "run", "--rm", "--pull", "never", "--network", "none"]
            + [x for lab in labels for x in ("--label", lab)]
            + ["--entrypoint", py, image, "-c", code]
        ]
    if ec.launcher == "enroot":
        name = probe_name()
        return [[exe, "create", "--force", "--name", name, image], [exe, "start", name, py, "-c", code]]
    return [[exe, "--ntasks=1", f"--container-image={image}", py, "-c", code]]  # pyxis


def parse_probe(output: str, dists: tuple[str, ...]) -> tuple[str, str] | None:
    """(dist, version) of the first of ``dists`` the probe found, None when it found none."""
    for line in reversed(output.splitlines()):
        if line.startswith(_MARK):
            try:
                found = json.loads(line[len(_MARK) :])
            except ValueError:
                return None
            return next(((d, found[d]) for d in dists if isinstance(found, dict) and found.get(d)), None)
    return None


def tag_hint(image: str) -> str | None:
    """The release a tag names (``vllm/vllm-openai:v0.11.0`` → ``0.11.0``); None for a digest or other tag."""
    if "@" in image or image.endswith(".sqsh"):
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    m = _TAG_RELEASE.match(last.rsplit(":", 1)[1])
    return m.group(1) if m else None


def unreadable(ec: EngineConfig) -> str | None:
    """Why the image cannot be asked without pulling anything, or None when it can."""
    exe = runtime_exe(ec)
    if shutil.which(exe) is None:
        return f"container runtime {exe!r} not found"
    if ec.launcher in ("docker", "podman") and image_info(ec) is None:
        return f"{exe} does not hold {image_of(ec)} (or its daemon is not running)"
    if ec.launcher == "pyxis" and not os.environ.get("SLURM_JOB_ID"):
        return "pyxis runs the image only inside a Slurm allocation"
    return None


def read_release(ec: EngineConfig, dists: tuple[str, ...], timeout_s: float = 600.0) -> ImageRelease:
    """The engine release in the image, asked of the image's own Python; "unread" with the reason otherwise."""
    why = unreadable(ec)
    if why is not None:
        return ImageRelease(None, "unread", why=why)
    argvs = probe_argvs(ec, dists)
    out = None
    try:
        for argv in argvs:
            out = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
            )
            if out.returncode != 0:
                last = (out.stdout.strip().splitlines() or [""])[-1]
                return ImageRelease(None, "unread", why=f"{' '.join(argv[:2])} exited {out.returncode}: {last}")
    except (OSError, subprocess.SubprocessError) as e:
        return ImageRelease(None, "unread", why=f"asking the image failed: {e}")
    finally:
        if ec.launcher == "enroot":
            quiet([runtime_exe(ec), "remove", "--force", probe_name()], 120)
    found = parse_probe(out.stdout if out is not None else "", dists)
    if found is None:
        return ImageRelease(None, "unread", why=f"the image's Python has none of {', '.join(dists)} installed")
    return ImageRelease(found[1], "image", dist=found[0])


def release_for_dry_run(ec: EngineConfig, dists: tuple[str, ...]) -> tuple[ImageRelease, str | None]:
    """The release a dry run checks flags against, and the one line it says when that is not read from the
    image: the tag's hint (labelled) or nothing."""
    rel = read_release(ec, dists)
    if rel.source == "image":
        return rel, None
    hint = tag_hint(image_of(ec))
    if hint is None:
        return rel, (
            f"engine release not read from the image ({rel.why}) and its tag names none: "
            f"flags are written for engine.version {ec.version or '(unset)'} and not checked"
        )
    return ImageRelease(hint, "tag", why=rel.why), (
        f"engine release not read from the image ({rel.why}): flags checked against {hint}, "
        f"a hint from the image tag, not read from the image"
    )


def check_release(
    adapter: EngineAdapter,
    ec: EngineConfig,
    sds: Sequence[SDConfig],
    max_concurrency: int,
    *,
    dry_run: bool = False,
    known: ImageRelease | None = None,
) -> tuple[ImageRelease, str | None]:
    """Read the image's release (unless ``known`` already is), make it the adapter's, and refuse in one line
    every flag of ``sds`` it lacks. Returns the release and, for a dry run, the line saying it was not read."""
    # asked again only where a pull since may have brought the image (docker/podman)
    if known is not None and (known.source == "image" or ec.launcher not in ("docker", "podman")):
        return known, None
    rel, note = release_for_dry_run(ec, adapter.dists) if dry_run else (read_release(ec, adapter.dists), None)
    if rel.version:
        adapter.installed_version = rel.version
        adapter.check_versions(sds, max_concurrency, rel.as_said())
    return rel, note


def release_fields(manifest: dict, rel: ImageRelease) -> dict:
    """Manifest fields: the release next to the image digest in ``container``, and as the engine's version."""
    if rel.source != "image":
        log.warning(
            "engine release not read from the image (%s): flags were written for engine.version, unchecked",
            rel.why,
        )
    return {
        "container": {**(manifest.get("container") or {}), "release": rel.to_dict()},
        "engine": {**manifest["engine"], "version": rel.version},
    }
