"""The draft-length model over bootstrap replicates: tokens per step T(k), step cost r(k), speedup S(k).

The prompts are resampled with replacement (B times, fixed seed, one draw shared by every point), so each
figure comes as row 0 (all requests as measured) plus B replicates whose spread is its uncertainty:
prompt-to-prompt variation in acceptance and in step time, carried through the fits.
The model itself is stated in speedbench.quality.gamma (ASSUMPTIONS); here:

* conditional acceptance per position pooled over every measured draft length of the setting (a shorter
  draft is a prefix of a longer one), extrapolated beyond the largest measured position by the logistic
  trend of speedbench.quality.decay;
* g, the share of output tokens emitted on steps without a draft, pooled over the measured draft lengths;
* the step-cost ratio r(k) = ITL_on(k) / ITL_off at the same concurrency, a least-squares line in k; it needs
  two distinct measured draft lengths (with one, cost at any other k is unknown and nothing is recommended).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speedbench.core.records import OK, RequestRecord
from speedbench.quality.decay import DecayFit, fit_decay, position_counts
from speedbench.quality.equivalence import ALL
from speedbench.quality.gamma import drafted_steps
from speedbench.quality.points import PointData

BOOTSTRAP = 200  # replicates; percentiles below come from these
SEED = 0  # fixed: the same results folder always gives the same intervals
STEPS, TOKENS, TIME, DRAFTED, DRAFTS = range(5)  # columns of a request row; accepted-at-position j after them


@dataclass
class PointSample:
    """One measured point: per category, (1 + BOOTSTRAP, columns) sums over its requests; row 0 = as measured."""

    k: int | None  # draft length; None for SD off
    repeat: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    prompts: dict[str, set] = field(default_factory=dict)
    has_counters: bool = True  # every SD-on request carried its own SD counters

    def total(self, category: str = ALL) -> np.ndarray | None:
        if category == ALL:
            return add_arrays(self.sums.values()) if self.sums else None
        return self.sums.get(category)


def add_arrays(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Elementwise sum, exactly as builtin ``sum`` adds them (0 + a + b ...): typeshed's ``sum`` cannot
    type a start of 0 broadcast into an array."""
    total: Any = 0
    for a in arrays:
        total = total + a
    return total


def _measured(p: PointData) -> list[RequestRecord]:
    return [r for r in p.records if r.status == OK and not r.warmup and len(r.chunk_tokens) >= 2]


def prompt_weights(
    points: Sequence[PointData], rng: np.random.Generator, reps: int = BOOTSTRAP
) -> dict[str, np.ndarray]:
    """prompt id -> (reps,) how often each replicate draws it; one draw shared by every point.

    Prompts, not requests, are resampled, and the same draw is used at every point: the points measured the
    same prompts, so a prediction at one k and the measurement at another stay paired (their difference has
    its own, smaller, spread). Draws are stratified by category, keeping the design's category mix; the
    categories with a single prompt form one stratum together (a stratum of one never varies).
    """
    category: dict[str, str] = {}
    for p in points:
        for r in _measured(p):
            category.setdefault(r.prompt_id, r.category)
    strata: dict[str, list[str]] = {}
    for pid, cat in sorted(category.items()):
        strata.setdefault(cat, []).append(pid)
    singles = sorted(pid for ids in strata.values() if len(ids) == 1 for pid in ids)
    groups = [ids for ids in strata.values() if len(ids) > 1] + ([singles] if singles else [])
    out: dict[str, np.ndarray] = {}
    for ids in groups:
        draws = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=reps)  # (reps, len(ids))
        out.update({pid: draws[:, i] for i, pid in enumerate(ids)})
    return out


def sample_point(p: PointData, weights: dict[str, np.ndarray]) -> PointSample:
    """Per-request rows of a point, summed per category as measured and under each replicate's prompt draw."""
    k = int(p.draft_length or 0) if p.sd_on else None
    rows: dict[str, list[list[float]]] = {}
    drawn: dict[str, list[np.ndarray]] = {}
    prompts: dict[str, set] = {}
    has_counters = True
    for r in _measured(p):
        acc = [0.0] * (k or 0)
        drafts, drafted = 0, 0
        if p.sd_on:
            if not r.sd:
                has_counters = False
            else:
                drafts = int(r.sd.get("drafts", 0))
                for i, x in enumerate((r.sd.get("accepted_per_position") or [])[: len(acc)]):
                    acc[i] = float(x)
            drafted = drafted_steps(r) or 0
        rows.setdefault(r.category, []).append(
            [
                len(r.chunk_tokens) - 1,
                r.chunk_tokens[-1] - r.chunk_tokens[0],
                (r.chunk_times_ns[-1] - r.chunk_times_ns[0]) * 1e-9,
                drafted,
                drafts,
            ]
            + acc
        )
        drawn.setdefault(r.category, []).append(weights[r.prompt_id])
        prompts.setdefault(r.category, set()).add(r.prompt_id)
    out = PointSample(k, p.repeat, prompts=prompts, has_counters=has_counters)
    for cat, rs in sorted(rows.items()):
        x = np.asarray(rs, dtype=float)
        w = np.stack(drawn[cat], axis=1)  # (reps, requests)
        out.sums[cat] = np.vstack([x.sum(axis=0, keepdims=True), w @ x])
    return out


def sample_points(points: Sequence[PointData], reps: int = BOOTSTRAP, seed: int = SEED) -> list[PointSample]:
    weights = prompt_weights(points, np.random.default_rng(seed), reps)
    return [sample_point(p, weights) for p in points]


# ---- the model, per replicate -----------------------------------------------------------------------


def itl(samples: Sequence[PointSample], category: str = ALL) -> np.ndarray | None:
    """Mean decode-step time per replicate, pooled over the points."""
    tot = [t for t in (s.total(category) for s in samples) if t is not None]
    if not tot:
        return None
    steps = sum(t[:, STEPS] for t in tot)
    return np.where(steps > 0, sum(t[:, TIME] for t in tot) / np.maximum(steps, 1), np.nan)


def tokens_per_step(samples: Sequence[PointSample], category: str = ALL) -> np.ndarray | None:
    tot = [t for t in (s.total(category) for s in samples) if t is not None]
    if not tot:
        return None
    steps = sum(t[:, STEPS] for t in tot)
    return np.where(steps > 0, sum(t[:, TOKENS] for t in tot) / np.maximum(steps, 1), np.nan)


def acceptance_fit(on: Sequence[PointSample], category: str = ALL) -> DecayFit | None:
    """Conditional acceptance per position, pooled over every draft length in ``on``."""
    parts = [(s.k, t) for s in on if s.k and (t := s.total(category)) is not None]
    if not parts:
        return None
    j_max = max(k for k, _ in parts)
    reps = parts[0][1].shape[0]
    trials, successes = np.zeros((reps, j_max)), np.zeros((reps, j_max))
    for k, t in parts:
        tr, su = position_counts(t[:, DRAFTS], t[:, DRAFTS + 1 : DRAFTS + 1 + k])
        pad = ((0, 0), (0, j_max - k))
        trials, successes = trials + np.pad(tr, pad), successes + np.pad(su, pad)
    if not np.any(np.asarray(trials)[0] > 0):
        return None  # no drafted step at all: nothing to fit
    return fit_decay(trials, successes)


def undrafted_share(on: Sequence[PointSample], category: str = ALL) -> np.ndarray | None:
    """g per replicate: tokens emitted on steps without a draft (1 each) / all decode tokens."""
    tot = [t for t in (s.total(category) for s in on) if t is not None]
    if not tot:
        return None
    tokens = sum(t[:, TOKENS] for t in tot)
    return np.where(tokens > 0, sum(t[:, STEPS] - t[:, DRAFTED] for t in tot) / np.maximum(tokens, 1), np.nan)


def tokens_per_step_curve(fit: DecayFit, g: np.ndarray, k_max: int) -> np.ndarray:
    """(R, k_max): T(k) for k = 1..k_max, with f(k) carried across k by the undrafted-token share g."""
    e = 1.0 + np.cumsum(fit.cumulative(k_max), axis=1)  # tokens per drafted step
    drafted = (1.0 - g)[:, None] / e
    f = drafted / (drafted + g[:, None])
    return f * e + (1.0 - f)


@dataclass(frozen=True)
class CostLine:
    """r(k) = intercept + slope * k per replicate; None-free only when two distinct k were measured."""

    intercept: np.ndarray
    slope: np.ndarray
    ks: tuple[int, ...]
    clamped: bool  # the as-measured ratios fell with k: noise, replaced by their mean

    def ratio(self, k_max: int) -> np.ndarray:
        k = np.arange(1, k_max + 1, dtype=float)
        return self.intercept[:, None] + self.slope[:, None] * k[None, :]


def cost_ratios(on: Sequence[PointSample], off: Sequence[PointSample]) -> dict[int, np.ndarray]:
    """ITL_on(k) / ITL_off per measured k, per replicate (repeats pooled)."""
    off_itl = itl(off)
    if off_itl is None:
        return {}
    out = {}
    for k in sorted({s.k for s in on if s.k}):
        on_itl = itl([s for s in on if s.k == k])
        if on_itl is not None:
            out[k] = on_itl / off_itl
    return out


def fit_cost_line(ratios: dict[int, np.ndarray]) -> CostLine | None:
    """Least-squares line per replicate; None below two distinct k (the slope would be a guess)."""
    ks = sorted(k for k, r in ratios.items() if np.isfinite(r[0]))
    if len(ks) < 2:
        return None
    x = np.asarray(ks, dtype=float)
    y = np.stack([ratios[k] for k in ks], axis=1)  # (R, n)
    xm, ym = x.mean(), y.mean(axis=1)
    slope = ((x - xm)[None, :] * (y - ym[:, None])).sum(axis=1) / ((x - xm) ** 2).sum()
    # verifying more draft tokens cannot make a step cheaper: a falling line is noise -> the mean cost
    falling = slope < 0
    slope = np.where(falling, 0.0, slope)
    return CostLine(ym - slope * xm, slope, tuple(ks), bool(falling[0]))


@dataclass(frozen=True)
class Curve:
    """One category at one setting: T(k), r(k), S(k) for k = 1..k_max, per replicate (row 0 = as measured)."""

    tokens_per_step: np.ndarray
    cost: np.ndarray | None
    fit: DecayFit | None  # None for "all" (a mixture has no single trend) or a category never drafted

    @property
    def speedup(self) -> np.ndarray | None:
        return None if self.cost is None else self.tokens_per_step / self.cost


def model_curve(on: Sequence[PointSample], cost: CostLine | None, category: str, k_max: int) -> Curve | None:
    """The category's curve; for ALL the token-weighted mixture of the categories' own curves.

    Why a mixture: pooling the counts of categories that accept differently makes the pooled conditional rate
    rise with position (the drafts that survive come more and more from the high-acceptance category), so one
    trend fitted to the pool extrapolates wrong. Each category's output tokens N_c do not depend on k, so
    T_all(k) = sum N_c / sum (N_c / T_c(k)): the same decode steps the categories would take.
    """
    cost_arr = cost.ratio(k_max) if cost is not None else None
    if cost_arr is not None:
        cost_arr = np.where(cost_arr > 0, cost_arr, np.nan)  # an extrapolated line below zero is no prediction
    if category == ALL:
        parts = [(c, model_curve(on, None, c, k_max)) for c in sorted({c for s in on for c in s.sums})]
        tokens = [
            (add_arrays(t[:, TOKENS] for t in (s.total(c) for s in on) if t is not None), cv)
            for c, cv in parts
            if cv is not None
        ]
        if not tokens:
            return None
        # a category absent from a replicate (its requests not drawn) adds no tokens and no steps
        steps = sum(np.where(n[:, None] > 0, n[:, None] / cv.tokens_per_step, 0.0) for n, cv in tokens)
        return Curve(add_arrays(n for n, _ in tokens)[:, None] / steps, cost_arr, None)
    fit, g = acceptance_fit(on, category), undrafted_share(on, category)
    if g is None:
        return None
    if fit is None:  # the drafter never proposed anything for this category: one token per step at every k
        return Curve(np.ones((g.shape[0], k_max)), cost_arr, None)
    return Curve(tokens_per_step_curve(fit, g, k_max), cost_arr, fit)


def interval(x: np.ndarray, q: tuple[float, float] = (5.0, 95.0)) -> tuple[float | None, float | None]:
    """Percentile interval over the bootstrap replicates (row 0, the measurement itself, excluded)."""
    reps = x[1:]
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return None, None
    lo, hi = np.percentile(reps, q)
    return float(lo), float(hi)
