"""One distribution summary reused for every metric (count, mean, std, min, percentiles, max)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Distribution:
    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    def to_dict(self) -> dict:
        return asdict(self)

    # NaN marks "no sample" (see distribution()); two empty samples are the same figure, so a point read
    # back from points.jsonl equals the one the runner returned. IEEE NaN != NaN would make them differ.
    def _key(self) -> tuple:
        return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in astuple(self))

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Distribution) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())


def distribution(values: Iterable[float | None]) -> Distribution:
    # None (a request with no such figure, e.g. no TTFT without chunks) and NaN are left out
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        nan = float("nan")
        return Distribution(0, nan, nan, nan, nan, nan, nan, nan, nan)
    p = np.percentile(arr, PERCENTILES)  # linear interpolation, numpy's default
    return Distribution(
        int(arr.size),
        float(arr.mean()),
        float(arr.std()),
        float(arr.min()),
        float(p[0]),
        float(p[1]),
        float(p[2]),
        float(p[3]),
        float(arr.max()),
    )
