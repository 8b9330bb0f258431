"""SD-on / SD-off speedups from summary rows, each with its 95 % interval, verdict and the flags of the two
points it divides (metrics.uncertainty says how intervals are made, metrics.flags what a flag is)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from speedbench.core.documents import point_complete
from speedbench.core.point_id import repeat_of
from speedbench.metrics import uncertainty as un
from speedbench.metrics.flags import pair_flags
from speedbench.metrics.paired import PromptUnits, paired_spread

# the per-prompt sums of a summary row's point (None when its records are not at hand)
UnitsOf = Callable[[dict], PromptUnits | None]
PAIRED = "paired bootstrap over {n} prompts"
UNPAIRED = "bootstrap over requests"

METRICS = (("output_tps", "output_tps", "output_tps_log_se"), ("user_tps", "user_tps_mean", "user_tps_log_se"))


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def speedup_rows(rows: Sequence[dict], units: UnitsOf | None = None) -> list[dict]:
    """SD-on / SD-off at the same (run, engine, ISL, concurrency, repeat): output TPS and mean user TPS ratios,
    output tokens per joule and $ per million output tokens ratios (None where either side has none).

    Repeat r of an SD-on point is divided by repeat r of SD off (or the first SD-off repeat when SD off has
    fewer), so the spread over repeats is not hidden by one baseline. Points that failed (server died,
    unreachable) are left out: their rates say nothing about SD. Each ratio carries a 95 % interval (from
    the repeats when there are several, else a paired bootstrap over the prompts both points measured,
    metrics.paired, when ``units`` gives both points' per-prompt sums; else, for points whose records are
    gone, from the two points' own log SEs as if independent) and its verdict;
    ``flags`` names what is wrong with either point (failed requests, client-bound, ...), '' when nothing.
    """
    rows = [r for r in rows if point_complete(r)]
    base: dict[tuple, dict] = {}
    for r in rows:
        if r["sd_method"] == "off":
            key = (r.get("run"), r["engine"], r["isl"], r["concurrency"])
            base.setdefault(key + (repeat_of(r.get("point_id", "")),), r)
            base.setdefault(key + (None,), r)
    out = []
    for r in rows:
        if r["sd_method"] == "off":
            continue
        key = (r.get("run"), r["engine"], r["isl"], r["concurrency"])
        b = base.get(key + (repeat_of(r.get("point_id", "")),)) or base.get(key + (None,))
        if not b:
            continue
        row = {
            "run": r.get("run"),
            "model": r.get("model"),
            "engine": r["engine"],
            "isl": r["isl"],
            "concurrency": r["concurrency"],
            "sd_label": r["sd_label"],
            "sd_method": r["sd_method"],
            "draft_length": r.get("draft_length"),
            "repeat": repeat_of(r.get("point_id", "")),
        }
        on_units, off_units = (units(r), units(b)) if units else (None, None)
        paired = paired_spread(on_units, off_units) if on_units and off_units else None
        for name, col, se in METRICS:
            ratio = _ratio(_num(r.get(col)), _num(b.get(col)))
            row[f"{name}_speedup"] = ratio
            if paired:
                ci = un.interval_from_log_se(ratio, getattr(paired, se))
            else:
                ci = un.ratio_interval(ratio, _num(r.get(se)), _num(b.get(se)))
            row[f"{name}_speedup_lo"], row[f"{name}_speedup_hi"] = ci if ci else (None, None)
        if row["output_tps_speedup_lo"] is None:
            row["interval_from"] = None
        else:
            row["interval_from"] = PAIRED.format(n=paired.prompts) if paired else UNPAIRED
        # tok/J ratio > 1: SD-on gets more tokens per joule; cost ratio < 1: SD-on tokens are cheaper
        row["tokens_per_joule_ratio"] = _ratio(r.get("output_tokens_per_joule"), b.get("output_tokens_per_joule"))
        row["cost_ratio"] = _ratio(r.get("usd_per_mtok"), b.get("usd_per_mtok"))
        row["flags"] = pair_flags(r, b)
        out.append(row)
    _intervals_from_repeats(out)
    for row in out:
        for name, _, _ in METRICS:
            lo, hi = row[f"{name}_speedup_lo"], row[f"{name}_speedup_hi"]
            row[f"{name}_verdict"] = un.verdict((lo, hi) if lo is not None else None)
    return out


def _intervals_from_repeats(out: list[dict]) -> None:
    """Where a setting has several repeats at a concurrency, every repeat's row gets the interval of their
    mean (Student t): repeats see run-to-run drift that one point's bootstrap cannot."""
    groups: dict[tuple, list[dict]] = {}
    for row in out:
        groups.setdefault((row["run"], row["engine"], row["isl"], row["concurrency"], row["sd_label"]), []).append(row)
    for grp in groups.values():
        if len(grp) < 2:
            continue
        for name, _, _ in METRICS:
            ci = un.repeats_interval([g[f"{name}_speedup"] for g in grp])
            if ci is None:
                continue
            for g in grp:
                g[f"{name}_speedup_lo"], g[f"{name}_speedup_hi"] = ci
                g["interval_from"] = f"{len(grp)} repeats"
