"""Seeded, precomputed load schedules: which prompt each request sends, and when (open loop) it is due.

Both are pure functions of (seed, index), so SD-off and SD-on points, and every worker process of a
point, agree on the same prompt order and arrival times without talking to each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Arrival = Literal["poisson", "constant"]
SPEED_BENCH_QUALITATIVE = 880  # prompts of SPEED-Bench's qualitative split (11 categories x 80)


OrderRule = Literal["stratified", "file", "shuffled"]


def measured_order(categories: Sequence[str], rule: OrderRule = "stratified", seed: int = 0) -> list[int]:
    """The order in which a point measures its prompts, as indices into the prompt set (``categories[i]`` is
    prompt i's category); a function of the prompts and the seed alone, so it is the same at every
    concurrency, for SD off and SD on, and in every client process.

    ``stratified`` (the sweep's default): each category's prompts in a seeded order, the categories
    interleaved so that every prefix of the order holds each category in proportion to its share of the
    split (prompt k of a category of m sits at (k + u) / m, u a seeded offset per category): a cut
    (``requests_per_point``, a duration, a point stopped early) still measures every category.
    ``shuffled``: one seeded permutation; ``file``: file order.
    """
    n = len(categories)
    if rule == "file":
        return list(range(n))
    rng = np.random.default_rng(seed)
    if rule == "shuffled":
        return [int(i) for i in rng.permutation(n)]
    by_cat: dict[str, list[int]] = {}
    for i, c in enumerate(categories):
        by_cat.setdefault(c, []).append(i)
    keyed: list[tuple[float, int]] = []
    for idx in by_cat.values():
        m, u = len(idx), float(rng.random())
        keyed += [((k + u) / m, int(i)) for k, i in enumerate(rng.permutation(idx))]
    return [i for _, i in sorted(keyed)]


class PromptOrder:
    """Measured request ``i`` sends prompt ``index(i)``: the prompts in ``measured_order``, each once, cycling
    only when a point has more requests than prompts (repeats allowed, a duration, cool-down)."""

    def __init__(self, categories: Sequence[str], rule: OrderRule = "file", seed: int = 0) -> None:
        if not categories:
            raise ValueError("no prompts to send")
        self.order = measured_order(categories, rule, seed)
        self.n = len(self.order)

    def index(self, i: int) -> int:
        return self.order[i % self.n]


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
    """How a point spends its prompts (counts are conversations: a multi-turn prompt is one)."""

    measured: int  # measured conversations
    in_flight: int | None  # closed loop: conversations in flight at once (below the concurrency when fewer)
    repeats: int  # measured conversations that resend a prompt (0 unless repeats are allowed)


REPEAT_HINT = "allow repeats (load.allow_repeats: true, --allow-repeats)"


def in_flight_target(concurrency: int, measured: int, *, closed_loop: bool, by_duration: bool) -> int | None:
    """Closed loop: the conversations a point keeps in flight, its concurrency, or every measured conversation
    at once when there are fewer (never more can be in flight); None in open loop (set by the rate)."""
    if not closed_loop:
        return None
    return concurrency if by_duration else min(concurrency, measured)


def prompt_budget(
    num_prompts: int,
    concurrency: int,
    requests: int | None,
    *,
    allow_repeats: bool = False,
    by_duration: bool = False,
    closed_loop: bool = True,
) -> PromptBudget:
    """The point's measured conversations: by default every prompt of the split, each once (warm-up sends
    requests of its own, see load.warmup, so it takes no prompt from the measured set).

    A closed loop above the prompt count is not refused: it keeps every conversation in flight at once, which
    ``in_flight`` says (``grid_note`` explains it once per sweep). Raises ValueError (one line, with the count
    the point needs) when it cannot run without measuring a prompt twice and repeats are not allowed.
    """
    n = num_prompts
    if n < 1:
        raise ValueError("the prompt set is empty: nothing to measure")
    if not allow_repeats:
        if by_duration:
            raise ValueError(
                "load.duration_s measures for a set time, so prompts can repeat: "
                "set load.allow_repeats: true (--allow-repeats)"
            )
        measured = requests or n
        if measured > n:
            raise ValueError(
                f"{measured} measured requests per point need {measured} distinct prompts, the prompt set has "
                f"{n}: add prompts, lower load.requests_per_point, or {REPEAT_HINT}"
            )
        return PromptBudget(
            measured, in_flight_target(concurrency, measured, closed_loop=closed_loop, by_duration=False), 0
        )
    # repeats allowed: whole passes over the split (each prompt measured equally often), at least two waves
    measured = requests or n * -(-max(n, 2 * concurrency) // n)
    return PromptBudget(
        measured,
        in_flight_target(concurrency, measured, closed_loop=closed_loop, by_duration=by_duration),
        max(0, measured - n),
    )


def grid_note(num_prompts: int, budgets: dict[int, PromptBudget], split: str) -> str | None:
    """One line for a concurrency grid that the prompt set cannot fill, or None when it can."""
    short = [c for c, b in budgets.items() if b.in_flight is not None and b.in_flight < c]
    if not short:
        return None
    need = max(short)
    better = (
        "the throughput split (--isl 1k|2k|8k|16k|32k: 1,536 prompts per bucket)"
        if need > SPEED_BENCH_QUALITATIVE
        else f"the official SPEED-Bench qualitative split ({SPEED_BENCH_QUALITATIVE} prompts: --split "
        "speed-bench:qualitative with data.source set to a local copy) or the throughput split "
        "(--isl 1k|2k|8k|16k|32k: 1,536 prompts per bucket)"
    )
    return (
        f"concurrency {', '.join(map(str, short))} above the {num_prompts} prompts of {split}: those points keep "
        f"all {num_prompts} conversations in flight at once (each point records it as effective_concurrency); "
        f"to load concurrency {need} use {better}"
    )
