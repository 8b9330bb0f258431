"""Pure functions from summary rows / point counters to what reports show: speedups, crossover, acceptance.

No I/O here: `speedbench.report.load` reads results folders, renderers format what these return.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from speedbench.metrics.summary import speedup_rows

# Rows describing the same SD setting of the same run share these keys.
SETTING_KEYS = ("run", "model", "engine", "sd_label", "sd_method", "draft_length")


def setting_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in SETTING_KEYS)


def setting_name(row: dict, with_run: bool = False) -> str:
    """'model / SD method / engine [/ k=draft length]' as in the SPEED-Bench tables."""
    parts = [str(row.get("model") or "?"), str(row.get("sd_method")), str(row.get("engine"))]
    if row.get("draft_length") and row.get("sd_method") != "off":
        parts.append(f"k={row['draft_length']}")
    name = " / ".join(parts)
    return f"{row['run']}: {name}" if with_run and row.get("run") else name


def speedups(rows: Sequence[dict]) -> list[dict]:
    """SD-on / SD-off pairs (see metrics.summary.speedup_rows, the one definition)."""
    return speedup_rows(rows)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or not b or (isinstance(a, float) and math.isnan(a)) or math.isnan(b):
        return None
    return a / b


@dataclass(frozen=True)
class Crossover:
    """Where SD stops paying along a concurrency sweep.

    status: 'crossover' (concurrency set), 'always_pays' (speedup ≥ 1 at the last point),
            'never_pays' (speedup < 1 everywhere), 'no_data'.
    below/above: the measured concurrencies that bracket the crossing.
    """
    status: str
    concurrency: Optional[float] = None
    below: Optional[int] = None
    above: Optional[int] = None

    def describe(self) -> str:
        if self.status == "crossover":
            return f"{self.concurrency:.1f} (between {self.below} and {self.above})"
        return {"always_pays": "none in range (SD pays at every concurrency)",
                "never_pays": "none in range (SD slower at every concurrency)"}.get(self.status, "no data")


def crossover(points: Iterable[tuple[int, Optional[float]]]) -> Crossover:
    """First concurrency after which the speedup stays < 1, interpolated linearly on log2(concurrency).

    ``points`` are (concurrency, speedup); points without a speedup are ignored.
    """
    pts = sorted((c, s) for c, s in points if s is not None and not math.isnan(s) and c > 0)
    if not pts:
        return Crossover("no_data")
    if pts[-1][1] >= 1.0:
        return Crossover("always_pays")
    i = len(pts) - 1
    while i > 0 and pts[i - 1][1] < 1.0:
        i -= 1
    if i == 0:
        return Crossover("never_pays")
    (c0, s0), (c1, s1) = pts[i - 1], pts[i]
    x0, x1 = math.log2(c0), math.log2(c1)
    frac = (s0 - 1.0) / (s0 - s1)  # s0 ≥ 1 > s1, so 0 ≤ frac < 1
    return Crossover("crossover", 2.0 ** (x0 + frac * (x1 - x0)), c0, c1)


def crossovers(speedup_rows: Sequence[dict]) -> list[dict]:
    """One row per (run, engine, ISL, SD setting): crossover concurrency for output TPS and user TPS."""
    groups: dict[tuple, list[dict]] = {}
    for s in speedup_rows:
        groups.setdefault((s.get("run"), s.get("model"), s["engine"], s["isl"], s["sd_label"]), []).append(s)
    out = []
    for (run, model, engine, isl, sd_label), grp in groups.items():
        row = {"run": run, "model": model, "engine": engine, "isl": isl, "sd_label": sd_label,
               "concurrencies": sorted(g["concurrency"] for g in grp)}
        for metric in ("output_tps", "user_tps"):
            x = crossover((g["concurrency"], g[f"{metric}_speedup"]) for g in grp)
            row[f"{metric}_crossover"] = x.concurrency
            row[f"{metric}_crossover_status"] = x.status
            row[f"{metric}_crossover_text"] = x.describe()
        out.append(row)
    return out


def position_acceptance(counters: Optional[dict]) -> list[dict]:
    """Per draft position i (1-based): absolute P(i accepted) and conditional P(i accepted | i−1 accepted).

    From engine-neutral counters: accepted_per_position[i] counts drafted steps whose position i was
    accepted; drafts counts drafted steps (position 0's condition: the step drafted at all).
    """
    if not counters or not counters.get("drafts"):
        return []
    drafts = counters["drafts"]
    acc = list(counters.get("accepted_per_position") or [])
    out = []
    prev = drafts
    for i, a in enumerate(acc):
        out.append({"position": i + 1, "accepted": a, "absolute": a / drafts,
                    "conditional": a / prev if prev else None})
        prev = a
    return out


def sum_counters(counters: Iterable[Optional[dict]]) -> Optional[dict]:
    """Σ of counter dicts (drafts, draft_tokens, accepted_tokens, accepted_per_position)."""
    total: Optional[dict] = None
    for c in counters:
        if not c:
            continue
        if total is None:
            total = {"drafts": 0, "draft_tokens": 0, "accepted_tokens": 0, "accepted_per_position": []}
        for k in ("drafts", "draft_tokens", "accepted_tokens"):
            total[k] += int(c.get(k) or 0)
        a, b = total["accepted_per_position"], list(c.get("accepted_per_position") or [])
        n = max(len(a), len(b))
        total["accepted_per_position"] = [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0)
                                          for i in range(n)]
    return total
