"""After a complete sweep: quality.json, recommendation.json, gamma_validation.json, when it has SD off and on."""

from __future__ import annotations

import logging
from pathlib import Path

from speedbench.config import BenchmarkConfig
from speedbench.quality.gamma_report import write_gamma
from speedbench.quality.quality_report import write_quality

log = logging.getLogger(__name__)


def write_post_sweep(path: Path, cfg: BenchmarkConfig) -> None:
    """Never fails the sweep: the measurements are on disk and the analysis can be rerun by hand."""
    if not (any(s.enabled for s in cfg.sd) and any(not s.enabled for s in cfg.sd)):
        return
    try:
        write_quality(
            path,
            bertscore=cfg.quality.bertscore,
            bertscore_model=cfg.quality.bertscore_model,
            bertscore_layers=cfg.quality.bertscore_layers,
        )
        write_gamma(path)
        log.info(
            "quality.json, recommendation.json and gamma_validation.json written (speedbench quality|recommend %s)",
            path,
        )
    except Exception as e:
        log.warning("post-sweep quality analysis failed: %s: %s", type(e).__name__, e)
