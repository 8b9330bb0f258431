"""Paired speedup intervals: SD on and SD off ran the same prompts, so one resample of prompts serves both.

A unit is a prompt (``prompt_id``): every measured OK request of that prompt in a point (each turn of its
conversation, each repeat of it under ``--allow-repeats``) belongs to it. Units measured OK in both points
are paired; each bootstrap resample (metrics.uncertainty: seeded, ``BOOTSTRAP_RESAMPLES`` draws) draws
units with replacement and applies the same draw to both points, so a prompt's own difficulty (a long
answer, a category where n-gram drafts hit) moves both sides together and cancels in the ratio.

Estimators of one side in a resample (the drawn units' requests):
  output TPS  Σ output tokens / Σ E2E. A point's output TPS is Σ tokens / window; over a closed loop at
              concurrency c the window is ≈ Σ E2E / c (Little's law), so output TPS ≈ c × Σ tokens / Σ E2E
              and the ratio on / off moves as the ratio of these per-request-second rates
  user TPS    mean over the drawn units' requests of per-request user TPS (the point's figure, resampled)
The interval of a speedup keeps its point estimate (the points' own output TPS and mean user TPS ratios)
and takes its width from the resamples: speedup × exp(± 1.96 × SD of log(on* / off*)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speedbench.core.records import OK, RequestRecord
from speedbench.metrics import request as rq
from speedbench.metrics import uncertainty as un


@dataclass(frozen=True)
class PromptUnits:
    """One point's measured OK requests summed per prompt (index i of each array = ``prompt_ids[i]``)."""

    prompt_ids: tuple[str, ...]
    output_tokens: np.ndarray  # Σ output tokens of the prompt's requests
    e2e_s: np.ndarray  # Σ E2E seconds
    user_tps_sum: np.ndarray  # Σ per-request user TPS (requests that have one)
    user_tps_count: np.ndarray  # how many requests have one


def prompt_units(records: Sequence[RequestRecord]) -> PromptUnits:
    """The per-prompt sums of a point's measured (non-warm-up) OK requests."""
    sums: dict[str, list[float]] = {}
    for r in records:
        if r.warmup or r.status != OK:
            continue
        s = sums.setdefault(r.prompt_id, [0.0, 0.0, 0.0, 0.0])
        s[0] += r.output_tokens
        s[1] += rq.e2e(r)
        u = rq.user_tps(r)
        if u is not None:
            s[2] += u
            s[3] += 1
    cols = np.asarray(list(sums.values()), dtype=float).reshape(-1, 4).T
    return PromptUnits(tuple(sums), cols[0], cols[1], cols[2], cols[3])


@dataclass(frozen=True)
class PairedSpread:
    """Bootstrap SEs of log(on / off) for output TPS and mean user TPS over ``prompts`` paired prompts."""

    prompts: int
    output_tps_log_se: float | None
    user_tps_log_se: float | None


def paired_spread(on: PromptUnits, off: PromptUnits) -> PairedSpread | None:
    """The paired spread of SD on / SD off over the prompts both measured; None with fewer than 2."""
    where_off = {p: i for i, p in enumerate(off.prompt_ids)}
    common = [(i, where_off[p]) for i, p in enumerate(on.prompt_ids) if p in where_off]
    if len(common) < 2:
        return None
    a = np.asarray([i for i, _ in common])
    b = np.asarray([j for _, j in common])
    tok_on, e2e_on, u_on, n_on = on.output_tokens[a], on.e2e_s[a], on.user_tps_sum[a], on.user_tps_count[a]
    tok_off, e2e_off, u_off, n_off = off.output_tokens[b], off.e2e_s[b], off.user_tps_sum[b], off.user_tps_count[b]

    def stat(idx: np.ndarray) -> np.ndarray:
        # a draw of zero-duration or user-TPS-less prompts only has no ratio: dropped by paired_log_se
        with np.errstate(divide="ignore", invalid="ignore"):
            out_rate = (tok_on[idx].sum(1) / e2e_on[idx].sum(1)) / (tok_off[idx].sum(1) / e2e_off[idx].sum(1))
            user = (u_on[idx].sum(1) / n_on[idx].sum(1)) / (u_off[idx].sum(1) / n_off[idx].sum(1))
        return np.stack([out_rate, user], axis=1)

    se = un.paired_log_se(stat, len(common))
    return PairedSpread(len(common), se[0], se[1])
