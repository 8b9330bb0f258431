"""SPEED-Bench's own acceptance aggregations, as its framework computes them.

Read from NVIDIA/Model-Optimizer examples/specdec_bench at commit a2fbac7bad8ab446d3f8783dadb0c3366eb0ad73:
  specdec_bench/models/vllm.py ``run``: a step's chunk is the tokens it added to the stream; a chunk that
      added none is dropped; when the request ended at EOS the EOS token is cut from the last chunk, and
      that chunk is dropped when the EOS was all it held (the first chunk is the prefill token, a chunk of 1)
  specdec_bench/metrics/specbench.py ``SpecBench.process_final`` (the metric run.py uses for the SPEED-Bench
      dataset): a conversation's AL = mean chunk length over ALL its turns' chunks (``mean(chain(*turns))``
      = Σ tokens / Σ chunks of the conversation); the run's and each category's AL = the mean of those
      over conversations (``Average_AL``, ``Category_AL``)
  specdec_bench/metrics/acceptance_rate.py ``_process_lengths``: the histogram of every chunk length
      (prefill chunks and steps that drafted nothing included) and, per length k in increasing order, the
      conditional acceptance rate P(len ≥ k) / P(len ≥ previous k) (1.0 at the smallest length)

Here a request (one turn) is one streamed completion: a request that ended at EOS is one whose
``finish_reason`` is "stop" (speedbench sets no stop strings). vLLM keeps the EOS as the request's last
output token (0.32.0 ``v1/core/sched/utils.py`` ``check_stop``), so its usage and the cumulative chunk counts
include it, as specdec_bench's ``token_ids`` do before it cuts it. A conversation is the requests sharing a
``conversation_id`` (the first turn's request id; a record without one is its own conversation); a
conversation pools the turns that ended ok. A text-only stream (chunk sizes not counted, token_source
"text"/"tokenizer") enters the ALs with its total token count but not the chunk-length histogram.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from speedbench.core.records import OK, RequestRecord
from speedbench.metrics import request as rq

SOURCE = "NVIDIA/Model-Optimizer examples/specdec_bench @ a2fbac7b"
# what a point's headline AL ("AL SPEED-Bench") was averaged over; the second for points stored before
# speedbench computed SPEED-Bench's aggregation whose records are gone
HEADLINE_RULE = "mean over conversations of Σ tokens / Σ chunks over all turns, EOS stripped (SPEED-Bench)"
EOS_RULE = (
    "stripped from acceptance as SPEED-Bench does (AL, chunk histogram: a request that ended at EOS loses "
    "that token, and its last chunk when the EOS was alone in it); counted in output TPS and user TPS "
    "(SPEED-Bench drops it there too: at most 1 token per request)"
)
RULES = {"headline_al": HEADLINE_RULE, "eos_token": EOS_RULE, "source": SOURCE}
OLD_HEADLINE_RULE = "mean over requests of tokens / chunks, EOS counted (stored before SPEED-Bench's rule)"


def ended_at_eos(r: RequestRecord) -> bool:
    return r.finish_reason == "stop"


def chunk_lengths(r: RequestRecord) -> list[int]:
    """The request's streamed chunk sizes as specdec_bench counts them: empty chunks dropped, EOS cut."""
    sizes = [s for s in rq.chunk_sizes(r) if s > 0]
    if sizes and ended_at_eos(r):
        sizes[-1] -= 1
        if not sizes[-1]:
            sizes.pop()
    return sizes


def tokens_and_steps(r: RequestRecord) -> tuple[int, int]:
    """(output tokens, chunks) of one request with the EOS token stripped as specdec_bench strips it."""
    steps = len(r.chunk_tokens)
    tokens = r.output_tokens
    if steps and ended_at_eos(r):
        tokens -= 1
        if rq.chunk_sizes(r)[-1] <= 1:
            steps -= 1
    return max(tokens, 0), steps


def request_al(r: RequestRecord) -> float | None:
    """One request's (turn's) AL with EOS stripped; None without chunks."""
    tokens, steps = tokens_and_steps(r)
    return tokens / steps if steps else None


def _measured_ok(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if not r.warmup and r.status == OK]


def conversation_als(records: Sequence[RequestRecord]) -> list[tuple[str, float]]:
    """(prompt id, AL) per conversation among the measured OK requests: Σ tokens / Σ chunks over its turns."""
    return conversation_als_of(
        (r.conversation_id or r.request_id, r.prompt_id, *tokens_and_steps(r)) for r in _measured_ok(records)
    )


def conversation_als_of(turns: Iterable[tuple[str, str, int, int]]) -> list[tuple[str, float]]:
    """conversation_als from (conversation, prompt id, tokens, chunks) per turn, EOS already stripped."""
    sums: dict[str, list] = {}
    for conversation, prompt_id, tokens, steps in turns:
        s = sums.setdefault(conversation, [prompt_id, 0, 0])
        s[1] += tokens
        s[2] += steps
    return [(pid, tokens / steps) for pid, tokens, steps in sums.values() if steps]


def mean_or_none(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def chunk_histogram(records: Iterable[RequestRecord]) -> dict[int, int]:
    """Count of each chunk length over the measured OK requests whose chunk sizes were counted."""
    hist: dict[int, int] = {}
    for r in _measured_ok(records):
        if r.token_source not in (None, "usage", "ids"):
            continue
        for s in chunk_lengths(r):
            hist[s] = hist.get(s, 0) + 1
    return dict(sorted(hist.items()))


def conditional_rates(hist: dict[int, int]) -> dict[int, float]:
    """SPEED-Bench's conditional acceptance rate per chunk length k: P(len ≥ k | len ≥ previous length)."""
    total = sum(hist.values())
    out: dict[int, float] = {}
    left, prev = total, 1.0
    for k in sorted(hist):
        share = left / total
        out[k] = share / prev
        prev = share
        left -= hist[k]
    return out


def point_acceptance(records: Sequence[RequestRecord]) -> dict:
    """The PointSummary fields of SPEED-Bench's aggregations over a point's records (warm-up excluded)."""
    conv = [al for _, al in conversation_als(records)]
    turns = [x for x in map(request_al, _measured_ok(records)) if x is not None]
    return {
        "al_per_conversation": mean_or_none(conv),
        "al_per_turn": mean_or_none(turns),
        "conversations": len(conv),
        "chunk_length_histogram": {str(k): v for k, v in chunk_histogram(records).items()},
    }
