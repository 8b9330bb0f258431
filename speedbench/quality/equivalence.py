"""Greedy SD is meant to be lossless: compare SD-on outputs with SD-off outputs token by token.

Pure functions over RequestRecord lists. The unit compared is a whole conversation: a multi-turn prompt's
turns' outputs joined in turn order (a single-turn prompt is a conversation of one turn). Once a reply
diverges, every later turn has a different context, so turns are not judged one by one; the first
divergence is a token index into the joined outputs. Outputs are paired by ``prompt_id`` only at equal
concurrency:
the batch shape alone can change bf16 greedy outputs (different kernels, different reduction order), so
an SD-on request at concurrency 4 is never judged against an SD-off request at concurrency 1. The same
comparison between two SD-off repeats gives the noise floor: divergence that SD-off itself shows is not
SD's fault.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speedbench.core.records import OK, RequestRecord

ALL = "all"  # the category label of the row that pools every category


@dataclass(frozen=True)
class PairResult:
    prompt_id: str
    category: str
    exact: bool  # output token ids identical (every turn)
    first_divergence: int | None  # token index of the first difference (None when identical)
    compared_tokens: int  # length of the shorter output
    text_equal: bool
    turns: int = 1  # turns in each of the two conversations


@dataclass(frozen=True)
class Conversation:
    prompt_id: str
    category: str
    turns: int
    output_ids: list[int]  # every turn's output ids, in turn order
    text: str  # every turn's text, in turn order, joined by a blank line
    has_ids: bool = True  # every turn came back with its output token ids
    output_tokens: int = 0  # every turn's output token count (known without ids too)


def conversations(records: Iterable[RequestRecord]) -> list[Conversation]:
    """Measured conversations whose turns all ended OK, none missing, in the order they started.

    Records without a conversation id (results written before multi-turn) are one-turn conversations."""
    groups: dict[object, list[RequestRecord]] = {}
    for r in records:
        if not r.warmup:
            groups.setdefault(r.conversation_id or id(r), []).append(r)
    out = []
    for recs in groups.values():
        recs.sort(key=lambda r: r.turn)
        if any(r.status != OK for r in recs) or [r.turn for r in recs] != list(range(1, len(recs) + 1)):
            continue
        out.append(
            Conversation(
                recs[0].prompt_id,
                recs[0].category,
                len(recs),
                [x for r in recs for x in r.output_ids],
                "\n\n".join(r.text for r in recs),
                all(r.output_ids for r in recs),
                sum(r.output_tokens for r in recs),
            )
        )
    return out


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first differing token; the shorter length when one is a strict prefix; None if equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def reference_by_prompt(records: Iterable[RequestRecord]) -> dict[str, Conversation]:
    """Per prompt, the first complete measured conversation with the most turns (warm-up excluded; a
    conversation cut short when its point ended has fewer turns and is not the reference)."""
    out: dict[str, Conversation] = {}
    for c in conversations(records):
        if c.prompt_id not in out or c.turns > out[c.prompt_id].turns:
            out[c.prompt_id] = c
    return out


def conversation_pairs(
    candidates: Iterable[RequestRecord], reference: Iterable[RequestRecord]
) -> list[tuple[Conversation, Conversation]]:
    """Every complete measured candidate conversation with a reference of as many turns, with that reference."""
    ref = reference_by_prompt(reference)
    return [
        (c, ref[c.prompt_id])
        for c in conversations(candidates)
        if c.prompt_id in ref and ref[c.prompt_id].turns == c.turns
    ]


def compare_records(candidates: Iterable[RequestRecord], reference: Iterable[RequestRecord]) -> list[PairResult]:
    """Every complete candidate conversation whose prompt has a reference conversation, compared with it.

    A pair where either side has no output token ids is not compared (see ``pairs_without_ids``): two empty
    id lists are equal, and counting them as an exact match would pass whatever the texts say."""
    pairs = []
    for c, b in conversation_pairs(candidates, reference):
        if not c.has_ids or not b.has_ids:
            continue  # see pairs_without_ids: two empty id lists are equal whatever the texts say
        d = first_divergence(c.output_ids, b.output_ids)
        pairs.append(
            PairResult(
                c.prompt_id,
                c.category,
                d is None,
                d,
                min(len(c.output_ids), len(b.output_ids)),
                c.text == b.text,
                c.turns,
            )
        )
    return pairs


def pairs_without_ids(candidates: Iterable[RequestRecord], reference: Iterable[RequestRecord]) -> list[str]:
    """Categories of the pairs ``compare_records`` refused because a side has no output token ids."""
    return [c.category for c, b in conversation_pairs(candidates, reference) if not c.has_ids or not b.has_ids]


@dataclass(frozen=True)
class EquivalenceStats:
    category: str
    pairs: int
    exact_match_rate: float | None
    divergence_rate: float | None
    first_divergence_min: int | None  # earliest divergence over the diverging pairs
    first_divergence_median: float | None
    matched_prefix_frac: float | None  # mean share of tokens before the first divergence (1 = identical)
    text_match_rate: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def summarize_pairs(pairs: Sequence[PairResult], category: str = ALL) -> EquivalenceStats:
    n = len(pairs)
    if not n:
        return EquivalenceStats(category, 0, None, None, None, None, None, None)
    div = [p.first_divergence for p in pairs if p.first_divergence is not None]
    prefix = [
        (p.first_divergence if p.first_divergence is not None else p.compared_tokens) / p.compared_tokens
        if p.compared_tokens
        else 1.0
        for p in pairs
    ]
    exact = sum(p.exact for p in pairs)
    return EquivalenceStats(
        category=category,
        pairs=n,
        exact_match_rate=exact / n,
        divergence_rate=1 - exact / n,
        first_divergence_min=min(div) if div else None,
        first_divergence_median=statistics.median(div) if div else None,
        matched_prefix_frac=sum(prefix) / n,
        text_match_rate=sum(p.text_equal for p in pairs) / n,
    )


def by_category(pairs: Sequence[PairResult]) -> list[EquivalenceStats]:
    """One row per category (sorted) followed by the pooled ``all`` row."""
    cats = sorted({p.category for p in pairs})
    return [summarize_pairs([p for p in pairs if p.category == c], c) for c in cats] + [summarize_pairs(pairs)]


def length_differences(
    candidates: Iterable[RequestRecord], reference: Iterable[RequestRecord]
) -> tuple[int, list[tuple[str, int, int]]]:
    """(prompts compared, [(prompt_id, reference tokens, candidate tokens)] for each whose output length
    differs). At natural length greedy SD should stop where SD off stops; where it does not, the two points
    did different work for that prompt and their speedup compares different outputs."""
    return length_differences_of(output_lengths(candidates), output_lengths(reference))


def output_lengths(records: Iterable[RequestRecord]) -> dict[str, int]:
    """Per prompt, its reference conversation's output tokens (every turn's, joined): what
    ``length_differences`` compares, kept by a reader that reads a point once for several uses."""
    return {p: c.output_tokens for p, c in reference_by_prompt(records).items()}


def length_differences_of(cand: dict[str, int], ref: dict[str, int]) -> tuple[int, list[tuple[str, int, int]]]:
    """length_differences from two points' output_lengths."""
    common = [p for p in cand if p in ref]
    return len(common), [(p, ref[p], cand[p]) for p in common if ref[p] != cand[p]]
