"""Machine-readable exports: the versioned JSON report document and pandas-ready CSV/parquet tables.

The JSON layout is documented in docs/results-schema.md; bump REPORT_SCHEMA_VERSION on any breaking change.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPORT_SCHEMA_VERSION = 1

# table name -> (description, how to get rows from ReportData); each becomes <name>.csv and <name>.parquet
TABLES = {
    "points": "one row per sweep point (summary metrics, latencies in ms)",
    "category_acceptance": "one row per (SD setting, category): AL SPEED-Bench (al_speedbench: per-conversation "
    "mean, EOS stripped), AL per turn, per-request mean with EOS counted, tok/step pooled, AL drafted; "
    "category 'all' = every request of the setting pooled",
    "speedups": "SD on / SD off per (run, engine, ISL, concurrency)",
    "crossovers": "crossover concurrency per (run, engine, ISL, SD setting)",
    "position_acceptance": "per (SD setting, draft position): absolute and conditional acceptance per drafted "
    "step, and SPEED-Bench's conditional rate from the chunk-length histogram",
    "turn_acceptance": "multi-turn points: per (point, conversation turn): tok/step, AL drafted, prompt length, TTFT",
    "requests": "one row per request record (warm-up included, flagged)",
}


def _version() -> str:
    try:
        return version("speedbench")
    except Exception:  # running from a source tree without metadata
        return "unknown"


def table_rows(data, name: str) -> list[dict]:
    if name == "points":
        return data.rows
    if name == "category_acceptance":
        return [
            {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()}
            for r in data.category_rows + data.overall_rows
        ]
    if name == "speedups":
        return data.speedups
    if name == "crossovers":
        return [
            {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()} for r in data.crossovers
        ]
    if name == "position_acceptance":
        return data.position_rows
    if name == "turn_acceptance":
        return data.turn_rows
    if name == "requests":
        return data.request_rows()
    raise KeyError(name)


def _clean(v: Any) -> Any:
    """JSON has no NaN: missing values become null."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def report_document(data, kind: str = "report", compare_rows: list[dict] | None = None) -> dict:
    """The `--format json` document (schema in docs/results-schema.md)."""
    doc = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": kind,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "speedbench_version": _version(),
        "runs": [
            {"label": r.label, "path": str(r.path), "manifest": r.manifest, "extras": r.extras} for r in data.runs
        ],
        "points": data.rows,
        "speedups": data.speedups,
        "crossovers": data.crossovers,
        "category_acceptance": data.category_rows,
        "overall_acceptance": data.overall_rows,
        "position_acceptance": data.position_rows,
        "turn_acceptance": data.turn_rows,
    }
    if compare_rows is not None:
        doc["compare"] = compare_rows
    return _clean(doc)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, default=str, allow_nan=False)


def write_tables(data, out_dir: Path, formats=("csv", "parquet")) -> list[Path]:
    """Write every non-empty table as CSV and parquet under out_dir; returns the written paths."""
    # pandas (~270 ms) in the two functions that write tables: render imports this module for every format
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        rows = table_rows(data, name)
        if not rows:
            continue
        df = pd.DataFrame(rows)
        if "csv" in formats:
            df.to_csv(out_dir / f"{name}.csv", index=False)
            written.append(out_dir / f"{name}.csv")
        if "parquet" in formats:
            df.to_parquet(out_dir / f"{name}.parquet", index=False)
            written.append(out_dir / f"{name}.parquet")
    return written


def summary_csv(data) -> str:
    import pandas as pd

    return pd.DataFrame(data.rows).to_csv(index=False)
