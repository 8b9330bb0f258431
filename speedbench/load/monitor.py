"""The client watching itself: event-loop lag and in-flight requests over the measured window.

A point whose client fell behind reports the client, not the server, so it is flagged:
lag P99 > 1 ms, or (closed loop) mean in-flight < 99 % of the target concurrency while a measured request
was waiting to be sent, or (open loop) requests dispatched > 1 ms after their due time at P99.
In-flight (conversations, a multi-turn one holding its slot over all its turns) is judged from the moment
the target was first reached (the target-th measured conversation start) to the last one: the ramp-up
before it and the drain after it (the last requests finishing with nothing left to send) are the shape of
a finite closed loop, not client lag. A point where no measured request ended ok
(the server rejected them all) is never flagged: its requests took no time, so nothing was measured that
client delay could distort.

Lag sample (why this definition): every ``interval`` the ticker wakes at W, then yields to the loop twice
and stamps W2.  W2 - W is the rest of the loop iteration it woke in plus one whole further iteration:
the longest a socket event arriving at W waits before its callback runs, i.e. the error of a timestamp
taken at read time.  It does not include the timer's own 1 ms granularity (libuv/epoll round to ms),
which would otherwise flag an idle loop.  Timer lateness beyond that granularity (a stall while the ticker
slept) is added, so long blocking calls are caught too.

With kernel receive timestamps (speedbench.load.stamped_socket) lag no longer lands in the stamps: a chunk
is stamped when it reached the socket however late it is read.  Lag then distorts timing only once it
is long enough for a stream's next chunk to arrive before the previous one was read (both would share
one stamp), so the lag limit becomes half the median inter-chunk gap of the point, and never below 1 ms.
Synchronized streams (512 first tokens at once) make lag bursts of a few ms that do not matter then.

CPU wait: each tick also reads how long this thread has waited runnable for a CPU (``/proc/thread-self/
schedstat``, Linux), so a flagged point says when the client fell behind because other processes held its
core (a shared or overloaded machine: the client was ready, the CPU was not), rather than from its own
work. The flag stays (the requests really waited); only its reason names the cause. One client process
only: with several, each has its own thread (not measured).

Send delay: a request's start is stamped when it left (its last byte went to the kernel), so TTFT holds
none of the client's own queueing; what the client kept the server waiting is recorded apart, from when
the request was wanted (its slot freed, its turn due) to when it left.  A slot left empty longer than 1 %
of a request's life at P99 (never under 1 ms) is flagged, the same tolerance as the in-flight rule: when a
wave of equal-length streams ends together, the client re-sends them one after another, and on a slow
core the last ones leave tens of ms late.  A tail is more than one request: the P99 of fewer than 100
requests is their maximum, and one scheduler hiccup (a CPU engine sharing the client's cores) would flag a
small point while the server lost almost nothing, so the rule also needs more than max(1, 1 %) of the
requests over the limit.  What the delays cost the server is judged at any size:
in a closed loop, the slot time the client kept empty (Σ send delays / (target × measured window)) over 1 %
is flagged; it counts the delays before later turns, which the conversation-level in-flight figure cannot
see.  A measured request that had to open a connection is counted
(``measured_connects``): connections are opened before the window, one per slot, so one is a sign of a
server that closed them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speedbench.core.records import OK, RequestRecord

LAG_LIMIT_MS = 1.0
CPU_WAIT_NOTED = 0.05  # a flagged point names waiting for a CPU as a cause from this share of its window
_SCHEDSTAT = Path("/proc/thread-self/schedstat")
IN_FLIGHT_MIN_FRACTION = 0.99
SEND_DELAY_MAX_FRACTION = 1 - IN_FLIGHT_MIN_FRACTION  # of the median request latency
LOST_SLOT_MAX_FRACTION = 1 - IN_FLIGHT_MIN_FRACTION  # of the target's slot time over the measured window
_TIMER_GRANULARITY_NS = 1_000_000


class LoopMonitor:
    """Samples this event loop's lag every ``interval_s`` seconds while it runs (see the module's docstring
    for what one sample measures); ``samples`` are (stamp ns, lag ns)."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[int, int]] = []  # (t_ns, lag_ns)
        self.cpu_wait: list[tuple[int, int]] = []  # (t_ns, this thread's total run-queue wait ns so far)
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        now = time.perf_counter_ns
        step = int(self.interval_s * 1e9)
        while True:
            due = now() + step
            await asyncio.sleep(self.interval_s)
            w = now()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            late = max(0, w - due - _TIMER_GRANULARITY_NS)
            self.samples.append((w, now() - w + late))
            waited = cpu_wait_ns()
            if waited is not None:
                self.cpu_wait.append((w, waited))

    def start(self) -> LoopMonitor:
        """Start sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def stop(self) -> None:
        """Stop sampling (the samples stay)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def cpu_wait_ns() -> int | None:
    """Nanoseconds this thread has spent runnable but not running, since it started (None off Linux)."""
    try:
        return int(_SCHEDSTAT.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def cpu_wait_share(samples: Sequence[tuple[int, int]], t0: int, t1: int) -> float | None:
    """Share of [t0, t1] the client's thread waited for a CPU, from (t_ns, cumulative wait ns) samples."""
    inside = [s for s in samples if t0 <= s[0] <= t1]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


@dataclass
class ClientStats:
    """How well the client kept up during the measured window (stored with the point)."""

    client_lag_p99_ms: float | None
    client_lag_max_ms: float | None
    mean_in_flight: float | None
    target_in_flight: int | None  # the concurrency (closed loop); None for open loop
    schedule_lag_p99_ms: float | None  # open loop: dispatch time - due time
    client_saturated: bool
    window_s: float
    timestamps: str = "read"  # "kernel": chunk stamps are kernel receive times
    lag_limit_ms: float = LAG_LIMIT_MS  # the lag P99 above which the point is flagged
    reason: str | None = None  # why the point is flagged, in words (None when it is not)
    # measured requests: wanted -> left (the client's own delay; none of it is in TTFT), ms
    send_delay_p50_ms: float | None = None
    send_delay_p99_ms: float | None = None
    send_delay_max_ms: float | None = None
    send_delay_limit_ms: float | None = None  # the P99 above which the point is flagged
    measured_connects: int = 0  # measured requests that opened a connection (timed in connect_ns)
    # closed loop: Σ send delays / (target × measured window), the share of slot time the client kept empty
    send_delay_lost_fraction: float | None = None
    cpu_wait_share: float | None = None  # of the window, the client's thread runnable but not running


def measured_window(records: Sequence[RequestRecord]) -> tuple[int, int]:
    """First measured send .. last measured activity (a timed-out stream ends at its last chunk)."""
    measured = [r for r in records if not r.warmup]
    if not measured:
        return 0, 0
    return min(r.t_start_ns for r in measured), max(r.t_active_end_ns for r in measured)


def sending_window(records: Sequence[RequestRecord], target: int) -> tuple[int, int] | None:
    """Closed loop: from the target-th measured conversation start (target first reached) to the last
    one, the span in which a measured conversation was always waiting to be sent; None when it is empty.
    A multi-turn conversation's later turns are not waiting work: they follow its own replies, so the
    last conversation's second turn, sent while the other slots have nothing left, is drain."""
    starts = sorted(r.t_start_ns for r in records if not r.warmup and r.turn == 1)
    if len(starts) <= target or starts[-1] <= starts[target - 1]:
        return None
    return starts[target - 1], starts[-1]


def mean_in_flight(records: Iterable[RequestRecord], t0: int, t1: int) -> float:
    """Time-averaged number of conversations (any phase) in flight over [t0, t1]: a conversation holds its
    slot from its first turn's write to its last turn's last byte (a single-turn request is one)."""
    if t1 <= t0:
        return 0.0
    spans: dict[str, list[int]] = {}
    for r in records:
        key = r.conversation_id or r.request_id
        end = r.t_end_ns or t1
        # a request that waited on the server (its previous reply's end, its reading of the request) held
        # the slot while it waited: that gap is the server's, not the client's
        start = r.t_start_ns - r.server_wait_ns
        span = spans.setdefault(key, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    busy = 0
    for start, end in spans.values():
        a, b = max(start, t0), min(end, t1)
        if b > a:
            busy += b - a
    return busy / (t1 - t0)


def median_chunk_gap_ms(records: Iterable[RequestRecord]) -> float | None:
    """Median gap in ms between consecutive chunks of one measured stream; None without two chunks anywhere."""
    gaps = [np.diff(r.chunk_times_ns) for r in records if not r.warmup and len(r.chunk_times_ns) > 1]
    return float(np.median(np.concatenate(gaps))) / 1e6 if gaps else None


def send_delays_ms(records: Iterable[RequestRecord]) -> np.ndarray:
    """Per measured request, the client's own delay in ms: from when it was wanted to when it left, less what it
    waited on the server (``server_wait_ns``: the previous reply's end on its connection, the server reading a
    large request), which is the server's doing however much it lowers the load (records that say both)."""
    delays = [r.t_start_ns - r.t_wanted_ns - r.server_wait_ns for r in records if not r.warmup and r.t_wanted_ns]
    return np.asarray(delays, dtype=float).clip(min=0) / 1e6


def send_delay_limit_ms(records: Iterable[RequestRecord]) -> float:
    """1 % of the median measured ok request's latency (start to end), never under LAG_LIMIT_MS."""
    lat = [r.t_end_ns - r.t_start_ns for r in records if not r.warmup and r.status == OK]
    return max(LAG_LIMIT_MS, SEND_DELAY_MAX_FRACTION * float(np.median(lat)) / 1e6) if lat else LAG_LIMIT_MS


def client_stats(
    records: Sequence[RequestRecord],
    lag_samples: Sequence[tuple[int, int]],
    target: int | None,
    schedule_lags_ns: Sequence[int] = (),
    kernel_stamps: bool = False,
    cpu_wait_samples: Sequence[tuple[int, int]] = (),
) -> ClientStats:
    """Judge whether the client kept up over the measured window of ``records``: loop lag, in-flight against
    the closed loop's ``target`` concurrency (None: open loop), and open-loop dispatch lag, with the reason
    in words when the point is flagged CLIENT-BOUND."""
    t0, t1 = measured_window(records)
    lag_limit = LAG_LIMIT_MS
    if kernel_stamps:
        gap = median_chunk_gap_ms(records)
        lag_limit = max(LAG_LIMIT_MS, gap / 2) if gap is not None else LAG_LIMIT_MS
    lags = np.asarray([lag for t, lag in lag_samples if t0 <= t <= t1], dtype=float) / 1e6
    lag_p99 = float(np.percentile(lags, 99)) if lags.size else None
    if target:
        sending = sending_window(records, target)
        inflight = mean_in_flight(records, *sending) if sending else None
    else:  # open loop: no target to fall short of; the whole window, for information
        inflight = mean_in_flight(records, t0, t1) if t1 > t0 else None
    sched = np.asarray(schedule_lags_ns, dtype=float) / 1e6
    sched_p99 = float(np.percentile(sched, 99)) if sched.size else None
    delays, delay_limit = send_delays_ms(records), send_delay_limit_ms(records)
    delay_p50, delay_p99 = (float(x) for x in np.percentile(delays, [50, 99])) if delays.size else (None, None)
    reasons = []
    if lag_p99 is not None and lag_p99 > lag_limit:
        cost = "chunks that arrived within one lag may share a stamp" if kernel_stamps else "token times carry it"
        reasons.append(f"loop lag P99 {lag_p99:.2f} ms > {lag_limit:.2f} ms: {cost}")
    if target and inflight is not None and inflight < IN_FLIGHT_MIN_FRACTION * target:
        reasons.append(
            f"mean in-flight {inflight:.2f} of {target} while requests waited to be sent: the server carried "
            "less than the named load"
        )
    if sched_p99 is not None and sched_p99 > LAG_LIMIT_MS:
        reasons.append(f"dispatch lag P99 {sched_p99:.2f} ms > {LAG_LIMIT_MS:.0f} ms")
    over = int((delays > delay_limit).sum())
    if delay_p99 is not None and delay_p99 > delay_limit and over > max(1, 0.01 * delays.size):
        reasons.append(
            f"send delay P99 {delay_p99:.2f} ms > {delay_limit:.2f} ms: requests waited in the client, so the "
            "server carried less than the named load"
        )
    lost = float(delays.sum()) / 1e3 / (target * (t1 - t0) / 1e9) if target and t1 > t0 else None
    if lost is not None and lost > LOST_SLOT_MAX_FRACTION:
        reasons.append(
            f"the client kept {100 * lost:.1f} % of the slot time empty (> {100 * LOST_SLOT_MAX_FRACTION:.0f} %) "
            "before sending: the server carried less than the named load"
        )
    if not any(r.status == OK for r in records if not r.warmup):
        reasons = []  # every measured request failed: no latency was measured that client delay could skew
    waited = cpu_wait_share(cpu_wait_samples, t0, t1)
    if reasons and waited is not None and waited >= CPU_WAIT_NOTED:
        reasons.append(
            f"the client waited {waited:.0%} of the window for a CPU held by other processes (a shared or "
            "overloaded machine, not the client's own work)"
        )
    return ClientStats(
        lag_p99,
        float(lags.max()) if lags.size else None,
        inflight,
        target,
        sched_p99,
        bool(reasons),
        (t1 - t0) / 1e9,
        "kernel" if kernel_stamps else "read",
        lag_limit,
        "; ".join(reasons) or None,
        delay_p50,
        delay_p99,
        float(delays.max()) if delays.size else None,
        delay_limit,
        sum(1 for r in records if not r.warmup and r.connect_ns),
        lost,
        waited,
    )
