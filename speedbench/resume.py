"""Resuming a sweep into its own results folder: same config, same prompts, finished points kept.

A point is finished when its last line in ``points.jsonl`` has status ``complete``. Everything else that
was planned is re-run; records a previous attempt left for it (an interrupted or failed point) are moved
to ``records/attempts/`` first, so a re-run never mixes two attempts in one records file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from speedbench.config import BenchmarkConfig, ConfigError, ContainerConfig, CostConfig, TelemetryConfig
from speedbench.core.documents import point_complete
from speedbench.results import ResultsDir, repair_jsonl_tail

# Fields that name or place a sweep without changing what it measures.
_NOT_HASHED = ("output_dir", "name")


class ResumeError(ConfigError):
    """The folder cannot be resumed with this config (one clear line, exit 2)."""


def _added_later() -> dict[tuple[str, ...], Any]:
    """Config fields newer than some results folders: at their defaults they hash as if absent, so a
    folder written before they existed can still be resumed."""

    return {
        ("telemetry",): TelemetryConfig().model_dump(mode="json"),
        ("cost",): CostConfig().model_dump(mode="json"),
        ("engine", "launcher"): "venv",
        ("engine", "sd_unverified"): False,
        ("engine", "container"): ContainerConfig().model_dump(mode="json"),
    }


def canonical_config(cfg: BenchmarkConfig) -> dict[str, Any]:
    return _canonical(cfg.model_dump(mode="json"))


def _canonical(d: dict[str, Any]) -> dict[str, Any]:
    """What the hash covers, from a config dump (a live config's or one stored in a manifest)."""
    d = copy.deepcopy(d)
    for key in _NOT_HASHED:
        d.pop(key, None)
    d.get("engine", {}).pop("api_key", None)  # a credential, not part of what was measured
    for path, default in _added_later().items():
        parent = d
        for k in path[:-1]:
            parent = parent.get(k, {})
        if parent.get(path[-1]) == default:
            parent.pop(path[-1], None)
    return d


def config_hash(cfg: BenchmarkConfig) -> str:
    blob = json.dumps(canonical_config(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def config_diff(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ (for the error message)."""
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _describe_diff(old: dict, new: dict) -> str:
    """What the user changed first; fields this folder's speedbench did not have yet after them (a folder
    written before a field existed cannot be resumed safely: its default may not be what that sweep did)."""
    a = _flatten(old)
    changed = config_diff(old, new)
    edited = [k for k in changed if k in a]
    added = [k for k in changed if k not in a]
    parts = [f"changed: {', '.join(edited[:8])}"] if edited else []
    if added:
        parts.append(
            f"not known when this folder was written: {', '.join(added[:4])}"
            + (f" and {len(added) - 4} more" if len(added) > 4 else "")
        )
    return "; ".join(parts) or "changed: unknown"


def check_resumable(manifest: dict, cfg: BenchmarkConfig, prompts_fingerprint: str) -> None:
    refuse_merged(manifest)
    stored = manifest.get("config_hash")
    if stored is None:
        raise ResumeError(
            "this results folder has no config hash (written by an older speedbench); "
            "it cannot be resumed safely: start a new sweep"
        )
    if stored != config_hash(cfg):
        old = _canonical(manifest.get("config") or {})
        raise ResumeError(
            "config differs from the one this sweep started with "
            f"({_describe_diff(old, canonical_config(cfg))}); run `speedbench sweep --resume DIR` "
            "without options to reuse the stored config, or start a new sweep"
        )
    old_fp = (manifest.get("prompts") or {}).get("fingerprint")
    if old_fp != prompts_fingerprint:
        raise ResumeError(
            f"prompt fingerprint changed ({str(old_fp)[:12]} -> {prompts_fingerprint[:12]}): the "
            "tokenizer, split file or selection is not the same; start a new sweep"
        )


def refuse_merged(manifest: dict) -> None:
    """A merged folder holds several sweeps' points under one shared-settings config: no sweep to continue."""
    if manifest.get("merged_from"):
        raise ResumeError("this is a merged results folder: it cannot be resumed; resume the folders it merges")


def finished_points(results: ResultsDir) -> set[str]:
    return {p["point_id"] for p in results.points() if point_complete(p)}


@dataclass
class ResumePlan:
    done: set[str]
    moved_aside: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


def prepare_resume(results: ResultsDir, planned: Iterable[str]) -> ResumePlan:
    """Repair torn tails, find finished points, move the unfinished ones' partial records aside."""
    repaired = [
        str(p.relative_to(results.path))
        for p in [results.path / "points.jsonl", *sorted((results.path / "records").glob("*.jsonl"))]
        if repair_jsonl_tail(p)
    ]
    plan = ResumePlan(finished_points(results), repaired=repaired)
    for point_id in planned:
        if point_id in plan.done:
            continue
        moved = results.move_records_aside(point_id)
        if moved is not None:
            plan.moved_aside.append(str(moved.relative_to(results.path)))
    return plan
