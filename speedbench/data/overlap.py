"""Measured pairwise overlap of prompts: which share of its tokens a prompt shares with another one.

Measured on the token ids, not inferred from window offsets, so repeated text inside the sources (license
headers, catalogue entries repeated per language, a tier stream that had to wrap) counts too. Method: each
prompt's distinct k-grams of ids are hashed; a fixed 1-in-``sample`` subset of hash values is kept (the same
subset for every prompt, so shared k-grams stay shared: an unbiased estimate of containment); the overlap of
prompts a and b is |A ∩ B| / min(|A|, |B|) over those sets, for every pair.
Pure: id arrays in, figures out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

K = 16  # a 16-token run in common is copied text, not shared vocabulary
SAMPLE = 4
BOUND = 0.10  # the bound the throughput split aims at: at most 10 % of a prompt's tokens shared pairwise
_MIX = np.uint64(0x9E3779B97F4A7C15)
_P = np.uint64(1_000_003)


@dataclass(frozen=True)
class Overlap:
    prompts: int
    pairs: int
    max: float  # the largest pairwise overlap
    mean: float  # over all pairs
    pairs_over_bound: int  # pairs sharing more than BOUND
    worst: tuple[int, int]  # indices of the pair with the largest overlap

    def as_dict(self) -> dict:
        return {"prompts": self.prompts, "pairs": self.pairs, "max": round(self.max, 4),
                "mean": round(self.mean, 5), "bound": BOUND, "pairs_over_bound": self.pairs_over_bound,
                "worst_pair": list(self.worst), "method": f"distinct {K}-grams of ids, 1/{SAMPLE} hash sample"}


def kgram_hashes(ids: np.ndarray, k: int = K) -> np.ndarray:
    """One hash per k-gram position of ``ids`` (uint64): slices of it are the k-grams of sub-windows."""
    ids = np.asarray(ids, dtype=np.uint64)
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(n, dtype=np.uint64)
        for j in range(k):  # polynomial rolling hash, wrapping mod 2**64
            h = h * _P + ids[j:j + n] + np.uint64(1)
        h ^= h >> np.uint64(31)
        h *= _MIX
        h ^= h >> np.uint64(29)
    return h


def _sampled(h: np.ndarray, sample: int = SAMPLE) -> np.ndarray:
    return np.unique(h[h % np.uint64(sample) == 0])


def kgram_sample(ids: np.ndarray, k: int = K, sample: int = SAMPLE) -> np.ndarray:
    """Distinct hashed k-grams of ``ids`` kept by the fixed 1-in-``sample`` rule (sorted uint64)."""
    return _sampled(kgram_hashes(ids, k), sample)


def spread_pick(ids: np.ndarray, offsets: Sequence[int], length: int, n: int, bound: float = BOUND) -> list[int]:
    """``n`` of the candidate window ``offsets`` (windows of ``length`` ids of ``ids``), spread over the stream,
    skipping a candidate that shares more than ``bound`` with one already taken: real sources repeat
    themselves (boilerplate, a work printed twice), and evenly spaced windows would copy those repeats.
    Candidates are visited evenly spaced first, then the rest in order; when too few pass, the rest are
    filled in order (the measured overlap then says so). Sorted offsets out."""
    m = len(offsets)
    if m <= n:
        return list(offsets)
    h = kgram_hashes(ids)
    first = sorted({int(round(i * (m - 1) / max(n - 1, 1))) for i in range(n)})
    visit = first + [i for i in range(m) if i not in set(first)]
    taken: list[int] = []
    owners: dict[int, list[int]] = {}
    for c in visit:
        if len(taken) == n:
            break
        s = _sampled(h[offsets[c]:offsets[c] + length - K + 1])
        hits = [o for x in s.tolist() for o in owners.get(x, ())]
        if hits and np.bincount(hits).max() > bound * max(len(s), 1):
            continue
        for x in s.tolist():
            owners.setdefault(x, []).append(len(taken))
        taken.append(c)
    taken += [c for c in visit if c not in set(taken)][:n - len(taken)]
    return sorted(int(offsets[c]) for c in taken)


def shared_counts(sets: Sequence[np.ndarray]) -> np.ndarray:
    """n×n counts of hashes common to each pair (upper triangle filled): a sort of all (hash, prompt) pairs,
    then, for each distance d within a run of equal hashes, one vectorised count of the pairs d apart."""
    n = len(sets)
    h = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint64)
    who = np.repeat(np.arange(n, dtype=np.int64), [len(s) for s in sets])
    order = np.argsort(h, kind="stable")
    h, who = h[order], who[order]
    counts = np.zeros(n * n, dtype=np.int64)
    d = 1
    while d < len(h):
        same = h[d:] == h[:-d]
        if not same.any():
            break
        a, b = who[:-d][same], who[d:][same]  # distinct per prompt, so a != b
        counts += np.bincount(np.minimum(a, b) * n + np.maximum(a, b), minlength=n * n)
        d += 1
    return counts.reshape(n, n)


def pairwise_overlap(prompts: Sequence[np.ndarray], k: int = K, sample: int = SAMPLE) -> Overlap:
    sets = [kgram_sample(p, k, sample) for p in prompts]
    n = len(sets)
    if n < 2:
        return Overlap(n, 0, 0.0, 0.0, 0, (0, 0))
    sizes = np.array([len(s) for s in sets], dtype=np.float64)
    iu = np.triu_indices(n, 1)
    vals = shared_counts(sets)[iu] / np.maximum(np.minimum(sizes[iu[0]], sizes[iu[1]]), 1.0)
    w = int(np.argmax(vals))
    return Overlap(n, len(vals), float(vals[w]), float(vals.mean()), int((vals > BOUND).sum()),
                   (int(iu[0][w]), int(iu[1][w])))
