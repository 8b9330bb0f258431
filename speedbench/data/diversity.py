"""Diversity selection: per category, the subset of candidates with the lowest mean pairwise cosine similarity.

Embedders are pluggable (``Embedder`` protocol, ``EMBEDDERS`` registry). The default, ``hashed-ngrams``,
is offline, torch-free and stable across processes: hashed character n-grams (numpy rolling hash, not
Python's salted ``hash``), log-scaled counts, L2-normalised. ``sentence-transformers`` is optional.

Selection = greedy farthest-point initialisation (each step adds the candidate least similar to its most
similar already-chosen item) followed by best-improvement swaps on the exact objective until no swap helps.
Optional strata with quotas (e.g. length bands) fix how many come from each stratum; the objective is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from speedbench.config import ConfigError


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float array; rows need not be normalised (selection normalises)."""


class HashedNgramEmbedder:
    """Bag of hashed character n-grams (n in ``ns``) in ``dim`` buckets, with a hashed sign to cancel collisions."""

    name = "hashed-ngrams"
    _MULT = np.uint64(1099511628211)  # FNV prime: a well-mixing multiplier for the rolling hash

    def __init__(self, dim: int = 4096, ns: Sequence[int] = (3, 4, 5)):
        self.dim, self.ns = dim, tuple(ns)

    def _vector(self, text: str) -> np.ndarray:
        data = np.frombuffer(" ".join(text.lower().split()).encode("utf-8"), dtype=np.uint8).astype(np.uint64)
        vec = np.zeros(self.dim, dtype=np.float64)
        for n in self.ns:
            if len(data) < n:
                continue
            h = np.full(len(data) - n + 1, np.uint64(n), dtype=np.uint64)
            for j in range(n):  # polynomial hash of every n-gram at once (uint64 wraps around by design)
                h = h * self._MULT + data[j : len(data) - n + 1 + j]
            h ^= h >> np.uint64(29)
            idx = (h % np.uint64(self.dim)).astype(np.int64)
            sign = np.where((h >> np.uint64(40)) & np.uint64(1), 1.0, -1.0)
            np.add.at(vec, idx, sign)
        return np.sign(vec) * np.log1p(np.abs(vec))  # sublinear counts: long texts do not dominate

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model path); needs torch, so it is optional."""

    name = "sentence-transformers"

    def __init__(self, model: str = "all-MiniLM-L6-v2"):
        try:  # the [embed] extra (pulls torch), needed only for this embedder
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(
                "embedder 'sentence-transformers' needs the sentence-transformers package (and torch): "
                "pip install 'speedbench[embed]'; the default 'hashed-ngrams' needs nothing"
            ) from None
        self._model = SentenceTransformer(model, device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts), batch_size=32, show_progress_bar=False))


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "hashed-ngrams": HashedNgramEmbedder,
    "sentence-transformers": SentenceTransformerEmbedder,
}


def get_embedder(name: str) -> Embedder:
    if name not in EMBEDDERS:
        raise ConfigError(f"unknown embedder {name!r}; embedders: {', '.join(EMBEDDERS)}")
    return EMBEDDERS[name]()


def cosine_matrix(emb: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms == 0, 1.0, norms)
    return unit @ unit.T


def mean_pairwise(sim: np.ndarray, idx: Sequence[int] | np.ndarray) -> float:
    """The objective: mean cosine similarity over distinct pairs of the subset (lower = more diverse)."""
    rows = np.asarray(idx)
    k = len(rows)
    if k < 2:
        return 0.0
    sub = sim[np.ix_(rows, rows)]
    return float((sub.sum() - np.trace(sub)) / (k * (k - 1)))


def _open_slots(strata: np.ndarray | None, quota: Mapping[str, int] | None, chosen: list[int]) -> np.ndarray | None:
    """Which candidates may still join: those whose stratum has quota left (None: no strata, all may)."""
    if strata is None or quota is None:
        return None
    left = {s: q - sum(strata[i] == s for i in chosen) for s, q in quota.items()}
    return np.array([left.get(s, 0) > 0 for s in strata])


def farthest_point(
    sim: np.ndarray, k: int, strata: np.ndarray | None = None, quota: Mapping[str, int] | None = None
) -> list[int]:
    n = len(sim)
    total = sim.sum(axis=1)
    allowed = _open_slots(strata, quota, [])
    if allowed is not None:
        total = np.where(allowed, total, np.inf)
    first = int(np.argmin(total))  # the candidate least like all others
    chosen = [first]
    closest = sim[first].copy()  # each candidate's highest similarity to the chosen set
    total = sim[first].copy()
    closest[first] = total[first] = np.inf
    for _ in range(min(k, n) - 1):
        allowed = _open_slots(strata, quota, chosen)
        key = closest if allowed is None else np.where(allowed, closest, np.inf)  # a full stratum takes no more
        # least similar to its nearest chosen item; ties broken by the summed similarity, then index
        nxt = int(np.lexsort((np.arange(n), total, key))[0])
        chosen.append(nxt)
        closest = np.maximum(closest, sim[nxt])
        total = total + sim[nxt]
        closest[chosen] = total[chosen] = np.inf
    return chosen


def swap_refine(
    sim: np.ndarray, chosen: list[int], max_swaps: int = 10_000, strata: np.ndarray | None = None
) -> list[int]:
    """Best-improvement swaps (one chosen out, one other in) while the objective strictly drops.

    With ``strata``, a swap stays within one stratum, so the per-stratum counts of ``chosen`` are kept."""
    n = len(sim)
    sel = np.zeros(n, dtype=bool)
    sel[chosen] = True
    s = sim[:, sel].sum(axis=1)  # each candidate's summed similarity to the chosen set
    diag = np.diag(sim)
    for _ in range(max_swaps):
        ins, outs = np.flatnonzero(sel), np.flatnonzero(~sel)
        if not len(outs):
            break
        # change of the summed pairwise similarity when `i` leaves and `j` joins (halved: symmetric pairs)
        delta = s[outs][None, :] - sim[np.ix_(ins, outs)] - (s[ins] - diag[ins])[:, None]
        if strata is not None:
            delta = np.where(strata[ins][:, None] == strata[outs][None, :], delta, np.inf)
        a, b = np.unravel_index(int(np.argmin(delta)), delta.shape)
        if delta[a, b] >= -1e-12:
            break
        i, j = ins[a], outs[b]
        sel[i], sel[j] = False, True
        s += sim[:, j] - sim[:, i]
    return sorted(np.flatnonzero(sel).tolist())


@dataclass(frozen=True)
class Selection:
    indices: list[int]
    objective: float  # mean pairwise cosine of the chosen subset
    random_mean: float  # same objective, averaged over random subsets of the same size
    random_std: float
    candidates: int


def select_diverse(
    emb: np.ndarray,
    k: int,
    seed: int = 0,
    random_trials: int = 32,
    strata: Sequence[str] | None = None,
    quota: Mapping[str, int] | None = None,
) -> Selection:
    """The ``k`` candidates of lowest mean pairwise cosine; with ``strata`` (one label per candidate) and
    ``quota`` (label -> count, summing to ``k``), exactly that many from each stratum, the same objective
    minimised over the whole set. The random comparison draws from all candidates, ignoring strata."""
    n = len(emb)
    if k <= 0:
        raise ConfigError("the number of prompts to select must be positive")
    labels = None
    if strata is not None or quota is not None:
        if strata is None or quota is None or len(strata) != n or sum(quota.values()) != k:
            raise ConfigError("strata need one label per candidate and a quota per label summing to k")
        labels = np.asarray(strata)
        short = {s: q for s, q in quota.items() if int((labels == s).sum()) < q}
        if short:
            raise ConfigError(f"strata with fewer candidates than their quota: {short}")
    sim = cosine_matrix(emb)
    if n <= k:
        idx = list(range(n))
    else:
        idx = swap_refine(sim, farthest_point(sim, k, labels, quota), strata=labels)
    rng = np.random.default_rng(seed)
    kk = min(k, n)
    rand = [mean_pairwise(sim, rng.choice(n, size=kk, replace=False)) for _ in range(random_trials)]
    return Selection(idx, mean_pairwise(sim, idx), float(np.mean(rand)), float(np.std(rand)), n)
