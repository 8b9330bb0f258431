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
    CostLine,
    Curve,
    PointSample,
    cost_ratios,
    fit_cost_line,
    interval,
    model_curve,
    sample_points,
    tokens_per_step,
)
from speedbench.quality.points import PointData, QualityError, check_inputs, load_points
from speedbench.quality.recommend import NOTES as RECOMMEND_NOTES
from speedbench.quality.recommend import per_k, recommend
from speedbench.results import ResultsDir

RECOMMENDATION_FILE = "recommendation.json"
VALIDATION_FILE = "gamma_validation.json"
HOLDOUT_Z = 2.0  # held-out tolerance: this many bootstrap standard deviations of (prediction - measurement)


def _decode_rate(samples: Sequence[PointSample]) -> np.ndarray | None:
    tot = [t for t in (s.total() for s in samples) if t is not None]
    if not tot:
        return None
    time = sum(t[:, TIME] for t in tot)
    return np.where(time > 0, sum(t[:, TOKENS] for t in tot) / np.where(time > 0, time, 1.0), np.nan)


def _k(s: PointSample) -> int:
    """The draft length of an SD-on sample (every sample a model is fitted on is one)."""
    if s.k is None:
        raise ValueError(f"an SD-off sample (repeat {s.repeat}) where SD-on ones are expected")
    return s.k


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
    at_k = [s for s in on if _k(s) == k]
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
    fit_on = [s for s in on if _k(s) < k]
    row["holdout_fit_draft_lengths"] = ",".join(map(str, sorted({_k(s) for s in fit_on}))) or None
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
            "acceptance_trend_identifiable": max(_k(s) for s in fit_on) >= 2,
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


Group = tuple  # (engine, isl, concurrency): the points one SD-off baseline serves (PointData.group)


def build_gamma(points: list[PointData]) -> tuple[dict, dict]:
    """(recommendation, validation), both {"rows": [...], "notes": [...]}: per SD-on method and concurrency
    with an SD-off baseline, the modeled draft lengths per category and the model checked against measurement."""
    offs, ons = _group_samples([p for p in points if p.records])
    rec_rows: list[dict] = []
    val_rows: list[dict] = []
    notes: list[str] = []
    for (group, method), on in sorted(ons.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        engine, isl, conc = group
        why_not = _why_no_model(on, offs.get(group))
        if why_not:
            notes.append(f"{method} at concurrency {conc}" + (f", ISL {isl}" if isl is not None else "") + why_not)
            continue
        base = {"engine": engine, "isl": isl, "concurrency": conc, "sd_method": method}
        rec, val = _model_group(base, on, offs[group])
        rec_rows += rec
        val_rows += val
    recommendation = {"rows": rec_rows, "notes": _recommendation_notes(notes)}
    return recommendation, {"rows": val_rows, "notes": _validation_notes(notes)}


def _group_samples(
    points: list[PointData],
) -> tuple[dict[Group, list[PointSample]], dict[tuple[Group, str], list[PointSample]]]:
    """The bootstrap samples of every point: SD-off ones by group, SD-on ones by (group, SD method)."""
    samples = dict(zip((p.point_id for p in points), sample_points(points)))
    offs: dict[Group, list[PointSample]] = defaultdict(list)
    ons: dict[tuple[Group, str], list[PointSample]] = defaultdict(list)
    for p in points:
        if p.sd_on:
            ons[(p.group, p.point["sd_method"])].append(samples[p.point_id])
        else:
            offs[p.group].append(samples[p.point_id])
    return offs, ons


def _why_no_model(on: list[PointSample], offs: list[PointSample] | None) -> str | None:
    """Why a group cannot be modeled (the note's tail), None when it can."""
    if not offs:
        return ": no SD-off point at this concurrency, no model"
    if not all(s.has_counters for s in on):
        return (
            ": requests without their own SD counters, no model (per-category acceptance "
            "needs per-request counters; the server's global counters are not mixed in)"
        )
    return None


def _model_group(base: dict, on: list[PointSample], offs: list[PointSample]) -> tuple[list[dict], list[dict]]:
    """One group's recommendation rows (one per category and 'all') and validation rows (one per measured k)."""
    ratios = cost_ratios(on, offs)
    cost = fit_cost_line(ratios)
    measured = tuple(sorted({_k(s) for s in on}))
    k_max = max(K_OF_INTEREST[1], *measured)
    curves = {cat: model_curve(on, cost, cat, k_max) for cat in sorted({c for s in on for c in s.sums}) + [ALL]}
    val_rows = [_validation_row(base, k, on, offs, ratios, curves[ALL]) for k in measured]
    rec_rows = [
        _recommendation_row(base, cat, curve, on, measured, cost) for cat, curve in curves.items() if curve is not None
    ]
    return rec_rows, val_rows


def _recommendation_row(
    base: dict, cat: str, curve: Curve, on: list[PointSample], measured: tuple[int, ...], cost: CostLine | None
) -> dict:
    prompts = len({pid for s in on for c, ids in s.prompts.items() if cat in (ALL, c) for pid in ids})
    drafted = int(sum(t[0, DRAFTED] for t in (s.total(cat) for s in on) if t is not None))
    return {
        **base,
        "category": cat,
        "measured_draft_lengths": ",".join(map(str, measured)),
        **recommend(curve, prompts, drafted, measured),
        "cost_fit_draft_lengths": ",".join(map(str, cost.ks)) if cost else None,
        "cost_slope_per_k": float(cost.slope[0]) if cost else None,
        "cost_fit_clamped": cost.clamped if cost else None,
        **per_k(curve),
    }


def _recommendation_notes(notes: list[str]) -> list[str]:
    return (
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


def _validation_notes(notes: list[str]) -> list[str]:
    return (
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


def write_gamma(path: str | Path, strict: bool = False) -> tuple[dict, dict]:
    """recommendation.json and gamma_validation.json of a results folder (build_gamma on its points).
    ``strict`` (the `recommend` command): a damaged manifest, a folder without records or baseline, and a
    folder where no group can be modeled raise QualityError naming the true reason, as `quality` does."""
    rd = ResultsDir.open(path)
    points = load_points(path)
    if strict:
        rd.manifest()  # a truncated or damaged manifest: ResultsError, one line
        check_inputs(points, path)
    rec, val = build_gamma(points)
    rd.write_document(RECOMMENDATION_FILE, rec)  # written either way: its notes say why a group has no rows
    rd.write_document(VALIDATION_FILE, val)
    if strict and not rec["rows"] and not val["rows"]:
        raise QualityError(_nothing_to_model(points, rec["notes"], path))
    return rec, val


def _nothing_to_model(points: list[PointData], notes: list[str], path: str | Path) -> str:
    """The one line `recommend` prints when no row could be built: the first group's own reason."""
    if not any(p.sd_on and p.records for p in points):
        return f"no SD-on point with records in {path}: recommend models SD-on points against SD off (--sd off,ngram:3)"
    why = next((n for n in notes if "no model" in n), None)  # build_gamma's per-group notes come first
    if why and "SD counters" in why:
        return (
            f"nothing to model in {path}: {why.split(' (')[0]}; per-category acceptance needs per-request SD "
            "metrics (vLLM's per-request SD metrics, SGLang meta_info), which this server did not send"
        )
    return f"nothing to model in {path}: {why or 'no SD-on point with an SD-off point at the same concurrency'}"
