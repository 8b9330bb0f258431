"""Aggregate one sweep point (engine × SD setting × concurrency) from its raw records."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from speedbench.engines.acceptance import SpecDecodeCounters
from speedbench.load.records import CANCELLED, FAILED, OK, RequestRecord
from speedbench.metrics import request as rq
from speedbench.metrics.distribution import Distribution, distribution


@dataclass
class PointSummary:
    point_id: str
    engine: str
    sd_label: str
    sd_method: str
    draft_length: Optional[int]
    concurrency: int
    isl: Optional[int]
    sent: int
    ok: int
    failed: int
    cancelled: int
    errors_by_kind: dict
    duration_s: float
    output_tokens: int
    output_tps: float                    # Σ output tokens / (last end − first start) over measured requests
    request_throughput: float
    user_tps: Distribution               # per request, see metrics.request
    ttft_s: Distribution
    itl_s: Distribution                  # per decode step (chunk gap)
    tpot_s: Distribution
    e2e_s: Distribution
    tokens_per_step: Optional[float]     # Σ tokens / Σ chunks (SPEED-Bench chunk AL, token-weighted)
    tokens_per_step_req: Distribution    # per-request chunk AL
    al_drafted: Optional[float]          # 1 + accepted/drafts from the server's global counter deltas
    al_drafted_req_sum: Optional[float]  # same from Σ per-request SD metrics (must equal al_drafted)
    draft_acceptance_rate: Optional[float]
    per_position_acceptance: list = field(default_factory=list)
    counters: Optional[dict] = None      # global counter deltas over the point
    counters_req_sum: Optional[dict] = None
    merged_chunk_requests: int = 0
    chunk_step_mismatches: Optional[int] = None
    prompt_mismatches: int = 0           # requests where the server did not see exactly the ids we sent
    repeated_requests: int = 0           # measured requests that resent a prompt already measured in the point
    stopped_at_eos: Optional[int] = None  # ok requests that ended at EOS (finish reason stop) before the cap
    output_tps_window: Optional[float] = None   # steady-state TPS inside the measured window (metrics.request)
    goodput_rps: Optional[float] = None         # SLO-meeting requests/s (all OK requests when no SLO is set)
    goodput_fraction: Optional[float] = None
    client_lag_p99_ms: Optional[float] = None   # client event-loop lag over the measured window (load layer)
    mean_in_flight: Optional[float] = None      # time-averaged requests in flight over the measured window
    client_saturated: Optional[bool] = None     # lag P99 over its limit or in-flight < 99 % of target
    client_timestamps: Optional[str] = None     # "kernel" (SO_TIMESTAMPNS receive times) or "read" (loop read time)
    client_lag_limit_ms: Optional[float] = None  # 1 ms with read stamps; half the median chunk gap with kernel's
    # set by the runner: "complete", or "failed" when the point was cut short (server died, unreachable);
    # planned measured requests = sent + not_sent, and sent = ok + failed + cancelled
    status: str = "complete"
    not_sent: int = 0
    abort_reason: Optional[str] = None

    @property
    def error_rate(self) -> float:
        """Share of planned measured requests that did not end ok (failed, cancelled or never sent)."""
        planned = self.sent + self.not_sent
        return (planned - self.ok) / planned if planned else 0.0

    def to_row(self) -> dict:
        """Flat row for CSV/parquet tables (latencies in ms)."""
        row = {k: getattr(self, k) for k in (
            "point_id", "engine", "sd_label", "sd_method", "draft_length", "concurrency", "isl", "sent", "ok",
            "failed", "cancelled", "duration_s", "output_tokens", "output_tps", "request_throughput",
            "tokens_per_step", "al_drafted", "al_drafted_req_sum", "draft_acceptance_rate",
            "merged_chunk_requests", "chunk_step_mismatches", "prompt_mismatches", "repeated_requests",
            "stopped_at_eos", "output_tps_window",
            "goodput_rps", "goodput_fraction", "client_lag_p99_ms", "mean_in_flight", "client_saturated",
            "client_timestamps", "client_lag_limit_ms", "status", "not_sent", "error_rate")}
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
        return row


def summarize_point(records: Sequence[RequestRecord], *, point_id: str, engine: str, sd_label: str,
                    sd_method: str, draft_length: Optional[int], concurrency: int, isl: Optional[int],
                    counters: Optional[SpecDecodeCounters] = None, slo_ttft_s: Optional[float] = None,
                    slo_user_tps: Optional[float] = None) -> PointSummary:
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.status == OK]
    errors: dict[str, int] = {}
    for r in measured:
        if r.status == FAILED:
            errors[r.error_kind or "unknown"] = errors.get(r.error_kind or "unknown", 0) + 1
    t0 = t1 = 0
    if measured:
        t0 = min(r.t_start_ns for r in measured)
        t1 = max(r.t_end_ns for r in measured)
        duration = (t1 - t0) * 1e-9
    else:
        duration = 0.0
    good_rps, good_frac = rq.goodput(records, t0, t1, slo_ttft_s, slo_user_tps)
    out_tokens = sum(r.output_tokens for r in ok)
    chunks = sum(len(r.chunk_tokens) for r in ok)
    k = draft_length or 0

    req_counters = [SpecDecodeCounters.from_dict(r.sd) for r in ok if r.sd]
    req_sum = None
    for c in req_counters:
        req_sum = c if req_sum is None else req_sum + c
    ref = counters if counters is not None else req_sum
    agreement = [rq.chunk_step_agreement(r) for r in ok]
    checked = [a for a in agreement if a is not None]

    return PointSummary(
        point_id=point_id, engine=engine, sd_label=sd_label, sd_method=sd_method, draft_length=draft_length,
        concurrency=concurrency, isl=isl, sent=len(measured), ok=len(ok),
        failed=sum(r.status == FAILED for r in measured), cancelled=sum(r.status == CANCELLED for r in measured),
        errors_by_kind=errors, duration_s=duration, output_tokens=out_tokens,
        output_tps=out_tokens / duration if duration > 0 else 0.0,
        request_throughput=len(ok) / duration if duration > 0 else 0.0,
        user_tps=distribution(rq.user_tps(r) for r in ok),
        ttft_s=distribution(rq.ttft(r) for r in ok),
        itl_s=distribution(x for r in ok for x in rq.itls(r)),
        tpot_s=distribution(rq.tpot(r) for r in ok),
        e2e_s=distribution(rq.e2e(r) for r in ok),
        tokens_per_step=out_tokens / chunks if chunks else None,
        tokens_per_step_req=distribution(rq.tokens_per_step(r) for r in ok),
        al_drafted=counters.acceptance_length if counters else None,
        al_drafted_req_sum=req_sum.acceptance_length if req_sum else None,
        draft_acceptance_rate=ref.draft_acceptance_rate if ref else None,
        per_position_acceptance=list(ref.per_position_rate) if ref else [],
        counters=counters.to_dict() if counters else None,
        counters_req_sum=req_sum.to_dict() if req_sum else None,
        merged_chunk_requests=sum(rq.merged_chunks(r, k) or a == rq.MERGED for r, a in zip(ok, agreement)),
        chunk_step_mismatches=sum(a == rq.MISMATCH for a in checked) if checked else None,
        prompt_mismatches=sum(1 for r in ok if r.server_prompt_ids_match is False
                              or (r.server_prompt_tokens is not None and r.server_prompt_tokens != r.prompt_len)),
        repeated_requests=len(measured) - len({r.prompt_id for r in measured}),
        stopped_at_eos=sum(r.finish_reason == "stop" for r in ok),
        output_tps_window=rq.window_output_tps(records, t0, t1),
        goodput_rps=good_rps, goodput_fraction=good_frac,
    )


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def repeat_of(point_id: str) -> int:
    """Repeat index of a point id (``ngram-k3-c4-r2`` -> 2); 1 when the sweep had no repeats."""
    m = re.search(r"-r(\d+)$", point_id or "")
    return int(m.group(1)) if m else 1


def speedup_rows(rows: Sequence[dict]) -> list[dict]:
    """SD-on / SD-off at the same (run, engine, ISL, concurrency, repeat): output TPS and mean user TPS ratios.

    Repeat r of an SD-on point is divided by repeat r of SD off (or the first SD-off repeat when SD off has
    fewer), so the spread over repeats is not hidden by one baseline. Points that failed (server died,
    unreachable) are left out: their rates say nothing about SD.
    """
    rows = [r for r in rows if r.get("status", "complete") == "complete"]
    base: dict[tuple, dict] = {}
    for r in rows:
        if r["sd_method"] == "off":
            key = (r.get("run"), r["engine"], r["isl"], r["concurrency"])
            base.setdefault(key + (repeat_of(r.get("point_id", "")),), r)
            base.setdefault(key + (None,), r)
    out = []
    for r in rows:
        if r["sd_method"] == "off":
            continue
        key = (r.get("run"), r["engine"], r["isl"], r["concurrency"])
        b = base.get(key + (repeat_of(r.get("point_id", "")),)) or base.get(key + (None,))
        if not b:
            continue
        out.append({
            "run": r.get("run"), "model": r.get("model"), "engine": r["engine"], "isl": r["isl"],
            "concurrency": r["concurrency"], "sd_label": r["sd_label"], "sd_method": r["sd_method"],
            "draft_length": r.get("draft_length"), "repeat": repeat_of(r.get("point_id", "")),
            "output_tps_speedup": _ratio(r["output_tps"], b["output_tps"]),
            "user_tps_speedup": _ratio(r["user_tps_mean"], b["user_tps_mean"]),
        })
    return out


def point_from_dict(d: dict) -> PointSummary:
    """Rebuild a PointSummary from its JSON form (points.jsonl)."""
    d = dict(d)
    for name in ("user_tps", "ttft_s", "itl_s", "tpot_s", "e2e_s", "tokens_per_step_req"):
        d[name] = Distribution(**d[name])
    return PointSummary(**d)
