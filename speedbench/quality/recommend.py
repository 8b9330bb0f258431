"""The recommended draft length of one category at one setting, with its interval and a verdict."""

from __future__ import annotations

import numpy as np

from speedbench.quality.gamma_model import Curve, interval

MIN_PROMPTS = 5  # distinct prompts behind a category's figures (repeats of one prompt are not new data)
MIN_DRAFTED_STEPS = 100  # drafted decode steps behind its acceptance rates
BEATS = 0.95  # the best k must beat the runner-up in this share of bootstrap replicates
INSUFFICIENT = "insufficient data"
WITHIN_NOISE = "within noise"
RECOMMENDED = "recommended"
NO_COST = "insufficient data: step cost needs two measured draft lengths (sweep with --draft-lengths auto)"

NOTES = [
    f"verdict '{INSUFFICIENT}': fewer than {MIN_PROMPTS} distinct prompts or {MIN_DRAFTED_STEPS} drafted decode "
    "steps behind the category (no draft length is recommended from so little)",
    f"verdict '{WITHIN_NOISE}': the best draft length beats the runner-up (another k, or SD off at 1.0x) in "
    f"fewer than {BEATS:.0%} of bootstrap replicates; both are named",
    "speedup_lo/hi: 5th-95th percentile of the modeled speedup over bootstrap replicates (prompts resampled, "
    "one draw shared by every point; acceptance trend, undrafted share and step-cost line refitted on each)",
    "extrapolated: the recommended k lies beyond the largest measured draft length (acceptance from the fitted "
    "trend, step cost from the line beyond its last point)",
]


def _label(k: int) -> object:
    return k if k else "off"


def recommend(curve: Curve, prompts: int, drafted: int, measured_ks: tuple[int, ...]) -> dict:
    """Row fields for one category: recommended k (0 = off), verdict, interval, runner-up."""
    row: dict = {
        "prompts": prompts,
        "drafted_steps": drafted,
        "acceptance_trend_per_position": float(curve.fit.beta[0])
        if curve.fit is not None and curve.fit.trend_identifiable
        else None,
    }
    s = curve.speedup
    if s is None:
        return {**row, "recommended_draft_length": None, "verdict": NO_COST}
    if prompts < MIN_PROMPTS or drafted < MIN_DRAFTED_STEPS:
        return {
            **row,
            "recommended_draft_length": None,
            "verdict": f"{INSUFFICIENT} ({prompts} prompts, {drafted} drafted steps; need {MIN_PROMPTS} "
            f"and {MIN_DRAFTED_STEPS})",
        }
    # column 0 = SD off (exactly 1.0x, no uncertainty), column k = draft length k
    full = np.hstack([np.ones((s.shape[0], 1)), s])
    point = np.where(np.isfinite(full[0]), full[0], -np.inf)
    order = np.argsort(-point, kind="stable")
    best, second = int(order[0]), int(order[1])
    reps = full[1:]
    ok = np.isfinite(reps[:, best]) & np.isfinite(reps[:, second])
    p_beats = float(np.mean(reps[ok, best] > reps[ok, second])) if ok.any() else None
    lo, hi = interval(full[:, best]) if best else (None, None)
    verdict = (
        RECOMMENDED
        if p_beats is not None and p_beats >= BEATS
        else f"{WITHIN_NOISE}: {_label(best)} vs {_label(second)}"
    )
    row.update(
        {
            "recommended_draft_length": _label(best),
            "verdict": verdict,
            "expected_speedup": float(full[0, best]),
            "speedup_lo": lo,
            "speedup_hi": hi,
            "expected_tokens_per_step": float(curve.tokens_per_step[0, best - 1]) if best else 1.0,
            "runner_up": _label(second),
            "runner_up_speedup": float(full[0, second]),
            "p_beats_runner_up": p_beats,
            "extrapolated": bool(best and best > max(measured_ks)),
        }
    )
    return row


def per_k(curve: Curve) -> dict:
    """speedup_kN columns (as measured) for every modeled k."""
    s: np.ndarray | None = curve.speedup
    if s is None:
        return {}
    return {f"speedup_k{k + 1}": float(v) for k, v in enumerate(s[0]) if np.isfinite(v)}
