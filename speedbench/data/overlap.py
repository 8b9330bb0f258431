"""Measured pairwise overlap of prompts: which share of its tokens a prompt shares with another one.

Measured on the token ids, not inferred from window offsets, so repeated text inside the sources (license
headers, catalogue entries repeated per language, a tier stream that had to wrap) counts too. Method: each
prompt's distinct k-grams of ids are hashed; a fixed 1-in-``sample`` subset of hash values is kept (the same
subset for every prompt, so shared k-grams stay shared: an unbiased estimate of containment); the overlap of
prompts a and b is |A ∩ B| / min(|A|, |B|) over those sets, for every pair; and, per prompt, the share of A
found in any other prompt at all ("elsewhere": the honest figure, since a prompt's text can be spread over many).
Pure: id arrays in, figures out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    # the honest figure: the share of a prompt's k-grams found in ANY other prompt of the bucket (not one pair)
    elsewhere_max: float = 0.0
    elsewhere_mean: float = 0.0

    def as_dict(self) -> dict:
        return {
            "prompts": self.prompts,
            "pairs": self.pairs,
            "max": round(self.max, 4),
            "mean": round(self.mean, 5),
            "bound": BOUND,
            "pairs_over_bound": self.pairs_over_bound,
            "worst_pair": list(self.worst),
            "elsewhere_max": round(self.elsewhere_max, 4),
            "elsewhere_mean": round(self.elsewhere_mean, 5),
            "method": f"distinct {K}-grams of ids, 1/{SAMPLE} hash sample",
        }


def kgram_hashes(ids: np.ndarray, k: int = K) -> np.ndarray:
    """One hash per k-gram position of ``ids`` (uint64): slices of it are the k-grams of sub-windows."""
    ids = np.asarray(ids, dtype=np.uint64)
    n = len(ids) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(n, dtype=np.uint64)
        for j in range(k):  # polynomial rolling hash, wrapping mod 2**64
            h = h * _P + ids[j : j + n] + np.uint64(1)
        h ^= h >> np.uint64(31)
        h *= _MIX
        h ^= h >> np.uint64(29)
    return h


def _sampled(h: np.ndarray, sample: int = SAMPLE) -> np.ndarray:
    return np.unique(h[h % np.uint64(sample) == 0])


def kgram_sample(ids: np.ndarray, k: int = K, sample: int = SAMPLE) -> np.ndarray:
    """Distinct hashed k-grams of ``ids`` kept by the fixed 1-in-``sample`` rule (sorted uint64)."""
    return _sampled(kgram_hashes(ids, k), sample)


def spread_pick(
    ids: np.ndarray,
    offsets: Sequence[int] | np.ndarray,
    length: int,
    n: int,
    bound: float = BOUND,
    owners: dict[int, list[int]] | None = None,
) -> list[int]:
    """``n`` of the candidate window ``offsets`` (windows of ``length`` ids of ``ids``), spread over the stream,
    skipping a candidate that shares more than ``bound`` with one already taken: real sources repeat
    themselves (boilerplate, a work printed twice), and evenly spaced windows would copy those repeats.
    Candidates are visited evenly spaced first, then the rest in order; when too few pass, the rest are
    filled in order (the measured overlap then says so). Sorted offsets out. ``owners`` (sampled k-gram hash ->
    windows holding it) carries the windows taken by earlier calls, so the tiers of one bucket, cut from
    different streams, are kept apart from each other too (the same text can sit in two tiers)."""
    owners = {} if owners is None else owners
    first_id = 1 + max((o for v in owners.values() for o in v), default=-1)
    h = kgram_hashes(ids)
    m = len(offsets)
    if m <= n:
        for c in range(m):
            for x in _sampled(h[offsets[c] : offsets[c] + length - K + 1]).tolist():
                owners.setdefault(x, []).append(first_id + c)
        return list(offsets)
    first = sorted({int(round(i * (m - 1) / max(n - 1, 1))) for i in range(n)})
    visit = first + [i for i in range(m) if i not in set(first)]
    taken: list[int] = []
    for c in visit:
        if len(taken) == n:
            break
        s = _sampled(h[offsets[c] : offsets[c] + length - K + 1])
        hits = [o for x in s.tolist() for o in owners.get(x, ())]
        if hits and np.bincount(hits).max() > bound * max(len(s), 1):
            continue
        for x in s.tolist():
            owners.setdefault(x, []).append(first_id + len(taken))
        taken.append(c)
    taken += [c for c in visit if c not in set(taken)][: n - len(taken)]
    return sorted(int(offsets[c]) for c in taken)


def shared_counts(sets: Sequence[np.ndarray], chunk: int = 1 << 22) -> np.ndarray:
    """n×n counts of hashes common to each pair (upper triangle filled): all (hash, prompt) entries sorted,
    then every run of equal hashes contributes its pairs, runs of one length at a time (vectorised)."""
    n = len(sets)
    counts = np.zeros(n * n, dtype=np.int64)
    if not n:
        return counts.reshape(0, 0)
    h = np.concatenate(sets)
    who = np.repeat(np.arange(n, dtype=np.int64), [len(s) for s in sets])
    order = np.argsort(h, kind="stable")
    h, who = h[order], who[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    lens = np.diff(np.r_[starts, len(h)])
    for length in np.unique(lens[lens > 1]):
        run_starts = starts[lens == length]
        iu = np.triu_indices(int(length), 1)
        step = max(1, chunk // len(iu[0]))
        for k in range(0, len(run_starts), step):  # bounded memory however long the runs
            block = who[run_starts[k : k + step, None] + np.arange(length)]
            a, b = block[:, iu[0]].ravel(), block[:, iu[1]].ravel()  # distinct per prompt, so a != b
            counts += np.bincount(np.minimum(a, b) * n + np.maximum(a, b), minlength=n * n)
    return counts.reshape(n, n)


def elsewhere_fractions(sets: Sequence[np.ndarray]) -> np.ndarray:
    """Per prompt, the share of its distinct (sampled) k-grams that occur in at least one other prompt: the
    text it does not hold alone, however that text is spread over the others (each ``sets[i]`` is distinct)."""
    if len(sets) < 2:
        return np.zeros(len(sets))
    values, counts = np.unique(np.concatenate(sets), return_counts=True)
    shared = values[counts > 1]
    return np.array([np.isin(s, shared, assume_unique=True).mean() if len(s) else 0.0 for s in sets])


def _summary(shared: np.ndarray, sizes: np.ndarray, idx: np.ndarray, elsewhere: np.ndarray) -> Overlap:
    n = len(idx)
    if n < 2:
        return Overlap(n, 0, 0.0, 0.0, 0, (0, 0))
    iu = np.triu_indices(n, 1)
    a, b = idx[iu[0]], idx[iu[1]]
    vals = shared[a, b] / np.maximum(np.minimum(sizes[a], sizes[b]), 1.0)
    w = int(np.argmax(vals))
    e = elsewhere[idx]
    return Overlap(
        n,
        len(vals),
        float(vals[w]),
        float(vals.mean()),
        int((vals > BOUND).sum()),
        (int(iu[0][w]), int(iu[1][w])),
        float(e.max()),
        float(e.mean()),
    )


def pairwise_overlap(prompts: Sequence[np.ndarray], k: int = K, sample: int = SAMPLE) -> Overlap:
    return overlap_by_group(prompts, [""] * len(prompts), k, sample)[0]


def overlap_by_group(
    prompts: Sequence[np.ndarray], labels: Sequence[str], k: int = K, sample: int = SAMPLE
) -> tuple[Overlap, dict[str, Overlap]]:
    """The overlap over all pairs, and over the pairs within each label (one count of shared k-grams).
    ``worst`` indices are positions within the group."""
    sets = [kgram_sample(p, k, sample) for p in prompts]
    sizes = np.array([len(x) for x in sets], dtype=np.float64)
    shared = shared_counts(sets) if len(sets) > 1 else np.zeros((len(sets), len(sets)))
    elsewhere = elsewhere_fractions(sets)  # against the whole bucket, whatever the group
    whole = _summary(shared, sizes, np.arange(len(sets)), elsewhere)
    label_arr = np.asarray(labels)
    return whole, {
        g: _summary(shared, sizes, np.flatnonzero(label_arr == g), elsewhere) for g in dict.fromkeys(label_arr.tolist())
    }
