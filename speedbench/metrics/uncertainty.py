"""How sure a figure is: 95 % intervals for acceptance length and speedups, and the verdict they allow.

Within one point (no repeats) the spread comes from a seeded bootstrap over the point's OK requests
(``BOOTSTRAP_RESAMPLES`` resamples, generator seeded with ``BOOTSTRAP_SEED``, so a report is reproducible):
  AL            percentile interval of the mean over requests of tokens per step (the headline AL)
  user TPS      standard error of log(mean per-request user TPS)
  output TPS    standard error of log(Σ tokens / Σ E2E) over the requests: throughput over a closed loop is
                concurrency × that rate (Little's law), so its relative spread is the throughput's
A speedup a / b then gets exp(log(a / b) ± 1.96 √(se_a² + se_b²)) (independent samples, log scale).
With several repeats of both points the interval comes from the repeats' speedups instead (Student t on
their mean): run-to-run drift is then part of it.

Verdict: 'pays' when the interval lies above 1, 'slower' when below, 'within noise' when it holds 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
Z95 = 1.959964
# two-sided 95 % Student t quantiles by degrees of freedom (1..30); beyond, the normal quantile
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
PAYS, SLOWER, NOISE = "pays", "slower", "within noise"


def _bootstrap(stat: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """``stat`` of each of the seeded resamples of n items (index arrays in batches: bounded memory at
    thousands of requests per point)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    batch = max(1, min(BOOTSTRAP_RESAMPLES, 2_000_000 // max(n, 1)))
    out, left = [], BOOTSTRAP_RESAMPLES
    while left > 0:
        k = min(batch, left)
        out.append(stat(rng.integers(0, n, size=(k, n))))
        left -= k
    return np.concatenate(out)


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)


def mean_interval(values: Sequence[float | None]) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of the mean; None with fewer than 2 values."""
    x = _clean(values)
    if x.size < 2:
        return None
    means = _bootstrap(lambda idx: x[idx].mean(axis=1), x.size)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _log_se(stat: Callable[[np.ndarray], np.ndarray], n: int) -> float | None:
    if n < 2:
        return None
    s = _bootstrap(stat, n)
    s = s[np.isfinite(s) & (s > 0)]
    return float(np.log(s).std(ddof=1)) if s.size > 1 else None


def log_se_of_mean(values: Sequence[float | None]) -> float | None:
    """Bootstrap standard error of log(mean(values))."""
    x = _clean(values)
    return _log_se(lambda idx: x[idx].mean(axis=1), x.size)


def log_se_of_ratio(num: Sequence[float], den: Sequence[float]) -> float | None:
    """Bootstrap standard error of log(Σ num / Σ den), pairs resampled together."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    # a resample of zero-length requests only (Σ den = 0) has no ratio: _log_se drops its inf, so numpy's
    # division warning would say nothing true about the result
    with np.errstate(divide="ignore", invalid="ignore"):
        return _log_se(lambda idx: a[idx].sum(axis=1) / b[idx].sum(axis=1), a.size)


def ratio_interval(ratio: float | None, se_a: float | None, se_b: float | None) -> tuple[float, float] | None:
    """95 % interval of a / b from the log-scale standard errors of a and b."""
    if ratio is None or ratio <= 0 or se_a is None or se_b is None:
        return None
    half = Z95 * math.hypot(se_a, se_b)
    return ratio * math.exp(-half), ratio * math.exp(half)


def repeats_interval(values: Sequence[float | None]) -> tuple[float, float] | None:
    """95 % Student-t interval of the mean of repeated measurements; None with fewer than 2."""
    x = _clean(values)
    if x.size < 2:
        return None
    t = _T95[x.size - 2] if x.size - 1 <= len(_T95) else Z95
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    m = float(x.mean())
    return m - half, m + half


def verdict(interval: tuple[float, float] | None) -> str | None:
    """'pays' (interval above 1), 'slower' (below 1) or 'within noise' (holds 1.0); None without one."""
    if interval is None:
        return None
    lo, hi = interval
    if lo > 1.0:
        return PAYS
    if hi < 1.0:
        return SLOWER
    return NOISE
