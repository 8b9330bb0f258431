"""One measured point: its load against a ready server, records streamed to disk, its summary and flags."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from speedbench.config import BenchmarkConfig, SDConfig
from speedbench.core.console import stderr_console
from speedbench.core.records import RequestRecord
from speedbench.data.pretokenize import PromptSet
from speedbench.data.tokenization import encode, load_tokenizer  # cached after the first load
from speedbench.engines.base import EngineAdapter
from speedbench.engines.server import ServerProcess
from speedbench.guard import PointGuard
from speedbench.load.eventloop import run_async
from speedbench.load.plan import LoadPlan, planned_requests
from speedbench.measure import measure_point
from speedbench.metrics.flags import point_flags
from speedbench.metrics.summary import PointSummary, summarize_point
from speedbench.results import ResultsDir
from speedbench.runner.appender import RecordsAppender
from speedbench.telemetry.point import PointTelemetry

log = logging.getLogger(__name__)
T = TypeVar("T")

FLUSH_EVERY = 64  # records appended to disk in batches of at most this many...
FLUSH_EVERY_S = 1.0  # ...or sooner, once the oldest waiting record is this old: a crash loses at most these


class PointRunner:
    """Runs the points of one sweep into one results folder (one instance per sweep)."""

    def __init__(
        self,
        config: BenchmarkConfig,
        adapter: EngineAdapter,
        results: ResultsDir,
        tokenizer_path: str,
        progress: bool,
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.results = results
        self.tokenizer_path = tokenizer_path  # counts the output of servers that stream text only
        self.progress = progress  # a live progress bar on stderr (a terminal only)

    def run(
        self,
        point_id: str,
        base_url: str,
        server: ServerProcess | None,
        sd: SDConfig,
        conc: int,
        prompts: PromptSet,
        plan: LoadPlan,
    ) -> PointSummary:
        """Measure one point against the ready server at ``base_url`` (``server``: None when attached) and
        append its summary to the results folder. A point cut short (error budget, dead server) comes back
        with status "failed" and its reason."""
        # measured conversations start at request index 0 (warm-up is its own wave: see run_point)
        planned = planned_requests(prompts.prompts, plan)
        results = self.results
        results.move_records_aside(point_id)  # never append to an earlier attempt's records
        records: list[RequestRecord] = []
        keep = self.config.records
        appender = RecordsAppender(
            results, point_id, every=FLUSH_EVERY, every_s=FLUSH_EVERY_S, output_ids=keep.output_ids, text=keep.text
        )
        guard = PointGuard(
            server.is_alive if server is not None else None, self.config.load.abort_after_transport_errors
        )
        t0 = time.monotonic()

        def sink(rec: RequestRecord) -> None:
            self._count_text_tokens(rec)
            records.append(rec)
            appender.add(rec)
            guard.observe(rec)
            if bar is not None and not rec.warmup:
                bar.advance(task)

        with self._progress() as bar:  # the bar and its task exist before any record arrives
            task = bar.add_task(f"{sd.label} c={conc}", total=planned) if bar is not None else None
            try:
                with PointTelemetry(self.config) as telemetry:  # GPU samples on a side thread, n/a without NVML
                    before, run, after = run_async(
                        _flushing(
                            measure_point(
                                self.adapter,
                                base_url,
                                self.config.engine.auth_headers(),
                                prompts.prompts,
                                plan,
                                sink,
                                point_id,
                                guard,
                            ),
                            appender,
                        )
                    )
            finally:
                appender.close()  # also on Ctrl-C / SIGTERM: what ended is kept
        counters = (after - before) if (before is not None and after is not None) else None
        if sd.enabled and counters is None and not any(r.sd for r in records) and guard.reason is None:
            log.warning("SD is on but %s exposed no acceptance counters for %s", self.adapter.name, point_id)
        summary = self._summarize(records, point_id, sd, conc, counters)
        summary.not_sent = max(0, planned - summary.sent)
        summary.effective_concurrency = plan.in_flight_target
        if guard.reason is not None:
            summary.status, summary.abort_reason = "failed", guard.reason
        elif summary.sent and not summary.ok:  # answered, but not one request ended ok: the point measured nothing
            kind = max(summary.errors_by_kind.items(), key=lambda kv: kv[1])[0] if summary.errors_by_kind else None
            sample = error_sample(records, kind) if kind else None
            summary.status = "failed"
            summary.abort_reason = f"none of its {summary.sent} requests ended ok" + (
                f" ({kind}: {sample!r})" if sample else f" ({kind})" if kind else ""
            )
        _apply_client_health(summary, run)
        telemetry.apply(summary, records, results.path)
        self._store(summary)
        log.info(_outcome_line(summary, summary.abort_reason, time.monotonic() - t0, records))
        return summary

    def _summarize(
        self, records: list[RequestRecord], point_id: str, sd: SDConfig, conc: int, counters
    ) -> PointSummary:
        lc = self.config.load
        return summarize_point(
            records,
            point_id=point_id,
            engine=self.adapter.name,
            sd_label=sd.label,
            sd_method=sd.method,
            draft_length=sd.num_speculative_tokens if sd.enabled else None,
            concurrency=conc,
            isl=self.config.data.isl,
            counters=counters if sd.enabled else None,
            slo_ttft_s=lc.slo_ttft_ms / 1e3 if lc.slo_ttft_ms else None,
            slo_user_tps=lc.slo_min_user_tps,
        )

    def _store(self, summary: PointSummary) -> None:
        """The point's line in points.jsonl, its token counts in the manifest, its flags as warnings."""
        results = self.results
        results.append_point(summary)
        if summary.token_counts:
            results.update_manifest(
                token_counts={**results.manifest().get("token_counts", {}), summary.point_id: summary.token_counts}
            )
        for _tag, text in point_flags(summary.to_row()):
            log.warning("%s", text)

    def _count_text_tokens(self, rec: RequestRecord) -> None:
        """A server that streamed text only and sent no usage: count the output with the tokenizer."""
        if rec.token_source != "text" or rec.completion_tokens is not None or not rec.text:
            return

        rec.completion_tokens = len(encode(load_tokenizer(self.tokenizer_path), rec.text))
        rec.token_source = "tokenizer"

    def _progress(self) -> Any:
        """A transient progress bar on the console that log lines use (they print above it), or nothing."""
        if not self.progress:
            return contextlib.nullcontext(None)

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr_console(),
            transient=True,
        )


async def _flushing(coro: Coroutine[Any, Any, T], appender: RecordsAppender) -> T:
    """Run ``coro`` while a timer flushes records that waited ``FLUSH_EVERY_S`` (a slow point's records
    reach disk without waiting for the next one to end). On the loop's thread, as the sink is: no lock."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S / 4)
            appender.flush_if_due()

    ticker = asyncio.ensure_future(tick())
    try:
        return await coro
    finally:
        ticker.cancel()


def _apply_client_health(summary: PointSummary, run) -> None:
    """How well the load client kept up (load layer), onto the summary (its flag is logged with the others)."""
    if run is None or run.client is None:
        return
    client = run.client
    summary.client_lag_p99_ms = client.client_lag_p99_ms
    summary.mean_in_flight = client.mean_in_flight
    summary.client_saturated, summary.client_bound_reason = client.client_saturated, client.reason
    summary.client_timestamps, summary.client_lag_limit_ms = client.timestamps, client.lag_limit_ms
    summary.client_send_delay_p50_ms = client.send_delay_p50_ms
    summary.client_send_delay_p99_ms = client.send_delay_p99_ms
    summary.client_send_delay_limit_ms = client.send_delay_limit_ms
    summary.measured_connects = client.measured_connects
    summary.client_cpu_wait_share = client.cpu_wait_share
    summary.client_send_delay_lost_fraction = client.send_delay_lost_fraction


ERROR_SNIPPET_CHARS = 160  # of the server's error body in a progress line: enough for a JSON "detail"


def error_sample(records: list[RequestRecord], kind: str) -> str | None:
    """The first measured request's error text of ``kind`` (an HTTP error's body), on one line and bounded:
    "http_404 12" alone never said what the server objected to."""
    text = next((r.error for r in records if not r.warmup and r.error_kind == kind and r.error), None)
    if not text:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_SNIPPET_CHARS else flat[: ERROR_SNIPPET_CHARS - 1] + "…"


def _outcome_line(
    summary: PointSummary, failed: str | None, seconds: float, records: list[RequestRecord] | None = None
) -> str:
    """The progress line of one finished point; the commonest error kind with a sample of what the server said."""
    kinds = sorted(summary.errors_by_kind.items(), key=lambda kv: -kv[1])
    errs = ", ".join(f"{k} {v}" for k, v in kinds)
    sample = error_sample(records, kinds[0][0]) if kinds and records else None
    if sample and not (failed and repr(sample) in failed):
        errs += f"; {kinds[0][0]}: {sample!r}"
    return (
        f"{summary.point_id}: {summary.ok}/{summary.sent} ok"
        + (f" ({errs})" if errs else "")
        + (f", {summary.cancelled} cancelled" if summary.cancelled else "")
        + (f", {summary.not_sent} not sent" if summary.not_sent else "")
        + f", {summary.output_tps:.1f} tok/s in {seconds:.0f} s"
        + (f"; POINT FAILED: {failed}" if failed else "")
    )
