"""Aggregate one sweep point (engine × SD setting × concurrency) from its raw records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.core.documents import POINT_COMPLETE
from speedbench.core.records import CANCELLED, FAILED, OK, RequestRecord
from speedbench.metrics import acceptance as acc
from speedbench.metrics import request as rq
from speedbench.metrics import speed_bench as sb
from speedbench.metrics import uncertainty as un
from speedbench.metrics.category import turn_acceptance
from speedbench.metrics.distribution import Distribution, distribution


@dataclass
class PointSummary:
    point_id: str
    engine: str
    sd_label: str
    sd_method: str
    draft_length: int | None
    concurrency: int
    isl: int | None
    sent: int
    ok: int
    failed: int
    cancelled: int
    errors_by_kind: dict
    duration_s: float
    output_tokens: int
    output_tps: float  # Σ output tokens / (last activity − first start) over measured requests
    request_throughput: float
    user_tps: Distribution  # per request, see metrics.request
    ttft_s: Distribution
    itl_s: Distribution  # per decode step (chunk gap)
    tpot_s: Distribution
    e2e_s: Distribution
    tokens_per_step: float | None  # pooled: Σ tokens / Σ chunks (token-weighted chunk AL)
    tokens_per_step_req: Distribution  # per-request chunk AL, EOS counted (before al_per_conversation: the headline)
    al_drafted: float | None  # 1 + accepted/drafts, from the source in acceptance_source
    al_drafted_req_sum: float | None  # same from Σ per-request SD metrics (the measured requests only)
    draft_acceptance_rate: float | None
    per_position_acceptance: list = field(default_factory=list)
    # multi-turn: one dict per turn (metrics.category.turn_acceptance); the fields above pool every turn,
    # as SPEED-Bench averages over all turns
    per_turn: list = field(default_factory=list)
    counters: dict | None = None  # global counter deltas over the point
    counters_req_sum: dict | None = None
    al_drafted_server: float | None = None  # same from the server's global counter deltas
    acceptance_source: str | None = None  # metrics.acceptance: "per-request" or "server counters"
    acceptance_check: dict | None = None  # both sources side by side (metrics.acceptance.AcceptanceCheck)
    al_speedbench_ci: list | None = None  # 95 % bootstrap interval of the headline AL (metrics.uncertainty)
    # SPEED-Bench's aggregations (metrics.speed_bench; None/{} in points written before them, which the
    # report recomputes from their records): the headline AL = mean over conversations of each one's
    # Σ tokens / Σ chunks over all its turns, EOS stripped; al_per_turn = mean over requests (turns), EOS
    # stripped; the histogram of every chunk length ("length": count) behind SPEED-Bench's conditional rate
    al_per_conversation: float | None = None
    al_per_turn: float | None = None
    conversations: int | None = None
    chunk_length_histogram: dict = field(default_factory=dict)
    output_tps_log_se: float | None = None  # bootstrap SE of log output rate (metrics.uncertainty)
    user_tps_log_se: float | None = None  # bootstrap SE of log mean user TPS
    token_counts: str | None = None  # where output token counts came from (metrics.request)
    merged_chunk_requests: int = 0
    chunk_step_mismatches: int | None = None
    prompt_mismatches: int = 0  # requests where the server did not see exactly the ids we sent
    repeated_requests: int = 0  # measured requests that resent a prompt already measured in the point
    stopped_at_eos: int | None = None  # ok requests that ended at EOS (finish reason stop) before the cap
    output_tps_window: float | None = None  # steady-state TPS inside the measured window (metrics.request)
    goodput_rps: float | None = None  # SLO-meeting requests/s (all OK requests when no SLO is set)
    goodput_fraction: float | None = None
    client_lag_p99_ms: float | None = None  # client event-loop lag over the measured window (load layer)
    mean_in_flight: float | None = None  # time-averaged requests in flight over the measured window
    # closed loop: conversations the point could keep in flight, the concurrency or every measured conversation
    # when the split has fewer prompts (set by the runner from the point's plan; None in open loop)
    effective_concurrency: int | None = None
    client_saturated: bool | None = None  # lag P99 over its limit or in-flight < 99 % of target
    client_bound_reason: str | None = None  # why it is flagged, in words (which limit, by how much)
    client_timestamps: str | None = None  # "kernel" (SO_TIMESTAMPNS receive times) or "read" (loop read time)
    client_lag_limit_ms: float | None = None  # 1 ms with read stamps; half the median chunk gap with kernel's
    # the client's own delay per measured request, wanted -> sent (TTFT counts from sent), and its flag limit
    client_send_delay_p50_ms: float | None = None
    client_send_delay_p99_ms: float | None = None
    client_send_delay_limit_ms: float | None = None
    client_send_delay_lost_fraction: float | None = None  # Σ send delays / (target × window), closed loop
    measured_connects: int | None = None  # measured requests that had to open a connection (flagged)
    client_cpu_wait_share: float | None = None  # of the window, the client runnable but not running
    # set by the runner: "complete", or "failed" when the point was cut short (server died, unreachable);
    # planned measured requests = sent + not_sent, and sent = ok + failed + cancelled
    status: str = POINT_COMPLETE
    not_sent: int = 0
    abort_reason: str | None = None
    # set by the runner from GPU telemetry (None = n/a: no NVML, or a GPU did not cover the window) and cost
    energy_j: float | None = None  # Σ GPUs over the measured window
    output_tokens_per_joule: float | None = None
    mean_power_w: float | None = None
    usd_per_mtok: float | None = None  # $ per million output tokens at this point's output TPS
    telemetry: dict | None = None  # how energy was measured, per GPU, or why it is n/a

    @property
    def error_rate(self) -> float:
        """Share of planned measured requests that did not end ok (failed, cancelled or never sent)."""
        planned = self.sent + self.not_sent
        return (planned - self.ok) / planned if planned else 0.0

    def to_row(self) -> dict:
        """Flat row for CSV/parquet tables (latencies in ms)."""
        row = {
            k: getattr(self, k)
            for k in (
                "point_id",
                "engine",
                "sd_label",
                "sd_method",
                "draft_length",
                "concurrency",
                "isl",
                "sent",
                "ok",
                "failed",
                "cancelled",
                "duration_s",
                "output_tokens",
                "output_tps",
                "request_throughput",
                "tokens_per_step",
                "al_drafted",
                "al_drafted_req_sum",
                "al_drafted_server",
                "acceptance_source",
                "draft_acceptance_rate",
                "output_tps_log_se",
                "user_tps_log_se",
                "token_counts",
                "merged_chunk_requests",
                "chunk_step_mismatches",
                "prompt_mismatches",
                "repeated_requests",
                "stopped_at_eos",
                "output_tps_window",
                "goodput_rps",
                "goodput_fraction",
                "client_lag_p99_ms",
                "mean_in_flight",
                "effective_concurrency",
                "client_saturated",
                "client_bound_reason",
                "client_timestamps",
                "client_lag_limit_ms",
                "client_send_delay_p50_ms",
                "client_send_delay_p99_ms",
                "client_send_delay_limit_ms",
                "client_send_delay_lost_fraction",
                "measured_connects",
                "client_cpu_wait_share",
                "status",
                "not_sent",
                "error_rate",
                "energy_j",
                "output_tokens_per_joule",
                "mean_power_w",
                "usd_per_mtok",
            )
        }
        # the headline AL: SPEED-Bench's aggregation (per conversation, EOS stripped); a point stored before
        # it that the report could not recompute (no records) keeps its per-request mean, EOS counted
        headline = self.al_per_conversation
        row["al_speedbench"] = headline if headline is not None else _num(self.tokens_per_step_req.mean)
        row["al_speedbench_rule"] = sb.HEADLINE_RULE if headline is not None else sb.OLD_HEADLINE_RULE
        row["al_per_turn"] = self.al_per_turn
        row["al_per_request_eos_counted"] = _num(self.tokens_per_step_req.mean)
        row["conversations"] = self.conversations
        hist = {int(k): v for k, v in self.chunk_length_histogram.items()}
        row["chunk_length_histogram"] = ",".join(f"{k}:{v}" for k, v in sorted(hist.items()))
        row["conditional_acceptance_speedbench"] = ",".join(
            f"{k}:{x:.3f}" for k, x in sb.conditional_rates(hist).items()
        )
        ci = self.al_speedbench_ci or (None, None)
        row["al_speedbench_lo"], row["al_speedbench_hi"] = ci
        check = self.acceptance_check
        row["acceptance_agree"] = check["agree"] if check else None
        row["acceptance_check_text"] = acc.AcceptanceCheck(**check).describe() if check else None
        row["abort_reason"] = self.abort_reason
        row["errors"] = ",".join(f"{k}:{v}" for k, v in sorted(self.errors_by_kind.items()))
        row["user_tps_mean"] = self.user_tps.mean
        row["user_tps_p50"] = self.user_tps.p50
        for name in ("ttft_s", "e2e_s", "itl_s", "tpot_s"):
            d: Distribution = getattr(self, name)
            base = name[:-2]
            row[f"{base}_mean_ms"] = d.mean * 1e3
            for p in ("p50", "p90", "p95", "p99"):
                row[f"{base}_{p}_ms"] = getattr(d, p) * 1e3
        row["per_position_acceptance"] = ",".join(f"{x:.3f}" for x in self.per_position_acceptance)
        # per turn, "turn:value" (empty for single-turn points)
        for measure in ("tokens_per_step", "al_drafted"):
            row[f"{measure}_by_turn"] = ",".join(
                f"{t['turn']}:{t[measure]:.3f}" for t in self.per_turn if t[measure] is not None
            )
        return row


def summarize_point(
    records: Sequence[RequestRecord],
    *,
    point_id: str,
    engine: str,
    sd_label: str,
    sd_method: str,
    draft_length: int | None,
    concurrency: int,
    isl: int | None,
    counters: SpecDecodeCounters | None = None,
    slo_ttft_s: float | None = None,
    slo_user_tps: float | None = None,
) -> PointSummary:
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.status == OK]
    errors: dict[str, int] = {}
    for r in measured:
        if r.status == FAILED:
            errors[r.error_kind or "unknown"] = errors.get(r.error_kind or "unknown", 0) + 1
    t0 = t1 = 0
    if measured:
        # a stream that timed out ends at its last chunk: the wait for a dead stream is not load
        t0 = min(r.t_start_ns for r in measured)
        t1 = max(r.t_active_end_ns for r in measured)
        duration = (t1 - t0) * 1e-9
    else:
        duration = 0.0
    good_rps, good_frac = rq.goodput(records, t0, t1, slo_ttft_s, slo_user_tps)
    out_tokens = sum(r.output_tokens for r in ok)
    chunks = sum(len(r.chunk_tokens) for r in ok)
    k = draft_length or 0

    req_sum: SpecDecodeCounters | None = None
    for r in ok:
        c = SpecDecodeCounters.from_dict(r.sd)  # None for a record without per-request counters
        if c is not None:
            req_sum = c if req_sum is None else req_sum + c
    ref, source, check = acc.choose(req_sum, counters)
    per_req_al = [rq.tokens_per_step(r) for r in ok]
    agreement = [rq.chunk_step_agreement(r) for r in ok]
    checked = [a for a in agreement if a is not None]

    return PointSummary(
        point_id=point_id,
        engine=engine,
        sd_label=sd_label,
        sd_method=sd_method,
        draft_length=draft_length,
        concurrency=concurrency,
        isl=isl,
        sent=len(measured),
        ok=len(ok),
        failed=sum(r.status == FAILED for r in measured),
        cancelled=sum(r.status == CANCELLED for r in measured),
        errors_by_kind=errors,
        duration_s=duration,
        output_tokens=out_tokens,
        output_tps=out_tokens / duration if duration > 0 else 0.0,
        request_throughput=len(ok) / duration if duration > 0 else 0.0,
        user_tps=distribution(rq.user_tps(r) for r in ok),
        ttft_s=distribution(rq.ttft(r) for r in ok),
        itl_s=distribution(x for r in ok for x in rq.itls(r)),
        tpot_s=distribution(rq.tpot(r) for r in ok),
        e2e_s=distribution(rq.e2e(r) for r in ok),
        tokens_per_step=out_tokens / chunks if chunks else None,
        tokens_per_step_req=distribution(per_req_al),
        al_drafted=ref.acceptance_length if ref else None,
        al_drafted_req_sum=req_sum.acceptance_length if req_sum else None,
        al_drafted_server=counters.acceptance_length if counters else None,
        acceptance_source=source if ref else None,
        acceptance_check=check.to_dict() if check else None,
        **point_spread(ok),
        **sb.point_acceptance(ok),
        token_counts=rq.token_count_sources(ok),
        draft_acceptance_rate=ref.draft_acceptance_rate if ref else None,
        per_position_acceptance=list(ref.per_position_rate) if ref else [],
        per_turn=turn_acceptance(measured),
        counters=counters.to_dict() if counters else None,
        counters_req_sum=req_sum.to_dict() if req_sum else None,
        merged_chunk_requests=sum(rq.merged_chunks(r, k) or a == rq.MERGED for r, a in zip(ok, agreement)),
        chunk_step_mismatches=sum(a == rq.MISMATCH for a in checked) if checked else None,
        prompt_mismatches=sum(
            1
            for r in ok
            if r.server_prompt_ids_match is False
            or (r.server_prompt_tokens is not None and r.server_prompt_tokens != r.prompt_len)
        ),
        # a conversation's later turns share its prompt id: count conversations (first turns), not requests
        repeated_requests=len(firsts := [r for r in measured if r.turn == 1]) - len({r.prompt_id for r in firsts}),
        stopped_at_eos=sum(r.finish_reason == "stop" for r in ok),
        output_tps_window=rq.window_output_tps(records, t0, t1),
        goodput_rps=good_rps,
        goodput_fraction=good_frac,
    )


def _num(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else v


def point_spread(ok: Sequence[RequestRecord]) -> dict:
    """The bootstrap spreads of a point (metrics.uncertainty) from its measured OK requests; the headline
    AL's interval resamples prompts (a conversation's prompt id), as a setting's pooled interval does."""
    conv = sb.conversation_als(ok)
    ci = un.cluster_mean_interval([al for _, al in conv], [pid for pid, _ in conv])
    return {
        "al_speedbench_ci": list(ci) if ci else None,
        "output_tps_log_se": un.log_se_of_ratio([r.output_tokens for r in ok], [rq.e2e(r) for r in ok]),
        "user_tps_log_se": un.log_se_of_mean([rq.user_tps(r) for r in ok]),
    }


def point_from_dict(d: dict) -> PointSummary:
    """Rebuild a PointSummary from its JSON form (points.jsonl).

    A point written before acceptance sources were told apart (no ``acceptance_source``) gets today's
    rule from its stored counters: per-request sums first, the server's deltas as the fallback, and the
    cross-check between them, so an old run re-reports with the figures a new run would show.
    """
    d = dict(d)
    for name in ("user_tps", "ttft_s", "itl_s", "tpot_s", "e2e_s", "tokens_per_step_req"):
        d[name] = Distribution(**d[name])
    if "acceptance_source" not in d and (d.get("counters") or d.get("counters_req_sum")):
        server = SpecDecodeCounters.from_dict(d.get("counters"))
        ref, source, check = acc.choose(SpecDecodeCounters.from_dict(d.get("counters_req_sum")), server)
        d.update(
            al_drafted=ref.acceptance_length if ref else None,
            acceptance_source=source if ref else None,
            draft_acceptance_rate=ref.draft_acceptance_rate if ref else None,
            per_position_acceptance=list(ref.per_position_rate) if ref else [],
            al_drafted_server=server.acceptance_length if server else None,
            acceptance_check=check.to_dict() if check else None,
        )
    return PointSummary(**d)
