"""What one sweep point sends (``LoadPlan``) and what it brought back (``PointRun``).

Shared by the driver of one process (``client``), the spread over processes (``procs``) and the point
as a whole (``point``), so that none of them imports another to learn the shape of a plan or a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from speedbench.core.records import RequestRecord
from speedbench.data.pretokenize import TokenizedPrompt
from speedbench.load.monitor import ClientStats
from speedbench.load.schedule import Arrival, OrderRule, PromptOrder
from speedbench.load.schedule import in_flight_target as _in_flight


@dataclass
class LoadPlan:
    """The load of one sweep point: how many streaming requests, how they are paced, and how they are sent.

    Closed loop (``mode="closed"``): ``concurrency`` requests in flight, each stream sending its next request
    when the previous one ends.  Open loop (``mode="rate"``): requests start at ``request_rate`` per second
    on a seeded ``arrival`` schedule whatever is in flight.  First ``warmup_requests`` warm-up requests, then
    ``num_requests`` measured ones (or as many as start within ``duration_s`` seconds), then, with
    ``cooldown``, more requests that keep the load on until the last measured one has ended.  Counts are
    requests (conversations when ``next_turn`` is set), token counts are tokens, times are seconds.
    """

    concurrency: int  # closed loop: requests in flight; both: connections opened before the first request
    num_requests: int  # measured requests (conversations); ignored when duration_s is set
    warmup_requests: int  # requests before the measured ones, never measured: synthetic prompts (load.warmup)
    max_tokens: int  # the output cap in tokens; requests stop at EOS unless fixed_length
    fixed_length: bool = False  # ignore EOS: exactly max_tokens per request
    request_timeout_s: float = 600.0  # seconds one request may take in all
    stream_idle_timeout_s: float = 60.0  # seconds a stream may go without a byte
    mode: Literal["closed", "rate"] = "closed"
    request_rate: float | None = None  # open loop: requests/s
    arrival: Arrival = "poisson"
    duration_s: float | None = None  # measure by time (seconds) instead of by count
    cooldown: bool = False  # keep load on until the last measured request ends
    # measured order (schedule.measured_order); the sweep passes load.prompt_order ("stratified" by default),
    # file order here keeps a plan built by hand (tests, scripts) sending prompts as listed
    order: OrderRule = "file"
    warmup_wave: bool = False  # every request of this drive is a warm-up request
    seed: int = 0  # seeds the prompt order, the warm-up prompts and the open-loop arrival times
    workers: int = 1  # client processes (each its own loop and pool)
    monitor_interval_s: float = 0.005  # seconds between event-loop lag samples
    http_client: Literal["http1", "aiohttp"] = "http1"  # raw-protocol hot path, or aiohttp to cross-check
    kernel_timestamps: bool = True  # http1 on Linux: stamp chunks with SO_TIMESTAMPNS
    pause_gc: bool = True  # no cyclic GC passes while the point runs (see client._gc_paused)
    headers: dict[str, str] = field(default_factory=dict)  # extra request headers (e.g. Authorization)
    # multi-turn: builds a later turn's ids from (tail, sent ids, reply ids, reply text); None = first turns only.
    # A conversation is one request index: its turns go in order on one closed-loop slot (or arrival).
    next_turn: Callable[[Sequence[int], Sequence[int], Sequence[int], str], list[int]] | None = None

    @property
    def in_flight_target(self) -> int | None:
        """Closed loop: conversations in flight at once (the concurrency, or every measured one when fewer)."""
        return _in_flight(
            self.concurrency,
            self.num_requests,
            closed_loop=self.mode == "closed",
            by_duration=self.duration_s is not None,
        )


@dataclass
class PointRun:
    """The records of one point (warm-up and cool-down ones flagged ``warmup``) and how the client fared.

    Stamps are ``time.perf_counter_ns`` (CLOCK_MONOTONIC, one clock for every client process)."""

    records: list[RequestRecord] = field(default_factory=list)
    t_measure_start_ns: int = 0
    t_measure_end_ns: int = 0
    prompt_order: list[str] = field(default_factory=list)  # prompt ids of measured requests, by index
    client: ClientStats | None = None
    lag_samples: list[tuple[int, int]] = field(default_factory=list)  # (stamp ns, event-loop lag ns)
    # (stamp ns, the loop thread's total run-queue wait ns): one client process only (monitor.cpu_wait_share)
    cpu_wait_samples: list[tuple[int, int]] = field(default_factory=list)
    schedule_lags_ns: list[int] = field(default_factory=list)  # open loop: how late each measured start was
    kernel_stamps: bool = False  # chunk stamps are the kernel's receive times (not read times)


def prompt_order(plan: LoadPlan, prompts: Sequence[TokenizedPrompt]) -> PromptOrder:
    """Which prompt each measured request of the plan sends: the one order the drivers and
    ``planned_requests`` both use."""
    return PromptOrder([p.category for p in prompts], plan.order, plan.seed)


def planned_requests(prompts: Sequence[TokenizedPrompt], plan: LoadPlan, first: int = 0) -> int:
    """Requests ``plan.num_requests`` conversations send from request index ``first``: one per turn."""
    if plan.next_turn is None or not any(p.turn_tails for p in prompts):
        return plan.num_requests
    order = prompt_order(plan, prompts)
    return sum(prompts[order.index(i)].turns_to_send for i in range(first, first + plan.num_requests))


def set_measured_window(run: PointRun) -> None:
    """Measured window = first measured start .. last measured end; prompt order as sent (by request index,
    one entry per conversation)."""
    measured = [r for r in run.records if not r.warmup]
    if measured:
        run.t_measure_start_ns = min(r.t_start_ns for r in measured)
        run.t_measure_end_ns = max(r.t_end_ns for r in measured)
    idx = sorted((int(r.request_id.rsplit("#", 1)[1]), r.prompt_id) for r in measured if r.turn == 1)
    run.prompt_order = [pid for _, pid in idx]
