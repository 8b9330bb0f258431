"""Acceptance per prompt category (SPEED-Bench reports AL per category: Coding, Math, RAG, ...).

Pure functions of one point's records. Two views, as for whole points (see metrics.summary):

tokens_per_step       Σ output tokens / Σ streamed chunks over the category's requests (token-weighted
                      chunk AL; first prefill chunk counted, bonus token included)
al_speedbench         SPEED-Bench's per-category AL (metrics.speed_bench): mean over conversations of each
                      one's Σ tokens / Σ chunks over all its turns, EOS stripped; the headline, with its 95 %
                      bootstrap interval al_speedbench_lo/hi over distinct prompts
al_per_turn           mean over requests (each turn its own) of tokens / chunks, EOS stripped: the per-turn
                      breakdown of the headline (equal to it for single-turn prompts)
tokens_per_step_mean  mean of per-request chunk ALs with the EOS token counted (the headline before
                      SPEED-Bench's rule was followed; kept for comparison with older reports)
al_drafted            1 + Σ accepted / Σ drafts from the per-request SD counters (steps that drafted only);
                      None when the engine gave no per-request SD counters (SD off, or not exposed)

Intervals resample distinct prompts: a setting pools its concurrency points, where each prompt is measured
once per concurrency, and those measurements are not independent draws (metrics.uncertainty).

Reports (speedbench.report) show them as "tok/step pooled", "AL SPEED-Bench" and "AL drafted", in the
SPEED-Bench paper's category order (CATEGORIES), with the unweighted mean over categories and the
pooled "all" row (overall_acceptance).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.core.records import OK, RequestRecord
from speedbench.data.prompts import CATEGORIES  # the paper's column order, defined once with the splits
from speedbench.metrics import request as rq
from speedbench.metrics import speed_bench as sb
from speedbench.metrics.uncertainty import cluster_mean_interval


@dataclass(frozen=True)
class CategoryAcceptance:
    category: str
    requests: int  # measured requests that finished OK
    output_tokens: int
    steps: int  # streamed chunks (= engine steps when chunks are not merged)
    tokens_per_step: float | None
    tokens_per_step_mean: float | None
    al_drafted: float | None
    draft_acceptance_rate: float | None
    drafts: int = 0
    accepted_tokens: int = 0
    tokens_per_step_mean_lo: float | None = None  # 95 % bootstrap interval (metrics.uncertainty)
    tokens_per_step_mean_hi: float | None = None
    al_speedbench: float | None = None
    al_speedbench_lo: float | None = None
    al_speedbench_hi: float | None = None
    al_per_turn: float | None = None
    conversations: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RequestAL:
    """What acceptance needs of one measured OK request: a few numbers, not its per-chunk lists (a setting
    of the full matrix pools millions of chunks; a report keeps these instead of the records)."""

    category: str
    prompt_id: str
    conversation: str  # the conversation id (a record without one is its own conversation)
    output_tokens: int
    chunks: int
    al_tokens: int  # EOS stripped as SPEED-Bench strips it (metrics.speed_bench.tokens_and_steps)
    al_steps: int
    sd: SpecDecodeCounters | None

    @classmethod
    def of(cls, r: RequestRecord) -> RequestAL:
        tokens, steps = sb.tokens_and_steps(r)
        return cls(
            r.category,
            r.prompt_id,
            r.conversation_id or r.request_id,
            r.output_tokens,
            len(r.chunk_tokens),
            tokens,
            steps,
            SpecDecodeCounters.from_dict(r.sd),
        )


def measured_als(records: Iterable[RequestRecord]) -> list[RequestAL]:
    """RequestAL of each measured (not warm-up) OK request."""
    return [RequestAL.of(r) for r in records if not r.warmup and r.status == OK]


def category_acceptance(records: Sequence[RequestRecord]) -> list[CategoryAcceptance]:
    """One entry per category present among the measured OK requests, sorted by category name."""
    return category_acceptance_of(measured_als(records))


def category_acceptance_of(items: Iterable[RequestAL]) -> list[CategoryAcceptance]:
    """category_acceptance from the measured OK requests' RequestAL."""
    by_cat: dict[str, list[RequestAL]] = {}
    for r in items:
        by_cat.setdefault(r.category, []).append(r)
    return [_one(cat, recs) for cat, recs in sorted(by_cat.items())]


def _one(category: str, recs: list[RequestAL]) -> CategoryAcceptance:
    tokens = sum(r.output_tokens for r in recs)
    steps = sum(r.chunks for r in recs)
    # tokens per step of each request with chunks (metrics.request.tokens_per_step)
    per_req = [(r.prompt_id, r.output_tokens / r.chunks) for r in recs if r.chunks]
    lo, hi = cluster_mean_interval([x for _, x in per_req], [p for p, _ in per_req]) or (None, None)
    conv = sb.conversation_als_of((r.conversation, r.prompt_id, r.al_tokens, r.al_steps) for r in recs)
    conv_lo, conv_hi = cluster_mean_interval([al for _, al in conv], [p for p, _ in conv]) or (None, None)
    turns = [r.al_tokens / r.al_steps for r in recs if r.al_steps]  # metrics.speed_bench.request_al
    total: SpecDecodeCounters | None = None
    for r in recs:
        if r.sd is not None:
            total = r.sd if total is None else total + r.sd
    return CategoryAcceptance(
        category=category,
        requests=len(recs),
        output_tokens=tokens,
        steps=steps,
        tokens_per_step=tokens / steps if steps else None,
        tokens_per_step_mean=sum(x for _, x in per_req) / len(per_req) if per_req else None,
        al_drafted=total.acceptance_length if total else None,
        draft_acceptance_rate=total.draft_acceptance_rate if total else None,
        drafts=total.drafts if total else 0,
        accepted_tokens=total.accepted_tokens if total else 0,
        tokens_per_step_mean_lo=lo,
        tokens_per_step_mean_hi=hi,
        al_speedbench=sb.mean_or_none([al for _, al in conv]),
        al_speedbench_lo=conv_lo,
        al_speedbench_hi=conv_hi,
        al_per_turn=sb.mean_or_none(turns),
        conversations=len(conv),
    )


def overall_acceptance(records: Sequence[RequestRecord]) -> CategoryAcceptance:
    """Every measured OK request pooled, as one entry with category 'all'."""
    return overall_acceptance_of(measured_als(records))


def overall_acceptance_of(items: Iterable[RequestAL]) -> CategoryAcceptance:
    return _one("all", list(items))


def turn_acceptance(records: Sequence[RequestRecord]) -> list[dict]:
    """Multi-turn: per turn of the conversations (1 = first user turn), the same measures as per category
    plus the mean prompt length and TTFT; [] when every request was a first turn (nothing to split)."""
    by_turn: dict[int, list[RequestRecord]] = {}
    for r in records:
        if not r.warmup and r.status == OK:
            by_turn.setdefault(r.turn, []).append(r)
    if set(by_turn) <= {1}:
        return []
    out = []
    for turn, recs in sorted(by_turn.items()):
        ttfts = [x for x in (rq.ttft(r) for r in recs) if x is not None]
        row = {
            "turn": turn,
            **_one("", measured_als(recs)).to_dict(),
            "prompt_len_mean": sum(r.prompt_len for r in recs) / len(recs),
            "ttft_mean_ms": sum(ttfts) / len(ttfts) * 1e3 if ttfts else None,
        }
        del row["category"]
        out.append(row)
    return out


def ordered_categories(names: Iterable[str]) -> list[str]:
    """The paper's category order first, then any other category alphabetically."""
    names = set(names)
    return [c for c in CATEGORIES if c in names] + sorted(names - set(CATEGORIES))


def mean_over_categories(values: Iterable[float | None]) -> float | None:
    """Unweighted mean of one measure across categories (the paper's last column); None values skipped."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None
