"""One sweep point: its warm-up wave, then its measured load in this process or spread over several.

``client.drive`` runs one process's share of a point; ``procs.run_in_processes`` starts ``plan.workers``
processes that each run it.  This module picks between them and adds what only the whole point knows: a
warm-up wave that fully drains before a quiet moment (``before_measure``), and whether the client kept up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from speedbench.core.records import RequestRecord
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.engines.base import EngineAdapter
from speedbench.load.client import drive
from speedbench.load.monitor import client_stats
from speedbench.load.plan import LoadPlan, PointRun
from speedbench.load.procs import run_in_processes
from speedbench.load.warmup import WARMUP_MAX_TOKENS


async def run_point(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    on_record: Callable[[RequestRecord], None] | None = None,
    point_label: str = "",
    before_measure: Callable[[], Awaitable[None]] | None = None,
) -> PointRun:
    """Run one sweep point (closed or open loop per ``plan.mode``; in ``plan.workers`` processes).

    Measured prompts are taken in ``plan.order`` (cycling only past the end), the same for SD-off and SD-on
    points; warm-up requests send prompts of their own (load.warmup).  ``run.client`` says whether the
    client kept up, against the conversations the point can keep in flight (``plan.in_flight_target``).
    ``before_measure`` runs at a quiet moment between warm-up and measurement (e.g. to snapshot the
    server's SD counters): warm-up is then its own wave that fully drains first.
    """
    emit = on_record or (lambda r: None)
    warmup_records: list[RequestRecord] = []
    if before_measure is not None:
        if plan.warmup_requests:
            wave = _warmup_wave(plan)
            warmup_records = (
                await drive(adapter, base_url, prompts, wave, _as_warmup(emit), f"{point_label}-warmup")
            ).records
        await before_measure()
        plan = replace(plan, warmup_requests=0)
    if plan.workers > 1:
        run = await run_in_processes(adapter, base_url, prompts, plan, on_record, point_label)
    else:
        run = await drive(adapter, base_url, prompts, plan, emit, point_label)
    run.records[:0] = warmup_records
    run.client = client_stats(
        run.records,
        run.lag_samples,
        plan.in_flight_target,
        run.schedule_lags_ns,
        run.kernel_stamps,
        run.cpu_wait_samples,
    )
    return run


def _warmup_wave(plan: LoadPlan) -> LoadPlan:
    """The plan's warm-up requests as a wave of their own: one process, no cool-down, drained to the end, each
    output capped at WARMUP_MAX_TOKENS (the point's own cap when lower)."""
    return replace(
        plan,
        warmup_requests=0,
        num_requests=plan.warmup_requests,
        max_tokens=min(plan.max_tokens, WARMUP_MAX_TOKENS),
        duration_s=None,
        cooldown=False,
        workers=1,
        warmup_wave=True,
    )


def _as_warmup(emit: Callable[[RequestRecord], None]) -> Callable[[RequestRecord], None]:
    """``emit`` for records of the warm-up wave, which it drives as measured requests: flagged warm-up first."""

    def emit_warmup(rec: RequestRecord) -> None:
        rec.warmup = True
        emit(rec)

    return emit_warmup
