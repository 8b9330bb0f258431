"""recommendation.json (draft length per category and concurrency, with confidence) and gamma_validation.json
(the model against measurement, in sample and on held-out draft lengths) from a results folder."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speedbench.quality.draft_plan import K_OF_INTEREST
from speedbench.quality.equivalence import ALL
from speedbench.quality.gamma import ASSUMPTIONS
from speedbench.quality.gamma_model import (
    DRAFTED,
    STEPS,
    TIME,
    TOKENS,
    Curve,
    PointSample,
    cost_ratios,
    fit_cost_line,
    interval,
    model_curve,
    sample_points,
    tokens_per_step,
)
from speedbench.quality.points import PointData, load_points
from speedbench.quality.recommend import NOTES as RECOMMEND_NOTES
from speedbench.quality.recommend import per_k, recommend
from speedbench.results import ResultsDir

RECOMMENDATION_FILE = "recommendation.json"
VALIDATION_FILE = "gamma_validation.json"
HOLDOUT_Z = 2.0  # held-out tolerance: this many bootstrap standard deviations of (prediction - measurement)


def _decode_rate(samples: Sequence[PointSample]) -> np.ndarray | None:
    tot = [s.total() for s in samples if s.total() is not None]
    if not tot:
        return None
    time = sum(t[:, TIME] for t in tot)
    return np.where(time > 0, sum(t[:, TOKENS] for t in tot) / np.where(time > 0, time, 1.0), np.nan)


def _f(x: np.ndarray | None) -> float | None:
    return float(x[0]) if x is not None and np.isfinite(x[0]) else None


def _sd(x: np.ndarray | None) -> float | None:
    if x is None:
        return None
    reps = x[1:][np.isfinite(x[1:])]
    return float(reps.std(ddof=1)) if reps.size > 1 else None


def _pct(pred: float | None, meas: float | None) -> float | None:
    return (pred - meas) / meas * 100 if pred is not None and meas else None


def _validation_row(
    base: dict,
    k: int,
    on: list[PointSample],
    offs: list[PointSample],
    ratios: dict[int, np.ndarray],
    in_sample: Curve | None,
) -> dict:
    at_k = [s for s in on if s.k == k]
    t_meas = tokens_per_step(at_k)
    on_rate, off_rate = _decode_rate(at_k), _decode_rate(offs)
    s_meas = on_rate / off_rate if on_rate is not None and off_rate is not None else None
    steps = sum(t[0, STEPS] for t in (s.total() for s in at_k) if t is not None)
    drafted = sum(t[0, DRAFTED] for t in (s.total() for s in at_k) if t is not None)
    row = {
        **base,
        "draft_length": k,
        "repeats": len(at_k),
        "decode_steps": int(steps),
        "f_draft": drafted / steps if steps else None,
        "tokens_per_step_measured": _f(t_meas),
        "tokens_per_step_measured_sd": _sd(t_meas),
        "tokens_per_step_in_sample": _f(in_sample.tokens_per_step[:, k - 1]) if in_sample else None,
        "speedup_measured": _f(s_meas),
        "speedup_measured_sd": _sd(s_meas),
        "cost_ratio_measured": _f(ratios.get(k)),
    }
    fit_on = [s for s in on if s.k < k]
    row["holdout_fit_draft_lengths"] = ",".join(map(str, sorted({s.k for s in fit_on}))) or None
    held = model_curve(fit_on, fit_cost_line({kk: r for kk, r in ratios.items() if kk < k}), ALL, k) if fit_on else None
    if held is None:
        return row
    t_pred = held.tokens_per_step[:, k - 1]
    pred, meas = _f(t_pred), _f(t_meas)
    # paired: every replicate draws the same prompts at every k, so prediction and measurement move together
    # and the spread of their difference is what this prompt set can resolve (each alone varies far more)
    tol = HOLDOUT_Z * (_sd(t_pred - t_meas) or 0.0)
    lo, hi = interval(t_pred)
    row.update(
        {
            "tokens_per_step_holdout": pred,
            "tokens_per_step_holdout_lo": lo,
            "tokens_per_step_holdout_hi": hi,
            "tokens_per_step_holdout_error_pct": _pct(pred, meas),
            "tokens_per_step_holdout_tolerance": tol,
            "holdout_within_tolerance": abs(pred - meas) <= tol if pred is not None and meas else None,
            "acceptance_trend_identifiable": max(s.k for s in fit_on) >= 2,
        }
    )
    if held.speedup is not None:
        sp = _f(held.speedup[:, k - 1])
        lo, hi = interval(held.speedup[:, k - 1])
        row.update(
            {
                "speedup_holdout": sp,
                "speedup_holdout_lo": lo,
                "speedup_holdout_hi": hi,
                "speedup_holdout_error_pct": _pct(sp, _f(s_meas)),
            }
        )
    return row


def build_gamma(points: list[PointData]) -> tuple[dict, dict]:
    """(recommendation, validation), both {"rows": [...], "notes": [...]}."""
    points = [p for p in points if p.records]
    samples = dict(zip((p.point_id for p in points), sample_points(points)))
    offs: dict[tuple, list[PointSample]] = defaultdict(list)
    ons: dict[tuple, list[PointSample]] = defaultdict(list)
    for p in points:
        if p.sd_on:
            ons[(p.group, p.point["sd_method"])].append(samples[p.point_id])
        else:
            offs[p.group].append(samples[p.point_id])
    rec_rows, val_rows, notes = [], [], []
    for (group, method), on in sorted(ons.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        engine, isl, conc = group
        where = f"{method} at concurrency {conc}" + (f", ISL {isl}" if isl is not None else "")
        if not offs.get(group):
            notes.append(f"{where}: no SD-off point at this concurrency, no model")
            continue
        if not all(s.has_counters for s in on):
            notes.append(
                f"{where}: requests without their own SD counters, no model (per-category acceptance "
                "needs per-request counters; the server's global counters are not mixed in)"
            )
            continue
        base = {"engine": engine, "isl": isl, "concurrency": conc, "sd_method": method}
        ratios = cost_ratios(on, offs[group])
        cost = fit_cost_line(ratios)
        measured = tuple(sorted({s.k for s in on}))
        k_max = max(K_OF_INTEREST[1], *measured)
        curves = {cat: model_curve(on, cost, cat, k_max) for cat in sorted({c for s in on for c in s.sums}) + [ALL]}
        val_rows += [_validation_row(base, k, on, offs[group], ratios, curves[ALL]) for k in measured]
        for cat, curve in curves.items():
            if curve is None:
                continue
            prompts = len({pid for s in on for c, ids in s.prompts.items() if cat in (ALL, c) for pid in ids})
            drafted = int(sum(t[0, DRAFTED] for t in (s.total(cat) for s in on) if t is not None))
            row = {
                **base,
                "category": cat,
                "measured_draft_lengths": ",".join(map(str, measured)),
                **recommend(curve, prompts, drafted, measured),
                "cost_fit_draft_lengths": ",".join(map(str, cost.ks)) if cost else None,
                "cost_slope_per_k": float(cost.slope[0]) if cost else None,
                "cost_fit_clamped": cost.clamped if cost else None,
                **per_k(curve),
            }
            rec_rows.append(row)
    rec_notes = (
        notes
        + list(ASSUMPTIONS)
        + RECOMMEND_NOTES
        + [
            "recommended_draft_length 'off' = no draft length is modeled to beat SD off",
            "every row, 'all' included, is built from the per-request SD counters and per-request decode steps of "
            "its requests ('all' pools every category's requests): one source, never mixed with the server's "
            "global counters",
            "per-category figures use that category's acceptance and undrafted share with the concurrency's pooled "
            "step cost (step cost is taken as independent of the prompt's category)",
            f"speedup_kN: modeled speedup at draft length N, N = 1..max({K_OF_INTEREST[1]}, largest measured)",
        ]
    )
    val_notes = (
        notes
        + list(ASSUMPTIONS)
        + [
            "tokens_per_step_measured: streamed decode tokens / decode steps (first chunk = prefill excluded), "
            "repeats pooled; *_sd: bootstrap standard deviation (requests resampled)",
            "speedup_measured: decode-rate ratio SD-on/SD-off (tokens after the first / decode time), pooled",
            "tokens_per_step_in_sample: the model fitted on every measured draft length (a consistency check)",
            "*_holdout: the model fitted only on the smaller measured draft lengths (holdout_fit_draft_lengths), "
            "predicting this one: the test of the acceptance extrapolation and of the step-cost line; "
            "_lo/_hi = 5th-95th bootstrap percentile",
            f"holdout_within_tolerance: |predicted - measured| tokens/step <= tokens_per_step_holdout_tolerance = "
            f"{HOLDOUT_Z:g} x the bootstrap standard deviation of (predicted - measured); prompts are resampled with "
            "one draw shared by every draft length, so prediction and measurement stay paired",
        ]
    )
    return {"rows": rec_rows, "notes": rec_notes}, {"rows": val_rows, "notes": val_notes}


def write_gamma(path: str | Path) -> tuple[dict, dict]:
    rd = ResultsDir.open(path)
    rec, val = build_gamma(load_points(path))
    rd.write_document(RECOMMENDATION_FILE, rec)
    rd.write_document(VALIDATION_FILE, val)
    return rec, val
