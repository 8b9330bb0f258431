"""Greedy SD is meant to be lossless: compare SD-on outputs with SD-off outputs token by token.

Pure functions over RequestRecord lists. Outputs are paired by ``prompt_id`` only at equal concurrency:
the batch shape alone can change bf16 greedy outputs (different kernels, different reduction order), so
an SD-on request at concurrency 4 is never judged against an SD-off request at concurrency 1. The same
comparison between two SD-off repeats gives the noise floor: divergence that SD-off itself shows is not
SD's fault.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from speedbench.load.records import OK, RequestRecord

ALL = "all"  # the category label of the row that pools every category


@dataclass(frozen=True)
class PairResult:
    prompt_id: str
    category: str
    exact: bool                        # output token ids identical
    first_divergence: Optional[int]    # token index of the first difference (None when identical)
    compared_tokens: int               # length of the shorter output
    text_equal: bool


def first_divergence(a: Sequence[int], b: Sequence[int]) -> Optional[int]:
    """Index of the first differing token; the shorter length when one is a strict prefix; None if equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def reference_by_prompt(records: Iterable[RequestRecord]) -> dict[str, RequestRecord]:
    """The first successful measured output per prompt (warm-up requests excluded)."""
    out: dict[str, RequestRecord] = {}
    for r in records:
        if r.status == OK and not r.warmup and r.prompt_id not in out:
            out[r.prompt_id] = r
    return out


def compare_records(candidates: Iterable[RequestRecord], reference: Iterable[RequestRecord]) -> list[PairResult]:
    """Every successful measured candidate whose prompt has a reference output, compared with it."""
    ref = reference_by_prompt(reference)
    pairs = []
    for r in candidates:
        if r.status != OK or r.warmup or r.prompt_id not in ref:
            continue
        b = ref[r.prompt_id]
        d = first_divergence(r.output_ids, b.output_ids)
        pairs.append(PairResult(r.prompt_id, r.category, d is None, d, min(len(r.output_ids), len(b.output_ids)),
                                r.text == b.text))
    return pairs


@dataclass(frozen=True)
class EquivalenceStats:
    category: str
    pairs: int
    exact_match_rate: Optional[float]
    divergence_rate: Optional[float]
    first_divergence_min: Optional[int]      # earliest divergence over the diverging pairs
    first_divergence_median: Optional[float]
    matched_prefix_frac: Optional[float]     # mean share of tokens before the first divergence (1 = identical)
    text_match_rate: Optional[float]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize_pairs(pairs: Sequence[PairResult], category: str = ALL) -> EquivalenceStats:
    n = len(pairs)
    if not n:
        return EquivalenceStats(category, 0, None, None, None, None, None, None)
    div = [p.first_divergence for p in pairs if p.first_divergence is not None]
    prefix = [(p.first_divergence if p.first_divergence is not None else p.compared_tokens) / p.compared_tokens
              if p.compared_tokens else 1.0 for p in pairs]
    exact = sum(p.exact for p in pairs)
    return EquivalenceStats(
        category=category, pairs=n, exact_match_rate=exact / n, divergence_rate=1 - exact / n,
        first_divergence_min=min(div) if div else None,
        first_divergence_median=statistics.median(div) if div else None,
        matched_prefix_frac=sum(prefix) / n, text_match_rate=sum(p.text_equal for p in pairs) / n)


def by_category(pairs: Sequence[PairResult]) -> list[EquivalenceStats]:
    """One row per category (sorted) followed by the pooled ``all`` row."""
    cats = sorted({p.category for p in pairs})
    return [summarize_pairs([p for p in pairs if p.category == c], c) for c in cats] + [summarize_pairs(pairs)]


def length_differences(candidates: Iterable[RequestRecord],
                       reference: Iterable[RequestRecord]) -> tuple[int, list[tuple[str, int, int]]]:
    """(prompts compared, [(prompt_id, reference tokens, candidate tokens)] for each whose output length
    differs). At natural length greedy SD should stop where SD off stops; where it does not, the two points
    did different work for that prompt and their speedup compares different outputs."""
    ref = reference_by_prompt(reference)
    cand = reference_by_prompt(candidates)
    common = [p for p in cand if p in ref]
    return len(common), [(p, ref[p].output_tokens, cand[p].output_tokens) for p in common
                         if ref[p].output_tokens != cand[p].output_tokens]
