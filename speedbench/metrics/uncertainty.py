"""How sure a figure is: 95 % intervals for acceptance length and speedups, and the verdict they allow.

Within one point (no repeats) the spread comes from a seeded bootstrap (``BOOTSTRAP_RESAMPLES`` resamples,
generator seeded with ``BOOTSTRAP_SEED``, so a report is reproducible):
  AL            percentile interval of the headline AL (mean over conversations of each one's tokens per
                step, metrics.conversation), resampling distinct prompts: a setting's interval pools its
                concurrencies, where one prompt is measured once per concurrency, so a prompt (all of its
                measurements) is the unit drawn, never each measurement on its own (cluster_mean_interval)
  user TPS      standard error of log(mean per-request user TPS)
  output TPS    standard error of log(Σ tokens / Σ E2E) over the requests: throughput over a closed loop is
                concurrency × that rate (Little's law), so its relative spread is the throughput's
A speedup SD on / SD off is paired: both points ran the same prompts, so one resample of prompts is drawn
and applied to both sides (metrics.paired; the interval is the speedup × exp(± 1.96 × the resamples' SD
of log(on / off))). Drawing the two sides independently (``ratio_interval``: exp(log(a / b) ± 1.96
√(se_a² + se_b²))) counts each prompt's own difficulty as noise twice and is only the fallback for
points without records (or with fewer than 2 prompts in common).
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
    return cluster_mean_interval(values)


def cluster_mean_interval(
    values: Sequence[float | None], clusters: Sequence[object] | None = None
) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of the mean of ``values``, resampling clusters (e.g. prompt ids:
    every value of a drawn cluster enters the resample, the mean stays over values); each value its own
    cluster when ``clusters`` is None. None with fewer than 2 clusters."""
    keys = list(clusters) if clusters is not None else list(range(len(values)))
    index: dict[object, int] = {}
    sums: list[float] = []
    counts: list[int] = []
    for v, k in zip(values, keys):
        if v is None or math.isnan(v):
            continue
        i = index.setdefault(k, len(sums))
        if i == len(sums):
            sums.append(0.0)
            counts.append(0)
        sums[i] += v
        counts[i] += 1
    if len(sums) < 2:
        return None
    s, c = np.asarray(sums), np.asarray(counts, dtype=float)
    means = _bootstrap(lambda idx: s[idx].sum(axis=1) / c[idx].sum(axis=1), len(sums))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def paired_log_se(stat: Callable[[np.ndarray], np.ndarray], n: int) -> list[float | None]:
    """Bootstrap standard errors of several log ratios computed from the same resamples of n paired units:
    ``stat`` maps a (k, n) index array to a (k, m) array of ratios; one SE per column (None where fewer
    than 2 resamples gave a finite positive ratio)."""
    if n < 2:
        return []
    s = _bootstrap(stat, n)
    out: list[float | None] = []
    for col in s.T:
        col = col[np.isfinite(col) & (col > 0)]
        out.append(float(np.log(col).std(ddof=1)) if col.size > 1 else None)
    return out


def interval_from_log_se(ratio: float | None, se: float | None) -> tuple[float, float] | None:
    """95 % interval ratio × exp(± 1.96 se) of a ratio whose log has standard error ``se``."""
    if ratio is None or ratio <= 0 or se is None:
        return None
    half = Z95 * se
    return ratio * math.exp(-half), ratio * math.exp(half)


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
