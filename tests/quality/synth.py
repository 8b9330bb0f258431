"""Results folders simulated from a known draft-length model, so the right draft length is known exactly.

Every decode step drafts k tokens; token j survives with the conditional probability p_j given the ones
before it survived (logit p_j = alpha + beta (j - 1), the model's own trend family); the step emits the
survivors plus one. SD-off steps take ``off_ms``; SD-on steps take ``off_ms * (c0 + c1 k)``, with 3 %
request-to-request jitter.
"""

from __future__ import annotations

import math

import numpy as np

from speedbench.metrics.summary import summarize_point
from speedbench.results import ResultsDir
from tests.conftest import make_record

OFF_MS = 10.0


def conditional(alpha: float, beta: float, k: int) -> list[float]:
    return [1 / (1 + math.exp(-(alpha + beta * j))) for j in range(k)]


def true_speedups(alpha: float, beta: float, c0: float, c1: float, k_max: int = 8) -> dict[int, float]:
    """S(k) = E(k) / r(k) with every step drafted: the figure the model should recover."""
    a = np.cumprod(conditional(alpha, beta, k_max))
    return {k: (1 + a[:k].sum()) / (c0 + c1 * k) for k in range(1, k_max + 1)}


def _request(rng, pid, cat, k, p, tokens, gap_ms):
    """About ``tokens`` output tokens: the first from prefill, then drafted steps until the count is reached
    (the last step is not capped: a capped step would accept less than the model says, a bias of its own)."""
    accepted, left = [], tokens - 1
    while left > 0:
        n = 0
        while n < k and rng.random() < p[n]:
            n += 1
        accepted.append(n)
        left -= n + 1
    sizes = [1] + [n + 1 for n in accepted]
    per_pos = [sum(1 for n in accepted if n > j) for j in range(k)]
    return make_record(
        chunk_tokens=tuple(np.cumsum(sizes).tolist()),
        chunk_gap_ms=gap_ms,
        prompt_id=pid,
        category=cat,
        sd={
            "drafts": len(accepted),
            "draft_tokens": k * len(accepted),
            "accepted_tokens": sum(accepted),
            "accepted_per_position": per_pos,
        },
        sd_per_step_drafted=[k] * len(accepted),
        sd_per_step_accepted=accepted,
    )


def write_results(
    path,
    categories: dict[str, tuple[float, float]],
    ks: list[int],
    cost: tuple[float, float],
    prompts: int = 40,
    tokens: int = 120,
    seed: int = 1,
    concurrency: int = 1,
):
    """categories: name -> (alpha, beta). One SD-off point and one n-gram point per k at ``concurrency``."""
    rng = np.random.default_rng(seed)
    rd = ResultsDir(path) if (path / "manifest.json").is_file() else ResultsDir(path).create({"config": {}})
    jitter = lambda: 1 + 0.03 * rng.standard_normal()  # noqa: E731

    def point(records, label, method, k):
        pid = f"{label}-c{concurrency}"
        rd.append_records(pid, records)
        rd.append_point(
            summarize_point(
                records,
                point_id=pid,
                engine="vllm",
                sd_label=label,
                sd_method=method,
                draft_length=k,
                concurrency=concurrency,
                isl=None,
            )
        )

    point(
        [
            make_record(
                chunk_tokens=tuple(range(1, tokens + 1)),
                chunk_gap_ms=OFF_MS * jitter(),
                prompt_id=f"{c}-{i}",
                category=c,
            )
            for c in categories
            for i in range(prompts)
        ],
        "sd-off",
        "off",
        None,
    )
    for k in ks:
        gap = OFF_MS * (cost[0] + cost[1] * k)
        point(
            [
                _request(rng, f"{c}-{i}", c, k, conditional(*ab, k), tokens, gap * jitter())
                for c, ab in categories.items()
                for i in range(prompts)
            ],
            f"ngram-k{k}",
            "ngram",
            k,
        )
    return path
