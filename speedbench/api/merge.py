"""Merge results folders of independent jobs (one engine configuration each) into one folder to report.

Only folders that `compare` would accept can be merged (speedbench.report.comparable: same token ids, same
generation settings unless explicitly allowed), so a merged table never compares different inputs. Points are
concatenated; a point id already taken (two engines both have ``sd-off-c1``) is prefixed with the engine name.
Every source manifest is kept; ``config`` holds the settings all sources share and ``config_differences``
names the others, so the report states each condition or says it differs between runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from speedbench.config import ConfigError
from speedbench.core.writer_lock import LOCK_NAME, lock_folder
from speedbench.metrics.summary import point_from_dict
from speedbench.report.comparable import check_comparable
from speedbench.results import ResultsDir


def merge_results(paths: Sequence[str | Path], out: str | Path, allow_generation_mismatch: bool = False) -> Path:
    """Raises ConfigError for a bad folder, NotComparable (a ReportError) for folders that must not be merged.
    On any failure the output folder is removed again (an empty one given by the caller is left empty)."""

    dirs = [ResultsDir.open(p) for p in paths]
    if len(dirs) < 1:
        raise ConfigError("nothing to merge")
    seen: dict[Path, str] = {}
    for rd in dirs:
        real = rd.path.resolve()
        if real in seen:
            raise ConfigError(
                f"{rd.path} is given twice (also as {seen[real]}): every point would be merged twice; give it once"
            )
        seen[real] = str(rd.path)
    manifests = [rd.manifest() for rd in dirs]
    allowed = check_comparable(
        [(str(rd.path), m) for rd, m in zip(dirs, manifests)], allow_generation_mismatch=allow_generation_mismatch
    )
    out_path = Path(out)
    existed = out_path.exists()
    if existed and (not out_path.is_dir() or any(p.name != LOCK_NAME for p in out_path.iterdir())):
        raise ConfigError(f"merge output folder is not empty: {out_path}; give a new folder")
    lock = lock_folder(out_path, "write the merge output folder")
    try:
        _write_merged(dirs, manifests, allowed, out_path)
    except BaseException:
        lock.release()
        _remove_partial(out_path, keep_folder=existed)  # a half-built folder would block the rerun and mislead
        raise
    lock.release()
    return out_path


def _write_merged(dirs: list[ResultsDir], manifests: list[dict], allowed: list[str], out_path: Path) -> None:
    fingerprint = manifests[0]["prompts"]["fingerprint"]
    statuses = {m.get("status") for m in manifests}
    common, differs = merged_config([m.get("config") for m in manifests], manifests)
    merged = ResultsDir(out_path).create(
        {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "status": "complete" if statuses == {"complete"} else "partial",
            "merged_from": [{"path": str(rd.path), "manifest": m} for rd, m in zip(dirs, manifests)],
            "prompts": manifests[0].get("prompts"),
            "config": common,  # what every source ran with; the rest is named in config_differences
            "config_differences": differs,
            "points_planned": [],
            "generation_differences_allowed": allowed,
            **shared_conditions(manifests),
        }
    )
    if (dirs[0].path / "prompts.parquet").is_file():
        merged.save_prompts(dirs[0].path / "prompts.parquet")  # identical in every source (same fingerprint)
    taken: set[str] = set()
    planned: list[str] = []
    token_counts: dict[str, str] = {}
    for i, (rd, m) in enumerate(zip(dirs, manifests)):
        for d in rd.points():
            old = d["point_id"]
            new = old if old not in taken else f"{d['engine']}-{old}"
            n = 2
            while new in taken:
                new, n = f"{d['engine']}-{old}-{n}", n + 1
            taken.add(new)
            planned.append(new)
            if old in (m.get("token_counts") or {}):
                token_counts[new] = m["token_counts"][old]
            src = rd.records_path(old)
            if src.is_file():  # in its own format: a merge of old (JSONL) and new (columnar) folders keeps both
                shutil.copyfile(src, merged.path / "records" / f"{new}{src.suffix}")
            summary = point_from_dict({**d, "point_id": new})
            merged.append_point(summary)
        logs = rd.path / "logs"
        if logs.is_dir():
            shutil.copytree(logs, out_path / "logs" / f"{i:02d}-{rd.path.name}", dirs_exist_ok=True)
    missing = missing_points(dirs, manifests, taken)
    merged.update_manifest(
        points_planned=planned + [m["point"] for m in missing],
        points_finished=len(planned),
        points_missing=missing,
        prompts_fingerprint=fingerprint,
        token_counts=token_counts,
    )
    (out_path / "merge.json").write_text(
        json.dumps(
            {
                "sources": [str(rd.path) for rd in dirs],
                "fingerprint": fingerprint,
                "points": planned,
                "points_missing": missing,
                "generation_differences_allowed": allowed,
            },
            indent=2,
        )
    )


# how every source measured, carried when all of them recorded it alike, so the merged report states it
# instead of "not recorded (older run)"
SHARED_CONDITIONS = ("generation", "measurement", "metric_rules", "conditions")


def shared_conditions(manifests: Sequence[dict]) -> dict[str, Any]:
    """The SHARED_CONDITIONS every source recorded alike, and ``launch_differences`` (per SD-on label) joined
    when every source recorded them and no label is recorded differently by two sources."""
    out: dict[str, Any] = {}
    for key in SHARED_CONDITIONS:
        values = [m.get(key) for m in manifests]
        if values[0] is not None and all(v == values[0] for v in values):
            out[key] = values[0]
    if all("launch_differences" in m for m in manifests):
        joined: dict[str, Any] = {}
        for m in manifests:
            for label, diffs in (m["launch_differences"] or {}).items():
                if joined.setdefault(label, diffs) != diffs:
                    return out  # the same label launched differently: not one statement
        out["launch_differences"] = joined
    return out


def missing_points(dirs: Sequence[ResultsDir], manifests: Sequence[dict], taken: set[str]) -> list[dict[str, str]]:
    """Points a source planned but did not finish (a cancelled or failed job), each with its source and
    why: the merged folder plans them too, so its report names them instead of passing for whole."""
    out: list[dict[str, str]] = []
    for rd, m in zip(dirs, manifests):
        ended = {d["point_id"] for d in rd.points()}
        if m.get("merged_from"):  # a merge of merges: its own missing points, already explained
            out += [dict(x) for x in m.get("points_missing") or []]
            continue
        status = str(m.get("status"))
        for p in m.get("points_planned") or []:
            if p in ended:
                continue
            new, n = p, 2
            while new in taken:
                new, n = f"{p}-{n}", n + 1
            taken.add(new)
            # a plan's job folder is also continued by resubmitting its plan with --resume
            why = f"{status} in {rd.path} (continue it: speedbench sweep --resume {rd.path})"
            out.append({"point": new, "source": str(rd.path), "status": status, "why": why})
    return out


def merged_config(configs: Sequence[dict | None], manifests: Sequence[dict] = ()) -> tuple[dict, list[str]]:
    """The settings every source ran with (nested like a config) and the dotted names of those that differ
    or that a source did not record (a source that is itself a merge adds its own differences)."""
    flat = [_flatten(c or {}) for c in configs]
    keys = dict.fromkeys(k for f in flat for k in f)
    common: dict[str, Any] = {}
    differs = {k for m in manifests for k in (m.get("config_differences") or [])}
    for k in keys:
        values = [f.get(k, _MISSING) for f in flat]
        if all(repr(v) == repr(values[0]) for v in values) and values[0] is not _MISSING and k not in differs:
            common[k] = values[0]
        else:
            differs.add(k)
    nested: dict[str, Any] = {}
    for k, v in common.items():
        *parents, leaf = k.split(".")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return nested, sorted(differs)


_MISSING = object()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested dict (lists and empty dicts are leaves)."""
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def _remove_partial(out_path: Path, keep_folder: bool) -> None:
    if not out_path.is_dir():
        return
    if not keep_folder:
        shutil.rmtree(out_path, ignore_errors=True)
        return
    for child in out_path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


__all__ = ["merge_results", "merged_config", "missing_points", "shared_conditions"]
