"""Warm-up requests built for the warm-up: they never send a prompt of the measured set.

A point measures every prompt of the split once (``schedule.prompt_budget``), so the warm-up cannot borrow
prompts from it. Warm-up request ``j`` sends the first-turn ids of the ``j``-th prompt in the measured order
shuffled by a seeded permutation (seed, j): the same length, so the warm-up follows the split's length
profile, but no sequence a measured request sends and no prefix of one (its first id differs whenever the
prompt holds two distinct ids), so a prefix cache, if on, keeps nothing from it that a measured request could
reuse. Warm-up requests are single-turn and capped at ``WARMUP_MAX_TOKENS`` output tokens (they only start the
server's kernels and batches at the point's load; their records are flagged ``warmup`` and never measured).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.load.schedule import PromptOrder

WARMUP_MAX_TOKENS = 256  # output cap of a warm-up request (the point's own cap when lower)
WARMUP_CATEGORY = "warm-up"
WARMUP_RULE = (
    "synthetic: warm-up request j sends a seeded shuffle of the first-turn ids of the j-th prompt in the "
    "measured order (same length, no measured prompt or prefix of one), single turn, output capped at "
    f"{WARMUP_MAX_TOKENS} tokens; one wave of `concurrency` requests per point unless load.warmup_requests, "
    "drained before measuring"
)


def warmup_prompts(
    prompts: Sequence[TokenizedPrompt], order: PromptOrder, count: int, seed: int = 0
) -> list[TokenizedPrompt]:
    """``count`` warm-up prompts (ids ``warmup-<j>``, category ``warm-up``) built from ``prompts`` in ``order``."""
    out = []
    for j in range(count):
        ids = prompts[order.index(j)].ids_array()
        mixed = np.random.default_rng([seed, j]).permutation(ids)
        if len(mixed) > 1 and mixed[0] == ids[0]:
            # a permutation may keep the first id: swap in one that differs, so no prefix is shared
            other = np.flatnonzero(mixed != ids[0])
            if other.size:
                k = int(other[0])
                mixed[0], mixed[k] = mixed[k], mixed[0]
        out.append(TokenizedPrompt(f"warmup-{j}", WARMUP_CATEGORY, mixed))
    return out
