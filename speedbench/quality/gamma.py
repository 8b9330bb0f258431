"""Draft-length (gamma) model: expected tokens per decode step and speedup per draft length k.

Pure functions. The model, stated once (the reports repeat it as notes):

* A decode step either carries a draft (probability ``f_draft``; n-gram only drafts when the context has a
  matching n-gram) or not. A step without a draft emits exactly 1 token.
* On a drafted step with draft length k, position i (1-based) is kept only if positions 1..i all are:
  ``a_i = P(first i drafts accepted) = Π_{j≤i} p_j`` with p_j the conditional acceptance. The step emits
  ``E(k) = 1 + Σ_{i≤k} a_i`` tokens (accepted drafts + the bonus token).
* Overall tokens per decode step: ``T(k) = f_draft(k)·E(k) + (1 − f_draft(k))·1``.
* ``a_i`` does not depend on k (a shorter draft is a prefix of a longer one: true for n-gram lookup,
  approximately true for model drafters), so the per-position counts of every measured k pool, and a fitted
  trend of the conditional rates in position (speedbench.quality.decay) extrapolates beyond the largest.
* What does not depend on k is the share ``g`` of output *tokens* emitted on steps without a draft (the
  text regions where the drafter has nothing to propose), not the share of steps: a longer draft compresses
  the drafted regions into fewer steps, so ``f_draft`` falls as k grows. From one measured k:
  ``g = (1 − f)/T``; at another k: ``f(k) = ((1 − g)/E(k)) / ((1 − g)/E(k) + g)``.
* Step cost: the mean SD-on decode step time at k relative to the SD-off step time at the same
  concurrency, ``r(k) = ITL_on(k) / ITL_off``, a least-squares line in k: it needs two measured k.
* Decode speedup: ``S(k) = T(k) / r(k)`` (SD off emits 1 token per step at cost ITL_off). Prefill/TTFT is
  outside the model: it is a decode-rate speedup.
"""

from __future__ import annotations

from collections.abc import Sequence

from speedbench.core.records import RequestRecord

ASSUMPTIONS = [
    "tokens per decode step T(k) = f_draft*E(k) + (1-f_draft)*1 with E(k) = 1 + sum_{i<=k} a_i, "
    "a_i = P(first i draft tokens accepted) = prod_{j<=i} p_j (conditional acceptance p_j)",
    "steps without a draft (n-gram found no match) emit exactly 1 token; f_draft = drafted steps / decode steps",
    "a_i does not depend on k (a shorter draft is a prefix of a longer one): per-position counts pool over "
    "every measured draft length; p_j is measured where measured and, beyond the largest measured position, "
    "extrapolated by a logistic line in j fitted to all measured positions (binomial likelihood); with one "
    "measured position the trend is unknown and p_j is held constant",
    "the share g of output tokens emitted on steps without a draft does not depend on k (f_draft does: longer "
    "drafts need fewer steps in drafted regions): g = (undrafted steps)/(decode tokens) pooled over the "
    "measured draft lengths, f(k) = ((1-g)/E(k)) / ((1-g)/E(k) + g)",
    "step cost ratio r(k) = ITL_on(k)/ITL_off at the same concurrency, least-squares line in k over the "
    "measured draft lengths; with one measured k it is unknown elsewhere and nothing is recommended; a line "
    "falling with k is noise and is replaced by the mean (cost_fit_clamped)",
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


# ---- measurements from raw records ---------------------------------------------------------------------


def drafted_steps(r: RequestRecord) -> int | None:
    """Steps of one request that carried a draft: the server's per-step arrays, else its draft counter."""
    if r.sd_per_step_drafted is not None:
        return sum(1 for d in r.sd_per_step_drafted if d > 0)
    if r.sd:
        return int(r.sd.get("drafts", 0))
    return None
