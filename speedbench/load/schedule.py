"""Seeded, precomputed load schedules: which prompt each request sends, and when (open loop) it is due.

Both are pure functions of (seed, index), so SD-off and SD-on points, and every worker process of a
point, agree on the same prompt order and arrival times without talking to each other.
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np

Arrival = Literal["poisson", "constant"]


class PromptOrder:
    """Request ``i`` sends prompt ``index(i)``: in file order (cycling) unless ``shuffle``, then one seeded
    permutation, repeated."""

    def __init__(self, num_prompts: int, shuffle: bool = False, seed: int = 0) -> None:
        if num_prompts <= 0:
            raise ValueError("no prompts to send")
        self.perm: Optional[np.ndarray] = (np.random.default_rng(seed).permutation(num_prompts)
                                           if shuffle else None)
        self.n = num_prompts

    def index(self, i: int) -> int:
        j = i % self.n
        return int(self.perm[j]) if self.perm is not None else j


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
        self._extend(i)
        return float(self._offsets[i])

    def offsets(self, n: int) -> np.ndarray:
        self._extend(n - 1)
        return self._offsets[:n].copy()
