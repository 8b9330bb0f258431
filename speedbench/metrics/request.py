"""Per-request metric definitions (seconds unless stated). Each takes one RequestRecord.

TTFT      first output chunk − request start (when the request left: its last byte handed to the kernel)
E2E       last byte of the stream − request start
ITL       gaps between consecutive output chunks: one gap per decode step (a step may emit several
          tokens with SD, so ITL is per step, TPOT is per token)
TPOT      (last chunk − first chunk) / (output tokens − 1)
user TPS  (output tokens − 1) / (last chunk − first chunk): the generation rate one user sees after the
          first token (SPEED-Bench's definition)
tokens per step  output tokens / output chunks, first (prefill) chunk included: SPEED-Bench's
          "acceptance length" (each chunk = one engine step; valid only if chunks are not merged). A point's
          headline AL is the mean of this over its requests (SPEED-Bench's aggregation); Σ tokens / Σ chunks
          is shown beside it as "tok/step pooled" (step-weighted: the harmonic mean when lengths are equal)

Point-level definitions over a set of records (pure functions at the end of this module):
window output TPS  output tokens whose chunk arrived inside the measured window [t0, t1] (from any request,
          warm-up and cool-down included) / (t1 − t0): the steady-state rate, free of ramp-up and drain
goodput   measured OK requests meeting the SLO (TTFT ≤ ttft_max and user TPS ≥ user_tps_min; an unset
          bound always holds) per second of window, and as a fraction of measured requests
"""

from __future__ import annotations

from collections.abc import Sequence

from speedbench.core.records import RequestRecord

NS = 1e-9


def ttft(r: RequestRecord) -> float | None:
    return (r.t_first_ns - r.t_start_ns) * NS if r.chunk_times_ns else None


def e2e(r: RequestRecord) -> float:
    return (r.t_end_ns - r.t_start_ns) * NS


def itls(r: RequestRecord) -> list[float]:
    t = r.chunk_times_ns
    return [(b - a) * NS for a, b in zip(t, t[1:])]


def _decode_span(r: RequestRecord) -> float | None:
    if len(r.chunk_times_ns) < 2:
        return None
    return (r.chunk_times_ns[-1] - r.chunk_times_ns[0]) * NS


def tpot(r: RequestRecord) -> float | None:
    span = _decode_span(r)
    n = r.output_tokens
    return span / (n - 1) if span and n > 1 else None


def user_tps(r: RequestRecord) -> float | None:
    span = _decode_span(r)
    n = r.output_tokens
    return (n - 1) / span if span and n > 1 else None


def chunk_sizes(r: RequestRecord) -> list[int]:
    c = r.chunk_tokens
    return [c[0]] + [b - a for a, b in zip(c, c[1:])] if c else []


def tokens_per_step(r: RequestRecord) -> float | None:
    return r.output_tokens / len(r.chunk_tokens) if r.chunk_tokens else None


TOKEN_SOURCES = {
    "usage": "per-chunk usage",
    "ids": "per-chunk token ids",
    "text": "text chunks, 1 token each",
    "final": "final usage",
    "tokenizer": "tokenizer",
}


def token_count_source(r: RequestRecord) -> str | None:
    """Where the request's output token count came from (None for records written before it was kept)."""
    if r.token_source == "text" and r.completion_tokens is not None:
        return TOKEN_SOURCES["final"]
    return TOKEN_SOURCES.get(r.token_source) if r.token_source else None


def token_count_sources(records: Sequence[RequestRecord]) -> str | None:
    found = sorted({s for s in map(token_count_source, records) if s})
    return ", ".join(found) or None


def max_tokens_per_chunk(sd_k: int) -> int:
    """One engine step emits at most k accepted drafts + 1 bonus token."""
    return sd_k + 1


def merged_chunks(r: RequestRecord, sd_k: int) -> bool:
    """True when some chunk carries more tokens than one step can emit, i.e. the stream merged steps.
    Unknown (False) when chunk sizes were not counted (text-only chunks)."""
    if r.token_source not in (None, "usage", "ids"):
        return False
    sizes = chunk_sizes(r)
    return any(s > max_tokens_per_chunk(sd_k) for s in sizes[1:]) or (bool(sizes) and sizes[0] > 1)


EXACT, MERGED, MISMATCH = "exact", "merged", "mismatch"


def chunk_step_agreement(r: RequestRecord) -> str | None:
    """Cross-check streamed chunk sizes against the server's per-step accepted counts (vLLM 'detailed').

    exact     every decode chunk is one engine step: a chunk of size s is a drafted step that accepted
              s − 1 drafts, or (size 1) a step with no draft, in the server's order
    merged    the chunks are consecutive groups of such steps: the stream merged steps, so chunk-based
              tokens/step over-counts for this request
    mismatch  no grouping of the server's steps explains the chunks
    None      the server reported no per-step data

    The last step may accept drafts beyond max_tokens that are discarded, so it can emit fewer tokens.
    """
    acc = r.sd_per_step_accepted
    if acc is None:
        return None
    decode = chunk_sizes(r)[1:]
    drafted = [a + 1 for a in acc]
    if _explains(decode, drafted, merges=False):
        return EXACT
    return MERGED if _explains(decode, drafted, merges=True) else MISMATCH


def _explains(chunks: list[int], drafted: list[int], merges: bool) -> bool:
    """Can the chunks be cut into, in order, all drafted steps (sizes ``drafted``) plus any number of
    one-token steps without a draft; one step per chunk unless ``merges``?"""
    m, last = len(drafted), len(chunks) - 1
    states = {0}  # index of the next drafted step, at a chunk boundary
    for ci, size in enumerate(chunks):
        nxt: set[int] = set()
        for j0 in states:
            frontier, seen = [(size, j0, 0)], set()
            while frontier:
                rem, j, steps = frontier.pop()
                if (rem, j, steps) in seen:
                    continue
                seen.add((rem, j, steps))
                if rem == 0:
                    nxt.add(j)
                    continue
                if steps and not merges:
                    continue
                frontier.append((rem - 1, j, 1))  # a step that drafted nothing
                if j < m:
                    if drafted[j] <= rem:
                        frontier.append((rem - drafted[j], j + 1, 1))
                    elif ci == last and j == m - 1:
                        nxt.add(m)  # final step cut short by max_tokens
        states = nxt
        if not states:
            return False
    return m in states


def meets_slo(r: RequestRecord, ttft_max_s: float | None = None, user_tps_min: float | None = None) -> bool:
    if r.status != "ok":
        return False
    t, u = ttft(r), user_tps(r)
    if ttft_max_s is not None and (t is None or t > ttft_max_s):
        return False
    if user_tps_min is not None and (u is None or u < user_tps_min):
        return False
    return True


def window_output_tps(records: Sequence[RequestRecord], t0_ns: int, t1_ns: int) -> float | None:
    if t1_ns <= t0_ns:
        return None
    tokens = 0
    for r in records:
        prev = 0
        for t, cum in zip(r.chunk_times_ns, r.chunk_tokens):
            if t0_ns <= t <= t1_ns:
                tokens += cum - prev
            prev = cum
    return tokens / ((t1_ns - t0_ns) * NS)


def goodput(
    records: Sequence[RequestRecord],
    t0_ns: int,
    t1_ns: int,
    ttft_max_s: float | None = None,
    user_tps_min: float | None = None,
) -> tuple[float | None, float | None]:
    """(good requests per second, good fraction) over the measured (non-warm-up) records."""
    measured = [r for r in records if not r.warmup]
    if not measured or t1_ns <= t0_ns:
        return None, None
    good = sum(meets_slo(r, ttft_max_s, user_tps_min) for r in measured)
    return good / ((t1_ns - t0_ns) * NS), good / len(measured)
