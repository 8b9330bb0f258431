"""Per-category acceptance, the SPEED-Bench table: pure functions of request records.

Two acceptance measures, named so they cannot be confused:

tokens_per_step           Σ output tokens / Σ streamed chunks over the category's requests (SPEED-Bench's
                          chunk "acceptance length", token-weighted; every step counts, including the
                          prefill chunk and steps where no draft was proposed)
tokens_per_step_req_mean  mean of the per-request chunk AL (SPEED-Bench averages per request)
al_drafted                1 + Σ accepted / Σ drafts from the per-request SD counters (``rec.sd``): the
                          acceptance length over verify steps that carried drafts (None without counters)
"""
from __future__ import annotations

from typing import Iterable, Optional

from speedbench.load.records import OK, RequestRecord

# The SPEED-Bench qualitative categories, in the paper's column order.
CATEGORIES = ("Coding", "Math", "Humanities", "STEM", "Writing", "Summarization", "Roleplay", "RAG",
              "Multilingual", "Reasoning", "QA")


def ordered_categories(names: Iterable[str]) -> list[str]:
    """The paper's order first, then any other category alphabetically."""
    names = set(names)
    return [c for c in CATEGORIES if c in names] + sorted(names - set(CATEGORIES))


def _measured(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if not r.warmup and r.status == OK and r.chunk_tokens]


def _row(category: str, recs: list[RequestRecord]) -> dict:
    tokens = sum(r.output_tokens for r in recs)
    chunks = sum(len(r.chunk_tokens) for r in recs)
    per_req = [r.chunk_tokens[-1] / len(r.chunk_tokens) for r in recs]
    sds = [r.sd for r in recs if r.sd]
    drafts = sum(int(s.get("drafts", 0)) for s in sds)
    accepted = sum(int(s.get("accepted_tokens", 0)) for s in sds)
    return {
        "category": category,
        "requests": len(recs),
        "tokens_per_step": tokens / chunks if chunks else None,
        "tokens_per_step_req_mean": sum(per_req) / len(per_req) if per_req else None,
        "al_drafted": 1.0 + accepted / drafts if drafts else None,
        "drafts": drafts if sds else None,
        "accepted_tokens": accepted if sds else None,
    }


def category_acceptance(records: Iterable[RequestRecord]) -> list[dict]:
    """One row per category (measured, successful requests only), in the paper's category order.

    Keys: category, requests, tokens_per_step, tokens_per_step_req_mean, al_drafted, drafts, accepted_tokens.
    """
    by_cat: dict[str, list[RequestRecord]] = {}
    for r in _measured(records):
        by_cat.setdefault(r.category, []).append(r)
    return [_row(cat, by_cat[cat]) for cat in ordered_categories(by_cat)]


def overall_acceptance(records: Iterable[RequestRecord]) -> dict:
    """All categories pooled (token-weighted / request-weighted), same keys as a category row."""
    return _row("all", _measured(records))


def mean_over_categories(rows: list[dict], key: str) -> Optional[float]:
    """Unweighted mean of one measure across categories (the paper's last column)."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None
