"""Merge results folders of independent jobs (one engine configuration each) into one folder to report.

Only folders that `compare` would accept can be merged (speedbench.report.comparable: same token ids, same
generation settings unless explicitly allowed), so a merged table never compares different inputs. Points are
concatenated; a point id already taken (two engines both have ``sd-off-c1``) is prefixed with the engine name.
Every source manifest is kept.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from speedbench.config import ConfigError
from speedbench.metrics.summary import point_from_dict
from speedbench.report.comparable import check_comparable
from speedbench.results import ResultsDir


def merge_results(paths: Sequence[str | Path], out: str | Path, allow_generation_mismatch: bool = False) -> Path:
    """Raises ConfigError for a bad folder, NotComparable (a ReportError) for folders that must not be merged."""

    dirs = [ResultsDir.open(p) for p in paths]
    if len(dirs) < 1:
        raise ConfigError("nothing to merge")
    manifests = [rd.manifest() for rd in dirs]
    allowed = check_comparable(
        [(str(rd.path), m) for rd, m in zip(dirs, manifests)], allow_generation_mismatch=allow_generation_mismatch
    )
    fingerprint = manifests[0]["prompts"]["fingerprint"]
    out_path = Path(out)
    if out_path.exists() and any(out_path.iterdir()):
        raise ConfigError(f"merge output folder is not empty: {out_path}")
    statuses = {m.get("status") for m in manifests}
    merged = ResultsDir(out_path).create(
        {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "status": "complete" if statuses == {"complete"} else "partial",
            "merged_from": [{"path": str(rd.path), "manifest": m} for rd, m in zip(dirs, manifests)],
            "prompts": manifests[0].get("prompts"),
            "config": None,  # one per source: see merged_from
            "points_planned": [],
            "generation_differences_allowed": allowed,
        }
    )
    if (dirs[0].path / "prompts.parquet").is_file():
        merged.save_prompts(dirs[0].path / "prompts.parquet")  # identical in every source (same fingerprint)
    taken: set[str] = set()
    planned: list[str] = []
    for i, rd in enumerate(dirs):
        for d in rd.points():
            old = d["point_id"]
            new = old if old not in taken else f"{d['engine']}-{old}"
            n = 2
            while new in taken:
                new, n = f"{d['engine']}-{old}-{n}", n + 1
            taken.add(new)
            planned.append(new)
            src = rd.records_path(old)
            if src.is_file():  # in its own format: a merge of old (JSONL) and new (columnar) folders keeps both
                shutil.copyfile(src, merged.path / "records" / f"{new}{src.suffix}")
            summary = point_from_dict({**d, "point_id": new})
            merged.append_point(summary)
        logs = rd.path / "logs"
        if logs.is_dir():
            shutil.copytree(logs, out_path / "logs" / f"{i:02d}-{rd.path.name}", dirs_exist_ok=True)
    merged.update_manifest(points_planned=planned, points_finished=len(planned), prompts_fingerprint=fingerprint)
    (out_path / "merge.json").write_text(
        json.dumps(
            {
                "sources": [str(rd.path) for rd in dirs],
                "fingerprint": fingerprint,
                "points": planned,
                "generation_differences_allowed": allowed,
            },
            indent=2,
        )
    )
    return out_path


__all__ = ["merge_results"]
