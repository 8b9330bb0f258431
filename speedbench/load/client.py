"""Streaming load: closed loop at a fixed concurrency (the SPEED-Bench mode) or open loop at a request rate.

One connection pool per process: raw HTTP/1.1 protocols (``http1``, the default hot path) or aiohttp (the
cross-check).  Timing: ``time.perf_counter_ns`` (CLOCK_MONOTONIC, comparable across processes) of the
socket block that brought an event, the kernel's receive time where available (``stamped_socket``);
every event in one block shares the stamp.  Phases: warm-up requests, the measured requests, then
cool-down requests that keep the load on until the last measured request has finished (then they are
cancelled), so the measured window sees steady load with no ramp-up or drain.  Warm-up and cool-down
records carry ``warmup=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.data.promptset import turn_ids_digest
from speedbench.engines.base import EngineAdapter
from speedbench.load.aiohttp_client import AiohttpStreamer, aiohttp_streamer
from speedbench.load.http1 import Http1Pool
from speedbench.load.monitor import ClientStats, LoopMonitor, client_stats
from speedbench.load.records import CANCELLED, FAILED, OK, RequestRecord
from speedbench.load.schedule import Arrival, ArrivalSchedule, PromptOrder, default_warmup_pool
from speedbench.load.sse import DONE, dumps, loads

_now = time.perf_counter_ns


@dataclass
class LoadPlan:
    concurrency: int
    num_requests: int
    warmup_requests: int
    max_tokens: int  # the output cap; requests stop at EOS unless fixed_length
    fixed_length: bool = False  # ignore EOS: exactly max_tokens per request
    request_timeout_s: float = 600.0
    stream_idle_timeout_s: float = 60.0
    mode: Literal["closed", "rate"] = "closed"
    request_rate: float | None = None  # open loop: requests/s
    arrival: Arrival = "poisson"
    duration_s: float | None = None  # measure by time instead of by count
    cooldown: bool = False  # keep load on until the last measured request ends
    shuffle: bool = False  # seeded prompt order instead of file order
    warmup_pool: int | None = None  # prompts kept for the warm-up alone (None: one per warm-up request)
    warmup_wave: bool = False  # every request of this drive is a warm-up request
    seed: int = 0
    workers: int = 1  # client processes (each its own loop and pool)
    monitor_interval_s: float = 0.005
    http_client: Literal["http1", "aiohttp"] = "http1"  # raw-protocol hot path, or aiohttp to cross-check
    kernel_timestamps: bool = True  # http1 on Linux: stamp chunks with SO_TIMESTAMPNS
    pause_gc: bool = True  # no cyclic GC passes while the point runs (see _gc_paused)
    headers: dict[str, str] = field(default_factory=dict)  # extra request headers (e.g. Authorization)
    # multi-turn: builds a later turn's ids from (tail, sent ids, reply ids, reply text); None = first turns only.
    # A conversation is one request index: its turns go in order on one closed-loop slot (or arrival).
    next_turn: Callable[[Sequence[int], Sequence[int], Sequence[int], str], list[int]] | None = None


@dataclass
class PointRun:
    records: list[RequestRecord] = field(default_factory=list)
    t_measure_start_ns: int = 0
    t_measure_end_ns: int = 0
    prompt_order: list[str] = field(default_factory=list)  # prompt ids of measured requests, by index
    client: ClientStats | None = None
    lag_samples: list[tuple[int, int]] = field(default_factory=list)
    schedule_lags_ns: list[int] = field(default_factory=list)
    kernel_stamps: bool = False  # chunk stamps are the kernel's receive times (not read times)


def run_async(coro: Awaitable):
    """Run a coroutine on uvloop when it is installed (several times faster I/O callbacks), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


class _Fold:
    """Folds one response's SSE payloads into its record; ``__call__`` returns True when the stream is over
    for us: ``[DONE]`` seen, or a failure recorded (malformed payload, an error event from the server)."""

    __slots__ = ("rec", "fast", "on_event", "sent_ids")

    def __init__(self, adapter: EngineAdapter, rec: RequestRecord, sent_ids: list[int]) -> None:
        self.rec, self.sent_ids = rec, sent_ids
        self.fast = adapter.fast_event  # optional hook (EngineAdapter.fast_event): folded (None) or the event
        self.on_event = adapter.on_event

    def __call__(self, payload: bytes, t: int) -> bool:
        if payload == DONE:
            return True
        rec = self.rec
        try:
            # the adapter's fast parser folds common chunks itself (None) or hands back the event
            event = self.fast(payload, rec, t) if self.fast is not None else loads(payload)
            if event is None:
                return False
        except ValueError:
            rec.status, rec.error_kind = FAILED, "malformed_sse"
            rec.error = payload[:200].decode("utf-8", "replace")
            return True
        if isinstance(event, dict) and "error" in event and not event.get("choices"):
            rec.status, rec.error_kind, rec.error = FAILED, "server_error_event", str(event["error"])[:300]
            return True
        self.on_event(event, rec, t, self.sent_ids)
        return False


async def stream_one(
    http: Http1Pool | AiohttpStreamer,
    adapter: EngineAdapter,
    token_ids: Sequence[int],
    rec: RequestRecord,
    plan: LoadPlan,
) -> RequestRecord:
    path, body = adapter.build_request(list(token_ids), plan.max_tokens, plan.fixed_length)
    sent_ids = body.get("prompt") or body.get("input_ids") or list(token_ids)
    data = dumps(body)
    fold = _Fold(adapter, rec, sent_ids)
    rec.t_start_ns = _now()
    try:
        out = await http.stream(path, data, fold)
    except asyncio.CancelledError:
        rec.status, rec.error_kind, rec.t_end_ns = CANCELLED, "cancelled", _now()
        raise
    # the end is the read that brought [DONE] (or the failure), not when this task got round to waking up
    rec.t_end_ns = out.t_end_ns or _now()
    rec.http_status = out.http_status
    if rec.status == OK and out.error_kind is not None:
        rec.status, rec.error_kind, rec.error = FAILED, out.error_kind, out.error
    return rec


class _Phases:
    """Which phase request ``i`` belongs to; knows when the measured phase is over (in this process)."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.t_measure_start: int | None = None
        self.closed = False  # no more measured requests will start here
        self.halted = False  # no request of any phase will start here (the point is ending)
        self.measured_in_flight = 0
        self.done = asyncio.Event()  # closed and none measured in flight

    def of(self, i: int) -> str | None:
        p = self.plan
        if self.halted:
            return None
        if i < p.warmup_requests:
            return "warmup"
        if not self.closed:
            if p.duration_s is None:
                if i < p.warmup_requests + p.num_requests:
                    return "measure"
            else:
                if self.t_measure_start is None:
                    self.t_measure_start = _now()
                if _now() - self.t_measure_start < p.duration_s * 1e9:
                    return "measure"
            self.closed = True
            self._check()
        return "cooldown" if p.cooldown else None

    def halt(self) -> None:
        """Stop every driver at its next request, whether or not its cancellation reaches it.

        Cancellation alone is not enough: Python 3.10/3.11's ``asyncio.wait_for`` (and any library code
        that catches CancelledError) can swallow a cancel that lands as the awaited call finishes, e.g. a
        connect refused by a dead server.  The worker then carried on and fired the rest of the point at
        the dead server (the SIGKILL fault test caught 113 such requests), and in cool-down it would loop
        for ever."""
        self.halted = self.closed = True

    def finished(self, phase: str) -> None:
        if phase == "measure":
            self.measured_in_flight -= 1
            self._check()

    def _check(self) -> None:
        if self.closed and self.measured_in_flight == 0:
            self.done.set()


@contextlib.contextmanager
def _gc_paused(enabled: bool):
    """No cyclic garbage collection while a point runs.  A full pass over thousands of live records stalled
    the loop for 10-30 ms, which put a P99 TTFT error of ~25 ms on a paced 512-stream run that was exact
    to 0.06 ms without it (scripts/bench_client.py).  The hot path makes no reference cycles, so memory
    is freed by reference counting meanwhile; existing objects are frozen (never scanned) and one
    collection runs after the point."""
    if not enabled or not gc.isenabled():
        yield
        return
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect(1)


@contextlib.asynccontextmanager
async def _streamer(base_url: str, plan: LoadPlan):
    """This process's one connection pool, on the client the plan names."""
    if plan.http_client == "aiohttp":
        async with aiohttp_streamer(
            base_url, plan.headers, plan.request_timeout_s, plan.stream_idle_timeout_s
        ) as streamer:
            yield streamer
        return
    pool = Http1Pool(
        base_url,
        plan.headers,
        idle_timeout_s=plan.stream_idle_timeout_s,
        total_timeout_s=plan.request_timeout_s,
        kernel_timestamps=plan.kernel_timestamps,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def drive(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    emit: Callable[[RequestRecord], None],
    point_label: str = "",
    part: tuple[int, int] = (0, 1),
    release: Callable[[], Awaitable[None]] | None = None,
) -> PointRun:
    """Run one process's share of a point: request indices ``i % n == w`` for ``part=(w, n)``.

    ``release`` (multi-process): awaited after this share's measured requests are done; cool-down goes on
    until it returns (when every process is done).
    """
    with _gc_paused(plan.pause_gc):
        return await _drive_point(adapter, base_url, prompts, plan, emit, point_label, part, release)


async def _drive_point(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    emit: Callable[[RequestRecord], None],
    point_label: str,
    part: tuple[int, int],
    release: Callable[[], Awaitable[None]] | None,
) -> PointRun:
    w, n = part
    run = PointRun()
    plan = with_warmup_pool(plan, len(prompts))
    order = PromptOrder(len(prompts), plan.shuffle, plan.seed, plan.warmup_pool)
    phases = _Phases(plan)
    indices = itertools.count(w, n)
    monitor = LoopMonitor(plan.monitor_interval_s)
    tasks: set[asyncio.Task] = set()

    async def one(http, i: int, phase: str) -> None:
        """One conversation: its turns in order, each sent once the previous reply has fully arrived."""
        if plan.warmup_wave or phase == "warmup":
            p = prompts[order.warmup_index(i)]
        else:  # measured (and cool-down) requests count from the end of the warm-up
            p = prompts[order.index(i - plan.warmup_requests)]
        conv = f"{point_label}#{i}"
        last = p.turns_to_send if plan.next_turn is not None else 1
        ids = p.token_ids
        turn = 1
        if phase == "measure":
            phases.measured_in_flight += 1
        try:
            while True:
                rec = RequestRecord(
                    conv if turn == 1 else f"{conv}.{turn}",
                    p.id,
                    p.category,
                    len(ids),
                    plan.max_tokens,
                    warmup=phase != "measure",
                    conversation_id=conv,
                    turn=turn,
                    prompt_sha256=turn_ids_digest(ids) if turn > 1 else None,
                )
                try:
                    await stream_one(http, adapter, ids, rec, plan)
                finally:
                    run.records.append(rec)
                    emit(rec)
                if rec.status != OK:
                    # a refused loopback connect fails without ever suspending: yield, so that a guard watching
                    # these records (server gone) gets to stop the point before the worker burns every request.
                    # A failed turn also ends its conversation: the next turn has no reply to build on.
                    await asyncio.sleep(0)
                    return
                if turn == last or phases.halted:
                    return
                turn += 1
                ids = plan.next_turn(p.turn_tails[turn - 2], ids, rec.output_ids, rec.text)
        finally:
            phases.finished(phase)

    async def closed_worker(http) -> None:
        while True:
            i = next(indices)
            phase = phases.of(i)
            if phase is None:
                return
            await one(http, i, phase)

    async def open_dispatcher(http) -> None:
        sched = ArrivalSchedule(plan.request_rate or 1.0, plan.arrival, plan.seed)
        t0 = _now()
        while True:
            i = next(indices)
            due = t0 + int(sched.offset(i) * 1e9)
            delay = due - _now()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            phase = phases.of(i)
            if phase is None:
                return
            if phase == "measure":
                run.schedule_lags_ns.append(max(0, _now() - due))
            t = asyncio.get_running_loop().create_task(one(http, i, phase))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    async with _streamer(base_url, plan) as http:
        monitor.start()
        if plan.mode == "closed":
            share = plan.concurrency // n + (1 if w < plan.concurrency % n else 0)
            drivers = [asyncio.create_task(closed_worker(http)) for _ in range(share)]
            if share == 0:  # more processes than streams: this one has nothing to measure
                phases.closed = True
                phases._check()
        else:
            drivers = [asyncio.create_task(open_dispatcher(http))]
        try:
            done_wait = asyncio.create_task(phases.done.wait())
            drivers.append(done_wait)
            pending = set(drivers)
            while not done_wait.done():
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for d in finished:  # a driver that raised (requests never do: they end as records) is a bug
                    if d.exception() is not None:
                        raise d.exception()
            if release is not None:
                await release()
        finally:
            phases.halt()
            for t in [*drivers, *tasks]:
                t.cancel()
            await asyncio.gather(*drivers, *tasks, return_exceptions=True)
            await monitor.stop()
    set_measured_window(run)
    run.lag_samples = monitor.samples
    run.kernel_stamps = bool(getattr(http, "kernel_timestamps", False))
    return run


def with_warmup_pool(plan: LoadPlan, num_prompts: int) -> LoadPlan:
    if plan.warmup_pool is not None:
        return plan
    return replace(plan, warmup_pool=default_warmup_pool(plan.warmup_requests, num_prompts))


def set_measured_window(run: PointRun) -> None:
    """Measured window = first measured start .. last measured end; prompt order as sent (by request index,
    one entry per conversation)."""
    measured = [r for r in run.records if not r.warmup]
    if measured:
        run.t_measure_start_ns = min(r.t_start_ns for r in measured)
        run.t_measure_end_ns = max(r.t_end_ns for r in measured)
    idx = sorted((int(r.request_id.rsplit("#", 1)[1]), r.prompt_id) for r in measured if r.turn == 1)
    run.prompt_order = [pid for _, pid in idx]


def planned_requests(prompts: Sequence[TokenizedPrompt], plan: LoadPlan, first: int = 0) -> int:
    """Requests ``plan.num_requests`` conversations send from request index ``first``: one per turn."""
    if plan.next_turn is None or not any(p.turn_tails for p in prompts):
        return plan.num_requests
    plan = with_warmup_pool(plan, len(prompts))  # the order the drivers use: warm-up prompts set aside
    order = PromptOrder(len(prompts), plan.shuffle, plan.seed, plan.warmup_pool)
    return sum(prompts[order.index(i)].turns_to_send for i in range(first, first + plan.num_requests))


async def run_closed_loop(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    on_record: Callable[[RequestRecord], None] | None = None,
    point_label: str = "",
    before_measure: Callable[[], Awaitable[None]] | None = None,
) -> PointRun:
    """Run one sweep point (closed or open loop per ``plan.mode``; in ``plan.workers`` processes).

    Prompts are taken in file order (cycling) unless ``plan.shuffle``, so SD-off and SD-on points send
    the same ids in the same order.  ``run.client`` says whether the client kept up.
    ``before_measure`` runs at a quiet moment between warm-up and measurement (e.g. to snapshot the
    server's SD counters): warm-up is then its own wave that fully drains first.
    """
    emit = on_record or (lambda r: None)
    warmup_records: list[RequestRecord] = []
    plan = with_warmup_pool(plan, len(prompts))  # fixed before the warm-up wave drops warmup_requests
    if before_measure is not None:
        if plan.warmup_requests:

            def emit_warmup(rec: RequestRecord) -> None:
                rec.warmup = True
                emit(rec)

            wave = replace(
                plan,
                warmup_requests=0,
                num_requests=plan.warmup_requests,
                duration_s=None,
                cooldown=False,
                workers=1,
                warmup_wave=True,
            )
            warmup_records = (
                await drive(adapter, base_url, prompts, wave, emit_warmup, f"{point_label}-warmup")
            ).records
        await before_measure()
        plan = replace(plan, warmup_requests=0)
    if plan.workers > 1:
        from speedbench.load.procs import run_in_processes

        run = await run_in_processes(adapter, base_url, prompts, plan, on_record, point_label)
    else:
        run = await drive(adapter, base_url, prompts, plan, emit, point_label)
    run.records[:0] = warmup_records
    run.client = client_stats(
        run.records,
        run.lag_samples,
        plan.concurrency if plan.mode == "closed" else None,
        run.schedule_lags_ns,
        run.kernel_stamps,
    )
    return run
