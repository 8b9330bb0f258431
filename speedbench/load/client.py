"""Streaming load in one process: closed loop at a fixed concurrency (the SPEED-Bench mode) or open loop at a
request rate, over this process's share of a point's requests (``point.run_point`` runs a whole point,
``procs`` spreads one over processes).

One connection pool per process: raw HTTP/1.1 protocols (``http1``, the default hot path) or aiohttp (the
cross-check).  Timing: ``time.perf_counter_ns`` (CLOCK_MONOTONIC, comparable across processes) of the
socket block that brought an event, the kernel's receive time where available (``stamped_socket``);
every event in one block shares the stamp.  A request starts when it left (its last byte handed to the
kernel), after one connection per in-flight slot was opened before the first request; when it was wanted
(its slot freed) is kept apart, so the client's own delay is reported, never counted in TTFT.

Phases: warm-up requests, the measured requests, then cool-down requests that keep the load on until the
last measured request has finished (then they are cancelled), so the measured window sees steady load
with no ramp-up or drain.  Warm-up and cool-down records carry ``warmup=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

from speedbench.core.jsoncodec import dumps, fragment, loads
from speedbench.core.records import CANCELLED, FAILED, OK, RequestRecord
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.data.promptset import turn_ids_digest
from speedbench.engines.base import EngineAdapter
from speedbench.load.aiohttp_client import AiohttpStreamer, aiohttp_streamer
from speedbench.load.http1 import Http1Pool
from speedbench.load.monitor import LoopMonitor
from speedbench.load.plan import LoadPlan, PointRun, prompt_order, set_measured_window
from speedbench.load.schedule import ArrivalSchedule
from speedbench.load.sse import DONE
from speedbench.load.warmup import warmup_prompts

_now = time.perf_counter_ns
_Streamer = Http1Pool | AiohttpStreamer  # this process's one connection pool


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
            if not isinstance(event, dict):  # JSON, but no event (a list, a number): adapters fold dicts only
                raise ValueError("not a JSON object")
        except ValueError:
            rec.status, rec.error_kind = FAILED, "malformed_sse"
            rec.error = payload[:200].decode("utf-8", "replace")
            return True
        if "error" in event and not event.get("choices"):
            rec.status, rec.error_kind, rec.error = FAILED, "server_error_event", str(event["error"])[:300]
            return True
        self.on_event(event, rec, t, self.sent_ids)
        return False


async def stream_one(
    http: _Streamer,
    adapter: EngineAdapter,
    token_ids: Sequence[int],
    rec: RequestRecord,
    plan: LoadPlan,
    t_wanted_ns: int = 0,
    ids_json: bytes | None = None,
) -> RequestRecord:
    """Send one streaming request and fold its events into ``rec`` (stamps, tokens, status); a failure ends
    as the record's status, never as an exception (but a cancel is re-raised, the record marked first).

    ``t_wanted_ns``: when the harness wanted to send it (0: now).  The record's start is when the request
    left (its last byte handed to the kernel), so the client's own delay (waking up, encoding, any connect)
    is kept out of TTFT and latency and recorded apart: ``t_start_ns - t_wanted_ns``, ``connect_ns``."""
    rec.t_wanted_ns = t_wanted_ns or _now()
    ids = list(token_ids)
    path, body = adapter.build_request(ids, plan.max_tokens, plan.fixed_length)
    sent_ids: list[int] = body.get("prompt") or body.get("input_ids") or ids
    if ids_json is not None and fragment is not None:
        # the ids' JSON was encoded before the window (TokenizedPrompt.ids_json): embedded as it is
        for key, value in body.items():
            if value is ids:
                body[key] = fragment(ids_json)
                break
    data = dumps(body)
    fold = _Fold(adapter, rec, sent_ids)
    rec.t_start_ns = _now()  # until the client says when the request left (kept if it never does)
    try:
        out = await http.stream(path, data, fold)
    except asyncio.CancelledError:
        rec.status, rec.error_kind, rec.t_end_ns = CANCELLED, "cancelled", _now()
        raise
    # the end is the read that brought [DONE] (or the failure), not when this task got round to waking up
    rec.t_end_ns = out.t_end_ns or _now()
    if out.t_sent_ns:
        rec.t_start_ns = out.t_sent_ns
    rec.connect_ns = out.connect_ns
    rec.server_wait_ns = out.server_wait_ns
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
            self.close()
        return "cooldown" if p.cooldown else None

    def close(self) -> None:
        """No more measured requests start here."""
        self.closed = True
        self._check()

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
def _gc_paused(enabled: bool) -> Iterator[None]:
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
async def _streamer(base_url: str, plan: LoadPlan) -> AsyncIterator[_Streamer]:
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


class _PointDriver:
    """One process's share of one point: the drivers that start its requests (closed-loop streams or an
    open-loop dispatcher) and the state they share (phases, prompt order, records, requests in flight)."""

    def __init__(
        self,
        adapter: EngineAdapter,
        prompts: Sequence[TokenizedPrompt],
        plan: LoadPlan,
        emit: Callable[[RequestRecord], None],
        point_label: str,
        part: tuple[int, int],
    ) -> None:
        self.adapter, self.prompts, self.emit, self.label, self.part = adapter, prompts, emit, point_label, part
        self.plan = plan
        self.order = prompt_order(plan, prompts)
        # warm-up requests send prompts built for them, never one of the measured set (load.warmup)
        warm = plan.num_requests if plan.warmup_wave else plan.warmup_requests
        self.warm = warmup_prompts(prompts, self.order, warm, plan.seed) if warm else []
        for p in prompts:  # before the window: the first turn's ids are never encoded while measuring
            p.ids_json()
        self.phases = _Phases(plan)
        self.indices = itertools.count(*part)  # this share's request indices: w, w + n, w + 2n, ...
        self.run = PointRun()
        self.drivers: list[asyncio.Task[Any]] = []
        self.tasks: set[asyncio.Task[int]] = set()  # open loop: conversations in flight

    def slots(self) -> int:
        """This share of the concurrency: its closed-loop streams (open loop: the connections to hold open)."""
        (w, n), c = self.part, self.plan.concurrency
        return c // n + (1 if w < c % n else 0)

    def start_drivers(self, http: _Streamer) -> None:
        """Closed loop: this share of the concurrency's streams; open loop: one dispatcher on the schedule."""
        plan = self.plan
        if plan.mode != "closed":
            self.drivers = [asyncio.create_task(self._open_dispatcher(http))]
            return
        share = self.slots()
        self.drivers = [asyncio.create_task(self._closed_worker(http)) for _ in range(share)]
        if share == 0:  # more processes than streams: this one has nothing to measure
            self.phases.close()

    async def until_measured_done(self) -> None:
        """Wait until this share's measured requests have all ended (cool-down requests go on meanwhile)."""
        done_wait = asyncio.create_task(self.phases.done.wait())
        self.drivers.append(done_wait)
        pending: set[asyncio.Task[Any]] = set(self.drivers)
        while not done_wait.done():
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for d in finished:  # a driver that raised (requests never do: they end as records) is a bug
                exc = d.exception()
                if exc is not None:
                    raise exc

    async def stop(self) -> None:
        """Start no more requests, and cancel those in flight (cool-down, or everything after an error)."""
        self.phases.halt()
        in_flight = [*self.drivers, *self.tasks]
        for t in in_flight:
            t.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)

    async def _closed_worker(self, http: _Streamer) -> None:
        t_free = 0  # when this slot's previous request ended: its next one is wanted from then
        while True:
            i = next(self.indices)
            phase = self.phases.of(i)
            if phase is None:
                return
            t_free = await self._conversation(http, i, phase, t_free)

    async def _open_dispatcher(self, http: _Streamer) -> None:
        plan = self.plan
        sched = ArrivalSchedule(plan.request_rate or 1.0, plan.arrival, plan.seed)
        t0 = _now()
        while True:
            i = next(self.indices)
            due = t0 + int(sched.offset(i) * 1e9)
            delay = due - _now()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            phase = self.phases.of(i)
            if phase is None:
                return
            if phase == "measure":
                self.run.schedule_lags_ns.append(max(0, _now() - due))
            t = asyncio.get_running_loop().create_task(self._conversation(http, i, phase, due))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    def _prompt(self, i: int, phase: str) -> TokenizedPrompt:
        if self.plan.warmup_wave or phase == "warmup":
            return self.warm[i % len(self.warm)]
        # measured (and cool-down) requests count from the end of the warm-up
        return self.prompts[self.order.index(i - self.plan.warmup_requests)]

    async def _conversation(self, http: _Streamer, i: int, phase: str, t_wanted: int) -> int:
        """One conversation: its turns in order, each sent once the previous reply has fully arrived (and
        wanted from then); the first is wanted from ``t_wanted`` (0: now).  Returns when its last turn ended."""
        p = self._prompt(i, phase)
        conv = f"{self.label}#{i}"
        next_turn = self.plan.next_turn
        last = p.turns_to_send if next_turn is not None else 1
        ids: Sequence[int] = p.token_ids
        turn = 1
        if phase == "measure":
            self.phases.measured_in_flight += 1
        try:
            while True:
                rec = self._record(p, conv, turn, ids, phase)
                if not await self._send(http, ids, rec, t_wanted, p.ids_json() if turn == 1 else None):
                    return rec.t_end_ns  # a failed turn ends its conversation: no reply to build on
                if turn == last or next_turn is None or self.phases.halted:
                    return rec.t_end_ns
                turn, t_wanted = turn + 1, rec.t_end_ns
                ids = next_turn(p.turn_tails[turn - 2], ids, rec.output_ids, rec.text)
        finally:
            self.phases.finished(phase)

    def _record(self, p: TokenizedPrompt, conv: str, turn: int, ids: Sequence[int], phase: str) -> RequestRecord:
        return RequestRecord(
            conv if turn == 1 else f"{conv}.{turn}",
            p.id,
            p.category,
            len(ids),
            self.plan.max_tokens,
            warmup=phase != "measure",
            conversation_id=conv,
            turn=turn,
            prompt_sha256=turn_ids_digest(ids) if turn > 1 else None,
        )

    async def _send(
        self, http: _Streamer, ids: Sequence[int], rec: RequestRecord, t_wanted: int, ids_json: bytes | None
    ) -> bool:
        """Send one turn and hand its record on, whatever happens; False when it did not end ok."""
        try:
            await stream_one(http, self.adapter, ids, rec, self.plan, t_wanted, ids_json)
        finally:
            self.run.records.append(rec)
            self.emit(rec)
        if rec.status != OK:
            # a refused loopback connect fails without ever suspending: yield, so that a guard watching
            # these records (server gone) gets to stop the point before the worker burns every request.
            await asyncio.sleep(0)
            return False
        return True


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
    driver = _PointDriver(adapter, prompts, plan, emit, point_label, part)
    monitor = LoopMonitor(plan.monitor_interval_s)
    async with _streamer(base_url, plan) as http:
        # one open connection per in-flight slot before any request starts: no measured request connects
        await http.open_idle(driver.slots())
        monitor.start()
        driver.start_drivers(http)
        try:
            await driver.until_measured_done()
            if release is not None:
                await release()
        finally:
            await driver.stop()
            await monitor.stop()
    run = driver.run
    set_measured_window(run)
    run.lag_samples = monitor.samples
    run.cpu_wait_samples = monitor.cpu_wait
    run.kernel_stamps = bool(getattr(http, "kernel_timestamps", False))
    return run
