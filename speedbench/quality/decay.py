"""How conditional draft acceptance changes with draft position, fitted and extrapolated. Pure numpy.

Counts: of ``n_{j-1}`` drafted steps whose first j-1 draft tokens were all accepted, ``n_j`` also accepted
token j (``n_0`` = drafts; engines report ``n_j`` as "accepted at position j"). The conditional rate
``p_j = n_j / n_{j-1}`` is binomial; its trend in j is a logistic line, ``logit p_j = alpha + beta (j - 1)``,
fitted by maximum likelihood with half a success and half a failure added at every measured position (so a
position accepted always, or never, still has a finite fit). Falling (model drafters) and rising (n-gram:
once a match holds, its continuation tends to hold) acceptance both fit; with one measured position the trend
is not identifiable and ``beta`` is 0 (acceptance taken as constant beyond it: flagged).

Everything is vectorised over a leading axis of bootstrap replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PSEUDO = 0.5  # added successes and failures per measured position
_NEWTON_STEPS = 30


def position_counts(drafts: np.ndarray, accepted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trials, successes) per position from drafts (R,) and accepted-at-position counts (R, k)."""
    drafts = np.asarray(drafts, dtype=float)
    accepted = np.asarray(accepted, dtype=float)
    trials = np.concatenate([drafts[:, None], accepted[:, :-1]], axis=1)
    return trials, accepted


@dataclass(frozen=True)
class DecayFit:
    """Per replicate: measured conditional rates where measured, the logistic line beyond."""

    alpha: np.ndarray  # (R,)
    beta: np.ndarray  # (R,)
    measured: np.ndarray  # (R, J) p_j = successes / trials, nan where no trials
    trend_identifiable: bool  # at least two positions carried trials

    def conditional(self, k_max: int) -> np.ndarray:
        """(R, k_max) conditional acceptance for positions 1..k_max."""
        j = np.arange(k_max, dtype=float)
        fitted = _sigmoid(self.alpha[:, None] + self.beta[:, None] * j[None, :])
        out = fitted.copy()
        n = min(k_max, self.measured.shape[1])
        m = self.measured[:, :n]
        out[:, :n] = np.where(np.isnan(m), fitted[:, :n], m)
        return out

    def cumulative(self, k_max: int) -> np.ndarray:
        """(R, k_max) a_i = P(first i draft tokens accepted)."""
        return np.cumprod(self.conditional(k_max), axis=1)


def fit_decay(trials: np.ndarray, successes: np.ndarray) -> DecayFit:
    """Fit per replicate (rows). trials/successes: (R, J) with J the largest measured position."""
    t = np.atleast_2d(np.asarray(trials, dtype=float))
    s = np.atleast_2d(np.asarray(successes, dtype=float))
    has = t > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        measured = np.where(has, s / np.where(has, t, 1.0), np.nan)
    # pseudo-counts only where measured: a position nobody reached says nothing
    ts = t + 2 * PSEUDO * has
    ss = s + PSEUDO * has
    x = np.arange(t.shape[1], dtype=float)[None, :]
    identifiable = bool(has[0].sum() >= 2)  # judged on the data as measured (row 0)
    p0 = np.clip(ss.sum(axis=1) / np.maximum(ts.sum(axis=1), 1e-12), 1e-6, 1 - 1e-6)
    alpha, beta = np.log(p0 / (1 - p0)), np.zeros(t.shape[0])
    if identifiable:
        for _ in range(_NEWTON_STEPS):  # Newton-Raphson on the binomial log-likelihood, 2x2 per replicate
            p = _sigmoid(alpha[:, None] + beta[:, None] * x)
            w = ts * p * (1 - p)
            r = ss - ts * p
            g0, g1 = r.sum(axis=1), (r * x).sum(axis=1)
            h00, h01, h11 = w.sum(axis=1), (w * x).sum(axis=1), (w * x * x).sum(axis=1)
            det = h00 * h11 - h01**2
            ok = det > 1e-12
            da = np.where(ok, (h11 * g0 - h01 * g1) / np.where(ok, det, 1.0), 0.0)
            db = np.where(ok, (h00 * g1 - h01 * g0) / np.where(ok, det, 1.0), 0.0)
            alpha, beta = alpha + np.clip(da, -5, 5), beta + np.clip(db, -5, 5)
            if np.all(np.abs(da) + np.abs(db) < 1e-10):
                break
    return DecayFit(alpha, beta, measured, identifiable)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))
