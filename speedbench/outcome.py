"""What a sweep returns (SweepResult), and what a finished or stopped sweep means for the exit status,
in one line a person can act on.

Exit status of ``speedbench sweep``:
    0    every planned point finished within the error budget
    1    results written, but some point failed (server died mid-point) or exceeded load.max_error_rate
    2    bad input: config, CLI flags, or a resume that does not match the folder
    3    the server could not be started or reached, or it died and the sweep stopped
    130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM. Finished points are kept either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speedbench.core.documents import point_complete
from speedbench.metrics.category import CategoryAcceptance
from speedbench.metrics.flags import latency_unmeasured
from speedbench.metrics.summary import PointSummary

EXIT_OK, EXIT_POINTS, EXIT_USAGE, EXIT_ENGINE = 0, 1, 2, 3


@dataclass
class Outcome:
    exit_code: int
    problems: list[str] = field(default_factory=list)
    totals: dict = field(default_factory=dict)

    @property
    def line(self) -> str:
        t = self.totals
        head = (
            f"{t.get('points', 0)} points: {t.get('ok', 0)} ok, {t.get('failed', 0)} failed, "
            f"{t.get('cancelled', 0)} cancelled, {t.get('not_sent', 0)} not sent of "
            f"{t.get('planned', 0)} requests"
        )
        return head + ("; " + "; ".join(self.problems) if self.problems else "; no failures")


def _errors(p: dict) -> str:
    kinds = p.get("errors_by_kind") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))


def sweep_outcome(
    points: Sequence[dict], max_error_rate: float, stopped_reason: str | None = None, missing: Sequence[str] = ()
) -> Outcome:
    """Judge the ended points (dicts from points.jsonl) of a sweep."""
    problems: list[str] = []
    totals = {"points": len(points), "ok": 0, "failed": 0, "cancelled": 0, "not_sent": 0, "planned": 0}
    code = EXIT_OK
    for p in points:
        not_sent = p.get("not_sent", 0)
        planned = p["sent"] + not_sent
        for k in ("ok", "failed", "cancelled"):
            totals[k] += p[k]
        totals["not_sent"] += not_sent
        totals["planned"] += planned
        rate = (planned - p["ok"]) / planned if planned else 0.0
        if not point_complete(p):
            problems.append(f"{p['point_id']} FAILED ({p.get('abort_reason') or 'cut short'}; {p['ok']}/{planned} ok)")
            code = EXIT_POINTS
        elif latency_unmeasured(p):
            problems.append(
                f"{p['point_id']}: {p['ok']} requests ended ok but no token chunk was timed "
                "(TTFT, ITL, TPOT, user TPS unmeasured): the stream carried no countable tokens"
            )
            code = EXIT_POINTS
        elif rate > max_error_rate:
            problems.append(f"{p['point_id']} {rate:.1%} errors > {max_error_rate:.1%} ({_errors(p) or 'no ok'})")
            code = EXIT_POINTS
    if missing:
        problems.append(
            f"{len(missing)} planned points not run ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})"
        )
    if stopped_reason:
        problems.append(stopped_reason)
        code = EXIT_ENGINE
    return Outcome(code, problems, totals)


@dataclass(frozen=True)
class Speedup:
    """SD-on / SD-off at the same (engine, ISL, concurrency); None where the baseline rate is zero."""

    engine: str
    isl: int | None
    concurrency: int
    sd_label: str
    output_tps_speedup: float | None
    user_tps_speedup: float | None
    repeat: int = 1
    # 95 % intervals, verdicts ('pays' | 'slower' | 'within noise') and the points' flags (metrics.speedup)
    output_tps_speedup_lo: float | None = None
    output_tps_speedup_hi: float | None = None
    user_tps_speedup_lo: float | None = None
    user_tps_speedup_hi: float | None = None
    output_tps_verdict: str | None = None
    user_tps_verdict: str | None = None
    interval_from: str | None = None
    flags: str = ""

    @classmethod
    def from_row(cls, row: dict) -> Speedup:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__ if f in row})


@dataclass
class SweepResult:
    """What ``BenchmarkRunner.run()`` returns; the same facts are on disk in ``results_dir``."""

    results_dir: Path
    points: list[PointSummary] = field(default_factory=list)
    speedups: list[Speedup] = field(default_factory=list)
    prompts_fingerprint: str = ""
    stopped_reason: str | None = None  # the sweep stopped early: server gone and not restarted
    skipped: list[str] = field(default_factory=list)  # points already finished (resume)
    status: str = "running"  # complete | interrupted | failed, as in manifest.json
    # point_id -> acceptance per prompt category (metrics.category), computed from the point's records
    categories: dict[str, list[CategoryAcceptance]] = field(default_factory=dict)
    # Filled by later stages (quality checks, recommendation); None until they exist / have run.
    quality: dict[str, Any] | None = None
    recommendation: dict[str, Any] | None = None

    def rows(self) -> list[dict]:
        """Flat summary rows, as in summary.csv."""
        return [p.to_row() for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (REST responses, notebooks)."""
        return {
            "results_dir": str(self.results_dir),
            "status": self.status,
            "prompts_fingerprint": self.prompts_fingerprint,
            "points": [asdict(p) for p in self.points],
            "speedups": [asdict(s) for s in self.speedups],
            "categories": {k: [c.to_dict() for c in v] for k, v in self.categories.items()},
            "quality": self.quality,
            "recommendation": self.recommendation,
        }
