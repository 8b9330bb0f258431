"""What a sweep records about itself in manifest.json when it starts: config, prompts, machine, engine."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from speedbench.config import BenchmarkConfig
from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.core.documents import point_complete
from speedbench.core.point_id import planned_points
from speedbench.data.pretokenize import PromptSet
from speedbench.engines.base import EngineAdapter
from speedbench.env_info import engine_python_versions, harness_versions, machine_info
from speedbench.load.warmup import WARMUP_RULE
from speedbench.metrics import speed_bench
from speedbench.results import ResultsDir
from speedbench.resume import config_hash

log = logging.getLogger(__name__)


def sweep_manifest(
    cfg: BenchmarkConfig,
    adapter: EngineAdapter,
    prompts: PromptSet,
    engine_env: dict | None,
    sd_probe: list[SpecDecodeCounters],
    sd_unverified: str | None = None,
) -> dict:
    """The manifest of a new sweep. ``engine_env``: the engine environment's versions when validate() already
    asked for them (asked here otherwise); ``sd_probe``: what an attached server showed of SD before the sweep;
    ``sd_unverified``: why that could not confirm an SD-on setting run with --sd-unverified."""
    return {
        "created_at": now_iso(),
        "status": "running",
        "command": sys.argv,
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "prompts": {"fingerprint": prompts.fingerprint, **prompts.meta},
        "machine": machine_info(),
        "harness": harness_versions(),
        "engine": {
            "name": adapter.name,
            "attached": bool(cfg.engine.endpoint),
            "served_model": adapter.served_model_name,
            "sd_probe": [c.to_dict() for c in sd_probe],
            # --sd-unverified: why the probe could not confirm the SD-on setting (absent when it did)
            **({"sd_unverified": sd_unverified} if sd_unverified else {}),
            "server_info": {},  # per SD label, once its server is ready (record_server_info)
            "version": adapter.installed_version,
            "version_pinned": cfg.engine.version,
            "versions": _engine_versions(cfg, engine_env),
        },
        # how every request generated (compare/merge refuse runs that differ: speedbench.report.comparable)
        "generation": {
            "output_len": cfg.load.output_len,
            **adapter.sampling,
            "ignore_eos": cfg.load.fixed_length,
        },
        # how each point spent its prompts: every prompt once in this order, warm-up on prompts of its own
        "measurement": {
            "prompt_order": cfg.load.prompt_order,
            "seed": cfg.load.seed,
            "warmup": WARMUP_RULE if cfg.load.warmup_requests != 0 else "none (load.warmup_requests: 0)",
        },
        # server settings as they were: set here at launch, or unknown for a server someone else started
        "conditions": server_conditions(cfg),
        # what a speedup compares besides SD itself (unknown for a server someone else started)
        "launch_differences": {}
        if cfg.engine.endpoint
        else {sd.label: adapter.launch_differences(sd) for sd in cfg.sd if sd.enabled},
        "points_planned": planned_points(cfg),
        # how acceptance is aggregated and what happens to the EOS token (SPEED-Bench's rules, and where not)
        "metric_rules": dict(speed_bench.RULES),
    }


ATTACHED_UNKNOWN = "unknown (attached server)"


def server_conditions(cfg: BenchmarkConfig) -> dict[str, str]:
    """Server settings that bias a measurement, as speedbench set them at launch; with --endpoint speedbench
    set nothing, so each reads ATTACHED_UNKNOWN until the server reports it (store_server_info)."""
    if cfg.engine.endpoint:
        return {"prefix_caching": ATTACHED_UNKNOWN}
    return {"prefix_caching": "on" if cfg.engine.prefix_caching else "off"}


def _engine_versions(cfg: BenchmarkConfig, engine_env: dict | None) -> dict:
    """Versions in the engine's own environment; none for an attached server or a container image (the image
    digest is recorded instead)."""
    if cfg.engine.endpoint or cfg.engine.launcher != "venv":
        return {}
    return engine_env if engine_env is not None else engine_python_versions(cfg.engine.python)


def store_server_info(results: ResultsDir, label: str, info: dict) -> None:
    """A ready server's own description of itself (measure.read_server_info), under its SD label."""
    m = results.manifest()
    engine = m.setdefault("engine", {})
    engine["server_info"] = {**(engine.get("server_info") or {}), label: info}
    if engine.get("attached") and info.get("prefix_caching") is not None:  # the server said: no longer unknown
        on = "on" if info["prefix_caching"] else "off"
        m["conditions"] = {**(m.get("conditions") or {}), "prefix_caching": f"{on} (reported by the attached server)"}
    results.write_manifest(m)


def close_manifest(results: ResultsDir, status: str, stopped_reason: str | None, best_effort: bool = False) -> None:
    """The manifest's final state and the tables, however the sweep ended (complete, failed, interrupted).
    ``best_effort``: another exception ends the sweep (a full disk among them): a failed write here is
    logged, never raised over it."""
    try:
        ended = results.points()
        results.update_manifest(
            status=status,
            finished_at=now_iso(),
            stopped_reason=stopped_reason,
            points_finished=sum(point_complete(p) for p in ended),
            points_failed=sorted(p["point_id"] for p in ended if not point_complete(p)),
        )
        results.write_tables()
    except OSError as e:
        if not best_effort:
            raise
        log.warning("could not mark %s %s in its manifest: %s", results.path, status, e.strerror or e)


# the results folder cannot take more: a sweep stops with its points kept (errno's names: os.strerror)
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def write_failure(e: BaseException, folder: Path) -> str | None:
    """Why a sweep stops when ``e`` is its results folder refusing writes (disk full, quota, read-only)."""
    if isinstance(e, OSError) and e.errno in WRITE_FAILURES:
        return f"cannot write the results folder {folder}: {e.strerror or os.strerror(e.errno)}"
    return None


def resume_hint(folder: Path) -> str:
    return f"free space (or make it writable), then continue with: speedbench sweep --resume {folder}"


def default_name(cfg: BenchmarkConfig) -> str:
    """The results folder's name when the config gives none: the engine, and the ISL when fixed."""
    isl = f"-isl{cfg.data.isl}" if cfg.data.isl else ""
    return f"{cfg.engine.name}{isl}"


def read_json(path: Path) -> dict | None:
    """A JSON file the post-sweep analysis wrote, None when it did not."""
    return json.loads(path.read_text()) if path.is_file() else None


def now_iso() -> str:
    """Now, UTC, to the second: the manifest's timestamps."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
