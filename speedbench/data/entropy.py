"""Entropy proxies of a prompt, so users can see that throughput tiers really differ. Pure functions."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

# Level 9 matches the `zlib_ratio` stored for each pool document (speedbench/resources/datasets/README.md),
# so figures compare.
ZLIB_LEVEL = 9


def zlib_ratio(text: str) -> float:
    """Compressed / raw UTF-8 size: lower = more repetitive text (code, tables), higher = prose."""
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(zlib.compress(raw, ZLIB_LEVEL)) / len(raw)


def unigram_entropy_bits(token_ids: Sequence[int] | np.ndarray) -> float:
    """Shannon entropy (bits/token) of the prompt's own token unigram distribution."""
    if len(token_ids) == 0:
        return 0.0
    _, counts = np.unique(np.asarray(token_ids, dtype=np.int64), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean/min/max of a proxy over a group of prompts (for `data inspect`)."""
    if not values:
        return {"mean": math.nan, "min": math.nan, "max": math.nan}
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max())}
