"""recommendation.json (draft length per category and concurrency) and gamma_validation.json (model vs
measurement per draft length) from a results folder's points and raw records."""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Optional

from speedbench.quality.equivalence import ALL
from speedbench.quality.gamma import (ASSUMPTIONS, CostFit, StepStats, expected_tokens_per_step, fit_cost_ratio,
                                      merge_stats, predict_tokens_per_step, recommend, step_stats)
from speedbench.quality.points import PointData, load_points
from speedbench.results import ResultsDir, atomic_write_text

RECOMMENDATION_FILE = "recommendation.json"
VALIDATION_FILE = "gamma_validation.json"
TOLERANCE = 0.05  # predicted tokens per step must be within 5 % of measured


def _stats(p: PointData, category: str = ALL) -> StepStats:
    recs = p.records if category == ALL else [r for r in p.records if r.category == category]
    s = step_stats(recs, sd_on=p.sd_on)
    c = p.point.get("counters")
    if category == ALL and p.sd_on and c and c.get("drafts"):
        # the server's global counter deltas over the measured requests are the reference acceptance figures;
        # the drafted-step count stays from the per-request arrays when the engine gave them
        g = s.with_counters(int(c["drafts"]), c.get("accepted_per_position") or [])
        s = StepStats(g.requests, g.decode_steps, g.decode_tokens, g.decode_time_s,
                      s.drafted_steps if s.drafted_steps is not None else g.drafted_steps, g.drafts,
                      g.accepted_per_position)
    return s


def _rates(s: StepStats, k: int) -> list[float]:
    a = list(s.cum_accept)
    return (a + [0.0] * k)[:k]


def _spread(xs: list[float]) -> dict:
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def _pct(pred: Optional[float], meas: Optional[float]) -> Optional[float]:
    return (pred - meas) / meas * 100 if pred is not None and meas else None


def build_gamma(points: list[PointData]) -> tuple[dict, dict]:
    """(recommendation, validation), both {"rows": [...], "notes": [...]}."""
    off_by_group: dict[tuple, dict[int, PointData]] = defaultdict(dict)
    on_by_key: dict[tuple, dict[int, dict[int, PointData]]] = defaultdict(lambda: defaultdict(dict))
    for p in points:
        if not p.records:
            continue
        if p.sd_on:
            on_by_key[(p.group, p.point["sd_method"])][int(p.draft_length)][p.repeat] = p
        else:
            off_by_group[p.group][p.repeat] = p
    rec_rows, val_rows, notes = [], [], list(ASSUMPTIONS)
    for (group, method), by_k in sorted(on_by_key.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        offs = off_by_group.get(group)
        if not offs:
            notes.append(f"{method} at {group}: no SD-off point at this concurrency, no model")
            continue
        off_first = offs[min(offs)]

        def off_for(rep: int) -> PointData:
            return offs.get(rep, off_first)

        # measured cost ratio ITL_on(k)/ITL_off per repeat (paired with the SD-off point of the same repeat)
        ratios: dict[int, list[float]] = {}
        speedups: dict[int, list[float]] = {}
        e2e_speedups: dict[int, list[float]] = {}
        for k, reps in by_k.items():
            for rep, p in reps.items():
                on, off = _stats(p), _stats(off_for(rep))
                if on.itl_s and off.itl_s:
                    ratios.setdefault(k, []).append(on.itl_s / off.itl_s)
                if on.decode_tps and off.decode_tps:
                    speedups.setdefault(k, []).append(on.decode_tps / off.decode_tps)
                o_tps = off_for(rep).point.get("output_tps")
                if o_tps:
                    e2e_speedups.setdefault(k, []).append(p.point["output_tps"] / o_tps)
        mean_ratio = {k: statistics.fmean(v) for k, v in ratios.items()}
        cost = fit_cost_ratio(list(mean_ratio), list(mean_ratio.values()))
        k_max = max(by_k)
        kmax_all = merge_stats(_stats(p) for p in by_k[k_max].values())
        a_max, f_max = _rates(kmax_all, k_max), kmax_all.f_draft
        engine, isl, conc = group
        base = {"engine": engine, "isl": isl, "concurrency": conc, "sd_method": method}

        for k in sorted(by_k):
            reps = by_k[k]
            per_rep = [_stats(p) for p in reps.values()]
            pooled = merge_stats(per_rep)
            meas_tps = pooled.tokens_per_step
            own = (expected_tokens_per_step(_rates(pooled, k), k, pooled.f_draft)
                   if pooled.f_draft is not None else None)
            pred, f_pred = predict_tokens_per_step(a_max, k_max, f_max, k) if f_max is not None else (None, None)
            others = {kk: r for kk, r in mean_ratio.items() if kk != k}
            loo: Optional[CostFit] = fit_cost_ratio(list(others), list(others.values())) if others else None
            r_loo = loo.ratio(k) if loo else None
            sp = _spread(speedups.get(k, []))
            pred_sp = pred / mean_ratio[k] if pred is not None and k in mean_ratio else None
            pred_sp_loo = pred / r_loo if pred is not None and r_loo and r_loo > 0 else None
            val_rows.append({
                **base, "draft_length": k, "repeats": len(reps), "decode_steps": pooled.decode_steps,
                "f_draft": pooled.f_draft, "f_draft_predicted": f_pred,
                "tokens_per_step_measured": meas_tps,
                "tokens_per_step_measured_std": _spread([s.tokens_per_step for s in per_rep])["std"],
                "tokens_per_step_own_counters": own,
                "tokens_per_step_predicted": pred,
                "prediction_basis": ("fitted: k_max's own rates (in-sample)" if k == k_max
                                     else f"predicted from k={k_max} per-position rates and undrafted-token share"),
                "tokens_per_step_error_pct": _pct(pred, meas_tps),
                "within_5pct": (abs(pred - meas_tps) <= TOLERANCE * meas_tps) if pred and meas_tps else None,
                "cost_ratio_measured": mean_ratio.get(k),
                "cost_ratio_loo": r_loo,
                "speedup_measured": sp["mean"], "speedup_measured_std": sp["std"],
                "speedup_measured_min": sp["min"], "speedup_measured_max": sp["max"],
                "output_tps_speedup_measured": _spread(e2e_speedups.get(k, []))["mean"],
                "speedup_predicted": pred_sp, "speedup_error_pct": _pct(pred_sp, sp["mean"]),
                "speedup_predicted_loo": pred_sp_loo, "speedup_loo_error_pct": _pct(pred_sp_loo, sp["mean"]),
            })

        if cost is None:
            notes.append(f"{method} at {group}: no step-time measurements, no recommendation")
            continue
        cats = sorted({r.category for p in by_k[k_max].values() for r in p.records})
        for cat in cats + [ALL]:
            s = kmax_all if cat == ALL else merge_stats(_stats(p, cat) for p in by_k[k_max].values())
            if s.f_draft is None or not s.decode_steps:
                continue
            best, cands = recommend(_rates(s, k_max), s.f_draft, cost)
            top = next((c for c in cands if c.k == best), None)
            row = {**base, "category": cat, "recommended_draft_length": best if best else "off",
                   "expected_speedup": top.speedup if top else 1.0,
                   "expected_tokens_per_step": top.tokens_per_step if top else 1.0,
                   "f_draft": s.f_draft, "acceptance_a1": _rates(s, k_max)[0] if k_max else None,
                   "rates_from_k": k_max, "cost_fit_ks": ",".join(map(str, cost.ks)),
                   "cost_fit_slope": cost.slope, "cost_fit_clamped": cost.clamped}
            row.update({f"speedup_k{c.k}": c.speedup for c in cands})
            rec_rows.append(row)
    notes += [
        "recommended_draft_length 'off' = no draft length is modeled to beat SD off",
        "per-category figures use that category's acceptance rates and f_draft with the concurrency's pooled "
        "step cost (step cost is taken as independent of the prompt's category)",
        "cost ratios beyond the measured draft lengths are extrapolations of the fitted line",
    ]
    val_notes = list(ASSUMPTIONS) + [
        "tokens_per_step_measured: streamed decode tokens / decode steps (first chunk = prefill excluded), "
        "pooled over repeats; *_std is the spread over repeats",
        "tokens_per_step_own_counters: the model fed with this k's own counters (a consistency check, not a "
        "prediction)",
        "speedup_measured: decode-rate ratio SD-on/SD-off (tokens after the first / decode time), paired by "
        "repeat; mean, std, min, max over repeats",
        "speedup_predicted = predicted tokens/step / measured cost ratio at this k; speedup_predicted_loo uses "
        "the cost line fitted on the other draft lengths only (out of sample)",
        f"within_5pct: |predicted - measured| <= {TOLERANCE:.0%} of measured tokens per step",
    ]
    return {"rows": rec_rows, "notes": notes}, {"rows": val_rows, "notes": val_notes}


def write_gamma(path: str | Path) -> tuple[dict, dict]:
    rd = ResultsDir(path)
    rec, val = build_gamma(load_points(path))
    atomic_write_text(rd.path / RECOMMENDATION_FILE, json.dumps(rec, indent=2, default=str))
    atomic_write_text(rd.path / VALIDATION_FILE, json.dumps(val, indent=2, default=str))
    return rec, val
