"""Acceptance per prompt category (SPEED-Bench reports AL per category: Coding, Math, RAG, ...).

Pure functions of one point's records. Two views, as for whole points (see metrics.summary):

tokens_per_step       Σ output tokens / Σ streamed chunks over the category's requests (token-weighted
                      chunk AL; first prefill chunk counted, bonus token included)
tokens_per_step_mean  mean of per-request chunk ALs: SPEED-Bench's own per-category AL
al_drafted            1 + Σ accepted / Σ drafts from the per-request SD counters (steps that drafted only);
                      None when the engine gave no per-request SD counters (SD off, or not exposed)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from speedbench.engines.acceptance import SpecDecodeCounters
from speedbench.load.records import OK, RequestRecord
from speedbench.metrics import request as rq


@dataclass(frozen=True)
class CategoryAcceptance:
    category: str
    requests: int                        # measured requests that finished OK
    output_tokens: int
    steps: int                           # streamed chunks (= engine steps when chunks are not merged)
    tokens_per_step: Optional[float]
    tokens_per_step_mean: Optional[float]
    al_drafted: Optional[float]
    draft_acceptance_rate: Optional[float]
    drafts: int = 0
    accepted_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def category_acceptance(records: Sequence[RequestRecord]) -> list[CategoryAcceptance]:
    """One entry per category present among the measured OK requests, sorted by category name."""
    by_cat: dict[str, list[RequestRecord]] = {}
    for r in records:
        if not r.warmup and r.status == OK:
            by_cat.setdefault(r.category, []).append(r)
    return [_one(cat, recs) for cat, recs in sorted(by_cat.items())]


def _one(category: str, recs: list[RequestRecord]) -> CategoryAcceptance:
    tokens = sum(r.output_tokens for r in recs)
    steps = sum(len(r.chunk_tokens) for r in recs)
    per_req = [x for x in (rq.tokens_per_step(r) for r in recs) if x is not None]
    total: Optional[SpecDecodeCounters] = None
    for r in recs:
        c = SpecDecodeCounters.from_dict(r.sd)
        if c is not None:
            total = c if total is None else total + c
    return CategoryAcceptance(
        category=category, requests=len(recs), output_tokens=tokens, steps=steps,
        tokens_per_step=tokens / steps if steps else None,
        tokens_per_step_mean=sum(per_req) / len(per_req) if per_req else None,
        al_drafted=total.acceptance_length if total else None,
        draft_acceptance_rate=total.draft_acceptance_rate if total else None,
        drafts=total.drafts if total else 0,
        accepted_tokens=total.accepted_tokens if total else 0,
    )
