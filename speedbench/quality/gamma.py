"""Draft-length (gamma) model: expected tokens per decode step and speedup per draft length k.

Pure functions. The model, stated once (the reports repeat it as notes):

* A decode step either carries a draft (probability ``f_draft``; n-gram only drafts when the context has a
  matching n-gram) or not. A step without a draft emits exactly 1 token.
* On a drafted step with draft length k, position i (1-based) is kept only if positions 1..i all are:
  ``a_i = P(first i drafts accepted) = Π_{j≤i} p_j`` with p_j the conditional acceptance. The step emits
  ``E(k) = 1 + Σ_{i≤k} a_i`` tokens (accepted drafts + the bonus token).
* Overall tokens per decode step: ``T(k) = f_draft(k)·E(k) + (1 − f_draft(k))·1``.
* ``a_i`` does not depend on k (a shorter draft is a prefix of a longer one: true for n-gram lookup,
  approximately true for model drafters), so the per-position rates measured at the largest k predict
  every smaller k.
* What does not depend on k is the share ``g`` of output *tokens* emitted on steps without a draft (the
  text regions where the drafter has nothing to propose), not the share of steps: a longer draft compresses
  the drafted regions into fewer steps, so ``f_draft`` falls as k grows. From one measured k:
  ``g = (1 − f)/T``; at another k: ``f(k) = ((1 − g)/E(k)) / ((1 − g)/E(k) + g)``.
* Step cost: the mean SD-on decode step time at k relative to the SD-off step time at the same
  concurrency, ``r(k) = ITL_on(k) / ITL_off``, linear in k between measured points (least squares).
* Decode speedup: ``S(k) = T(k) / r(k)`` (SD off emits 1 token per step at cost ITL_off). Prefill/TTFT is
  outside the model: it is a decode-rate speedup.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from speedbench.load.records import OK, RequestRecord

ASSUMPTIONS = [
    "tokens per decode step T(k) = f_draft*E(k) + (1-f_draft)*1 with E(k) = 1 + sum_{i<=k} a_i, "
    "a_i = P(first i draft tokens accepted) = prod_{j<=i} p_j (conditional acceptance p_j)",
    "steps without a draft (n-gram found no match) emit exactly 1 token; f_draft = drafted steps / decode steps",
    "a_i does not depend on k (a shorter draft is a prefix of a longer one): the per-position rates of the "
    "largest measured k predict every smaller k",
    "the share g of output tokens emitted on steps without a draft does not depend on k (f_draft does: longer "
    "drafts need fewer steps in drafted regions): g = (1-f)/T at the reference k, "
    "f(k) = ((1-g)/E(k)) / ((1-g)/E(k) + g)",
    "step cost ratio r(k) = ITL_on(k)/ITL_off at the same concurrency, least-squares line in k over the "
    "measured draft lengths (constant when only one k was measured, or when the measured ratios fall with k, "
    "which is noise: such fits are flagged cost_fit_clamped)",
    "speedup S(k) = T(k)/r(k) is a decode-rate speedup (tokens after the first / decode time); TTFT and "
    "prefill are outside the model",
]


def cumulative_from_conditional(p: Sequence[float]) -> list[float]:
    """Conditional acceptance p_j -> a_i = Π_{j≤i} p_j."""
    out, acc = [], 1.0
    for x in p:
        acc *= x
        out.append(acc)
    return out


def conditional_from_cumulative(a: Sequence[float]) -> list[float]:
    """a_i -> p_i = a_i / a_{i-1} (0 once nothing survives)."""
    out, prev = [], 1.0
    for x in a:
        out.append(x / prev if prev > 0 else 0.0)
        prev = x
    return out


def expected_tokens_drafted(a: Sequence[float], k: int) -> float:
    """E(k) = 1 + Σ_{i≤k} a_i: tokens emitted by one drafted step with draft length k."""
    if k < 0 or k > len(a):
        raise ValueError(f"draft length {k} needs {k} per-position rates, have {len(a)}")
    return 1.0 + float(sum(a[:k]))


def expected_tokens_per_step(a: Sequence[float], k: int, f_draft: float) -> float:
    """T(k) = f_draft·E(k) + (1 − f_draft)·1 over all decode steps."""
    if not 0.0 <= f_draft <= 1.0:
        raise ValueError(f"f_draft must be in [0, 1], got {f_draft}")
    return f_draft * expected_tokens_drafted(a, k) + (1.0 - f_draft)


def undrafted_token_share(a: Sequence[float], k: int, f_draft: float) -> float:
    """g = (1 − f)/T(k): the share of output tokens emitted on steps that carried no draft."""
    return (1.0 - f_draft) / expected_tokens_per_step(a, k, f_draft)


def f_draft_at(g: float, e_k: float) -> float:
    """Drafted-step share at a draft length whose drafted steps emit e_k tokens, for token share g."""
    drafted = (1.0 - g) / e_k
    return drafted / (drafted + g) if drafted + g > 0 else 0.0


def predict_tokens_per_step(a: Sequence[float], k_ref: int, f_ref: float, k: int) -> tuple[float, float]:
    """(T(k), f(k)) at draft length k from the rates and drafted-step share measured at k_ref."""
    g = undrafted_token_share(a, k_ref, f_ref)
    f = f_draft_at(g, expected_tokens_drafted(a, k))
    return expected_tokens_per_step(a, k, f), f


@dataclass(frozen=True)
class CostFit:
    """r(k) = intercept + slope·k, fitted on measured (k, ITL_on/ITL_off) pairs."""

    intercept: float
    slope: float
    ks: tuple[int, ...]
    clamped: bool = False  # the measured ratios fell with k; a constant (their mean) is used instead

    def ratio(self, k: int) -> float:
        return self.intercept + self.slope * k


def fit_cost_ratio(ks: Sequence[int], ratios: Sequence[float]) -> Optional[CostFit]:
    """Least-squares line through (k, r); a constant when only one distinct k; None with no data."""
    pts = [(int(k), float(r)) for k, r in zip(ks, ratios) if r is not None and np.isfinite(r)]
    if not pts:
        return None
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    if len(set(x.tolist())) < 2:
        return CostFit(float(y.mean()), 0.0, tuple(sorted({int(v) for v in x})))
    slope, intercept = np.polyfit(x, y, 1)
    if slope < 0:
        # verifying more draft tokens cannot make a step cheaper: a falling line is measurement noise
        # (e.g. a shared machine whose load changed between points); fall back to the mean cost
        return CostFit(float(y.mean()), 0.0, tuple(sorted({int(v) for v in x})), clamped=True)
    return CostFit(float(intercept), float(slope), tuple(sorted({int(v) for v in x})))


def modeled_speedup(tokens_per_step: float, cost_ratio: float) -> float:
    return tokens_per_step / cost_ratio


@dataclass(frozen=True)
class Candidate:
    k: int
    tokens_per_step: float
    cost_ratio: float
    speedup: float


def recommend(a: Sequence[float], f_draft: float, cost: CostFit,
              ks: Optional[Iterable[int]] = None) -> tuple[int, list[Candidate]]:
    """The draft length with the highest modeled speedup (0 = SD off, when no k beats 1.0).

    ``a`` and ``f_draft`` were measured at the draft length ``len(a)``.
    """
    ks = list(ks) if ks is not None else list(range(1, len(a) + 1))
    cands = []
    for k in ks:
        r = cost.ratio(k)
        if r <= 0:
            continue  # an extrapolated line below zero cost is not a prediction
        t, _ = predict_tokens_per_step(a, len(a), f_draft, k)
        cands.append(Candidate(k, t, r, modeled_speedup(t, r)))
    best = max(cands, key=lambda c: c.speedup, default=None)
    return (best.k if best is not None and best.speedup > 1.0 else 0), cands


# ---- measurements from raw records ---------------------------------------------------------------------

@dataclass(frozen=True)
class StepStats:
    """Decode-step measurements over the successful measured requests of one point (or one category)."""

    requests: int
    decode_steps: int                 # Σ (chunks − 1): the first chunk is the prefill step
    decode_tokens: int                # tokens after the first chunk
    decode_time_s: float              # Σ (last chunk − first chunk)
    drafted_steps: Optional[int]      # steps that carried a draft (server per-step arrays / counters)
    drafts: int                       # Σ per-request counters.drafts
    accepted_per_position: tuple[int, ...]

    @property
    def itl_s(self) -> Optional[float]:
        return self.decode_time_s / self.decode_steps if self.decode_steps else None

    @property
    def tokens_per_step(self) -> Optional[float]:
        return self.decode_tokens / self.decode_steps if self.decode_steps else None

    @property
    def decode_tps(self) -> Optional[float]:
        return self.decode_tokens / self.decode_time_s if self.decode_time_s > 0 else None

    @property
    def f_draft(self) -> Optional[float]:
        if self.drafted_steps is None or not self.decode_steps:
            return None
        return min(1.0, self.drafted_steps / self.decode_steps)

    @property
    def cum_accept(self) -> tuple[float, ...]:
        """a_i per position (0-based index i = position i+1) over drafted steps."""
        return tuple(x / self.drafts for x in self.accepted_per_position) if self.drafts else ()

    def with_counters(self, drafts: int, accepted_per_position: Sequence[int]) -> "StepStats":
        """Replace per-request SD counters by the server's global counter deltas over the same requests."""
        return StepStats(self.requests, self.decode_steps, self.decode_tokens, self.decode_time_s, drafts,
                         drafts, tuple(accepted_per_position))


def _drafted_steps(r: RequestRecord) -> Optional[int]:
    if r.sd_per_step_drafted is not None:
        return sum(1 for d in r.sd_per_step_drafted if d > 0)
    if r.sd:
        return int(r.sd.get("drafts", 0))
    return None


def step_stats(records: Iterable[RequestRecord], sd_on: bool = True) -> StepStats:
    """Aggregate decode steps, tokens, time and SD counters. SD-off points have 0 drafted steps."""
    n = steps = tokens = drafts = 0
    time_ns = 0
    drafted: Optional[int] = 0
    per_pos: list[int] = []
    for r in records:
        if r.status != OK or r.warmup or len(r.chunk_tokens) < 2:
            continue
        n += 1
        steps += len(r.chunk_tokens) - 1
        tokens += r.chunk_tokens[-1] - r.chunk_tokens[0]
        time_ns += r.chunk_times_ns[-1] - r.chunk_times_ns[0]
        d = _drafted_steps(r) if sd_on else 0
        drafted = None if (d is None or drafted is None) else drafted + d
        if r.sd:
            drafts += int(r.sd.get("drafts", 0))
            app = r.sd.get("accepted_per_position") or []
            per_pos += [0] * (len(app) - len(per_pos))
            for i, x in enumerate(app):
                per_pos[i] += int(x)
    return StepStats(n, steps, tokens, time_ns * 1e-9, drafted, drafts, tuple(per_pos))


def merge_stats(stats: Iterable[StepStats]) -> StepStats:
    """Pool several points (e.g. repeats) into one set of step statistics."""
    stats = list(stats)
    per_pos: list[int] = []
    for s in stats:
        per_pos += [0] * (len(s.accepted_per_position) - len(per_pos))
        for i, x in enumerate(s.accepted_per_position):
            per_pos[i] += x
    drafted = [s.drafted_steps for s in stats]
    return StepStats(sum(s.requests for s in stats), sum(s.decode_steps for s in stats),
                     sum(s.decode_tokens for s in stats), sum(s.decode_time_s for s in stats),
                     None if any(d is None for d in drafted) else sum(drafted),  # type: ignore[misc]
                     sum(s.drafts for s in stats), tuple(per_pos))
