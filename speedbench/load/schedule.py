"""Seeded, precomputed load schedules: which prompt each request sends, and when (open loop) it is due.

Both are pure functions of (seed, index), so SD-off and SD-on points, and every worker process of a
point, agree on the same prompt order and arrival times without talking to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Arrival = Literal["poisson", "constant"]


class PromptOrder:
    """Measured request ``i`` sends prompt ``index(i)``, warm-up request ``j`` prompt ``warmup_index(j)``.

    The order is file order unless ``shuffle`` (then one seeded permutation).  Its last ``warmup_pool``
    prompts belong to the warm-up alone, so a warm-up prompt is never a measured prompt; measured requests
    take the others from the start, cycling only when a point has more requests than prompts.
    """

    def __init__(self, num_prompts: int, shuffle: bool = False, seed: int = 0, warmup_pool: int = 0) -> None:
        if num_prompts <= 0:
            raise ValueError("no prompts to send")
        if not 0 <= warmup_pool < num_prompts:
            raise ValueError(f"a warm-up pool of {warmup_pool} leaves none of {num_prompts} prompts to measure")
        self.perm: np.ndarray | None = np.random.default_rng(seed).permutation(num_prompts) if shuffle else None
        self.n = num_prompts
        self.measured_n = num_prompts - warmup_pool
        self.warmup_pool = warmup_pool

    def _at(self, j: int) -> int:
        return int(self.perm[j]) if self.perm is not None else j

    def index(self, i: int) -> int:
        return self._at(i % self.measured_n)

    def warmup_index(self, j: int) -> int:
        if not self.warmup_pool:  # a single prompt: nothing can be set aside for the warm-up
            return self.index(j)
        return self._at(self.measured_n + j % self.warmup_pool)


def default_warmup_pool(warmup_requests: int, num_prompts: int) -> int:
    """Prompts set aside for the warm-up: one per warm-up request, always leaving one to measure."""
    return max(0, min(warmup_requests, num_prompts - 1))


class ArrivalSchedule:
    """Offsets (seconds from the start of the point) at which open-loop requests are due.

    Poisson: exponential gaps with mean 1/rate; constant: exactly 1/rate apart.  Gaps are drawn in blocks
    from one seeded generator, so offset(i) is the same however far the schedule is extended (cool-down
    requests continue the same process).
    """

    _BLOCK = 4096

    def __init__(self, rate: float, kind: Arrival = "poisson", seed: int = 0) -> None:
        if rate <= 0:
            raise ValueError("request rate must be positive")
        self.rate, self.kind = rate, kind
        self._rng = np.random.default_rng(seed)
        self._offsets = np.zeros(0)

    def _extend(self, upto: int) -> None:
        while self._offsets.size <= upto:
            if self.kind == "constant":
                gaps = np.full(self._BLOCK, 1.0 / self.rate)
            else:
                gaps = self._rng.exponential(1.0 / self.rate, self._BLOCK)
            start = self._offsets[-1] if self._offsets.size else 0.0
            # the first request is due at 0: offsets are cumulative gaps shifted by one
            block = start + np.cumsum(gaps) - (gaps[0] if not self._offsets.size else 0.0)
            self._offsets = np.concatenate([self._offsets, block])

    def offset(self, i: int) -> float:
        """Seconds from the schedule's start to request ``i``'s arrival."""
        self._extend(i)
        return float(self._offsets[i])

    def offsets(self, n: int) -> np.ndarray:
        """The first ``n`` arrival offsets, in seconds."""
        self._extend(n - 1)
        return self._offsets[:n].copy()


@dataclass(frozen=True)
class PromptBudget:
    """How a point spends its prompts."""

    measured: int  # measured requests
    warmup: int  # warm-up requests
    warmup_pool: int  # prompts set aside for the warm-up (never measured)
    repeats: int  # measured requests that must resend a prompt (0 unless repeats are allowed)


def prompt_budget(
    num_prompts: int,
    concurrency: int,
    warmup: int,
    requests: int | None,
    *,
    allow_repeats: bool = False,
    by_duration: bool = False,
    closed_loop: bool = True,
) -> PromptBudget:
    """The point's requests: by default every prompt the warm-up leaves, each measured once.

    Raises ValueError (one line, with the number of prompts the point needs) when the point cannot be run
    without measuring a prompt twice and repeats are not allowed.
    """
    n = num_prompts
    if warmup and n < 2:
        raise ValueError(
            f"the warm-up needs prompts of its own, but the prompt set has {n}: "
            "add prompts or set load.warmup_requests: 0"
        )
    hint = (
        "add prompts, lower load.requests_per_point / load.warmup_requests, or allow repeats "
        "(load.allow_repeats: true, --allow-repeats)"
    )
    if not allow_repeats:
        if by_duration:
            raise ValueError(
                "load.duration_s measures for a set time, so prompts can repeat: "
                "set load.allow_repeats: true (--allow-repeats)"
            )
        measured = requests or (n - warmup)
        least = concurrency if closed_loop and requests is None else 1  # a closed loop must fill its concurrency
        if measured < least or warmup + measured > n:
            need = warmup + max(measured, least)
            raise ValueError(
                f"concurrency {concurrency} needs {need} distinct prompts ({warmup} warm-up + "
                f"{need - warmup} measured), the prompt set has {n}: {hint}"
            )
        return PromptBudget(measured, warmup, warmup, 0)
    measured = requests or max(n - warmup, 2 * concurrency)
    pool = warmup if warmup + measured <= n else min(warmup, n // 2)
    return PromptBudget(measured, warmup, pool, max(0, measured - (n - pool)))
