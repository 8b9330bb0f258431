"""Python-API conveniences beside ``BenchmarkConfig`` / ``BenchmarkRunner``: config from sources, results back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speedbench.api.config_sources import resolve_config
from speedbench.config import BenchmarkConfig, deep_merge
from speedbench.metrics.category import category_acceptance
from speedbench.metrics.speedup import speedup_rows
from speedbench.metrics.summary import point_from_dict
from speedbench.results import ResultsDir
from speedbench.runner import Speedup, SweepResult


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    *,
    use_env: bool = True,
    overrides: Mapping[str, Any] | None = None,
    **sections: Any,
) -> BenchmarkConfig:
    """Config with the CLI's precedence: defaults < preset < file < ``SPEEDBENCH_*`` env < overrides/sections.

    ``load_config(preset="cpu-demo", load={"concurrency": [1, 2]})`` — sections are nested dicts merged over
    the lower layers (so ``load={...}`` changes only the keys it names).
    """

    over = deep_merge(dict(overrides or {}), sections)
    return resolve_config(
        preset=preset,
        config_file=str(config_file) if config_file else None,
        use_env=use_env,
        overrides=over or None,
        overrides_name="arguments",
    ).config


def load_result(path: str | Path):
    """Rebuild the typed ``SweepResult`` of any results folder (finished, interrupted or merged)."""

    rd = ResultsDir.open(path)
    manifest = rd.manifest_doc()
    points = [point_from_dict(p) for p in rd.points()]
    result = SweepResult(
        rd.path,
        points=points,
        status=manifest.status,
        prompts_fingerprint=(manifest.prompts.fingerprint if manifest.prompts else None) or "",
    )
    result.speedups = [Speedup.from_row(s) for s in speedup_rows(result.rows(), rd.prompt_units)]
    result.categories = {
        p.point_id: category_acceptance(rd.records(p.point_id)) for p in points if rd.records_path(p.point_id).is_file()
    }
    return result
