"""Spread one point over N client processes when one event loop cannot keep up.

Each process runs ``client.drive`` on its own uvloop and connection pool for request indices
``i % N == w`` (closed loop: its share of the concurrency; open loop: its share of the same seeded
schedule).  perf_counter_ns is CLOCK_MONOTONIC system-wide on Linux, so stamps from all processes are on
one clock and records merge as they are.  Records stream back to the parent in small batches (so the
runner still writes them incrementally); cool-down goes on in every process until all have finished
their measured requests.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing as mp
import os
import queue as queue_mod
import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict

from speedbench.core.records import RequestRecord
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.engines.base import EngineAdapter
from speedbench.load.client import drive
from speedbench.load.eventloop import run_async
from speedbench.load.plan import LoadPlan, PointRun, set_measured_window

_BATCH = 32


def _die_with_parent(parent_pid: int) -> None:
    """Linux: this worker is SIGKILLed when the harness dies, however it dies (kill -9 included); a worker
    left behind would go on loading the server and hold the resource tracker alive, reparented to PID 1."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:  # not Linux: the parent's abort event and join/terminate still apply on a clean exit
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _worker(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    label: str,
    w: int,
    n: int,
    q,
    go,
    stop,
    abort,
    parent_pid: int,
) -> None:
    _die_with_parent(parent_pid)
    batch: list[dict] = []

    def emit(rec: RequestRecord) -> None:
        batch.append(asdict(rec))
        if len(batch) >= _BATCH:
            q.put(("records", list(batch)))
            batch.clear()

    async def release() -> None:
        q.put(("records", list(batch)))
        batch.clear()
        q.put(("measured_done", w))
        while not stop.is_set():  # cheap poll; cool-down keeps this share's load on meanwhile
            await asyncio.sleep(0.005)

    async def main():
        go.wait()
        load = asyncio.ensure_future(drive(adapter, base_url, prompts, plan, emit, label, (w, n), release))
        while not load.done():  # the parent gave up (server gone, Ctrl-C): stop this share's load now
            if abort.is_set():
                load.cancel()
                break
            await asyncio.wait({load}, timeout=0.01)
        return await load

    try:
        run = run_async(main())
        q.put(("records", batch))
        q.put(("done", w, run.lag_samples, run.schedule_lags_ns, run.kernel_stamps))
    except BaseException as e:  # report, never hang the parent
        if abort.is_set():  # nobody reads the queue any more: exit without waiting to flush it
            q.cancel_join_thread()
            return
        q.put(("error", w, f"{type(e).__name__}: {e}"))
        raise


async def run_in_processes(
    adapter: EngineAdapter,
    base_url: str,
    prompts: Sequence[TokenizedPrompt],
    plan: LoadPlan,
    on_record: Callable[[RequestRecord], None] | None,
    label: str,
) -> PointRun:
    """Run one point's load in ``plan.workers`` processes (closed loop: at most one per stream); records reach
    ``on_record`` as they stream back.  Any failure or cancel here stops the load in every process."""
    n = min(plan.workers, plan.concurrency) if plan.mode == "closed" else plan.workers
    ctx = mp.get_context("spawn")  # never fork a process that has a running event loop
    q, go, stop, abort = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(
            target=_worker,
            args=(adapter, base_url, list(prompts), plan, label, w, n, q, go, stop, abort, os.getpid()),
            daemon=True,
        )
        for w in range(n)
    ]
    for p in procs:
        p.start()
    go.set()
    run = PointRun()
    loop = asyncio.get_running_loop()
    measured_done: set[int] = set()
    finished: set[int] = set()
    kernel_stamps: list[bool] = []  # per worker: were its chunk stamps the kernel's?

    def get():
        try:
            return q.get(timeout=0.5)
        except queue_mod.Empty:
            return None

    completed = False
    try:
        while len(finished) < n:
            msg = await loop.run_in_executor(None, get)
            if msg is None:
                dead = [w for w, p in enumerate(procs) if not p.is_alive() and w not in finished]
                if dead and q.empty():
                    raise RuntimeError(f"load worker process(es) {dead} died")
                continue
            kind = msg[0]
            if kind == "records":
                for d in msg[1]:
                    rec = RequestRecord.from_dict(d)
                    run.records.append(rec)
                    if on_record is not None:
                        on_record(rec)
            elif kind == "measured_done":
                measured_done.add(msg[1])
                if len(measured_done) == n:
                    stop.set()
            elif kind == "done":
                finished.add(msg[1])
                run.lag_samples.extend(msg[2])
                run.schedule_lags_ns.extend(msg[3])
                kernel_stamps.append(msg[4])
            elif kind == "error":
                raise RuntimeError(f"load worker {msg[1]} failed: {msg[2]}")
        completed = True
    finally:
        if not completed:  # cancelled by the guard or Ctrl-C, or a worker failed: no more requests anywhere
            abort.set()
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    set_measured_window(run)
    run.kernel_stamps = bool(kernel_stamps) and all(kernel_stamps)
    return run
