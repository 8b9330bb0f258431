"""Issue 15 item 6: CLIENT-BOUND is true when it fires and silent on a healthy point."""

import pytest

from speedbench.core.records import FAILED, RequestRecord
from speedbench.load.monitor import client_stats
from speedbench.load.plan import LoadPlan
from speedbench.load.stub_server import StubConfig
from tests.load.conftest import make_prompts, run_against_stub

MS = 1_000_000


def _record(i, start, dur_ms, **kw):
    """Request i of a point: sent at ``start`` (ns), dur_ms long, two one-token chunks 1 and 2 ms in."""
    return RequestRecord(
        f"pt#{i}",
        f"p{i}",
        "QA",
        10,
        8,
        t_start_ns=start,
        t_first_ns=start + MS,
        t_end_ns=start + dur_ms * MS,
        chunk_times_ns=[start + MS, start + 2 * MS],
        chunk_tokens=[1, 2],
        **kw,
    )


def _closed_loop_records(n=11, c=4, dur_ms=100, **kw):
    """n requests at concurrency c, each dur_ms long, every worker sending its next one at once."""
    return [_record(i, (i // c) * dur_ms * MS, dur_ms, **kw) for i in range(n)]


def test_the_final_drain_is_not_client_lag():
    """11 requests at concurrency 4: the last 3 finish with nothing left to send. In-flight while a
    request waited to be sent is exactly 4; the drain used to pull the mean to 3.67 and flag the point."""
    s = client_stats(_closed_loop_records(), [], 4)
    assert s.mean_in_flight == 4.0 and not s.client_saturated and s.reason is None


def test_a_conversations_later_turn_after_the_others_ended_is_drain_not_client_lag():
    """10 two-turn conversations at concurrency 4, each turn 100 ms, the next turn 50 us after the reply (the
    harness builds it): the last conversations' second turns run with nothing left to start. Judged per
    request up to the last send, this read 3.0 of 4 and flagged a healthy real vLLM point."""
    out = []
    for i in range(10):
        t = (i // 4) * 200 * MS
        for turn in (1, 2):
            start = t + (turn - 1) * (100 * MS + 50_000)
            out.append(
                RequestRecord(
                    f"pt#{i}" + ("" if turn == 1 else ".2"),
                    f"p{i}",
                    "QA",
                    10,
                    8,
                    t_start_ns=start,
                    t_first_ns=start + MS,
                    t_end_ns=start + 100 * MS,
                    chunk_times_ns=[start + MS, start + 2 * MS],
                    chunk_tokens=[1, 2],
                    conversation_id=f"pt#{i}",
                    turn=turn,
                )
            )
    s = client_stats(out, [], 4)
    assert s.mean_in_flight >= 0.99 * 4 and not s.client_saturated, s


def test_a_real_quiet_point_is_not_flagged(adapter):
    plan = LoadPlan(concurrency=4, num_requests=11, warmup_requests=0, max_tokens=8)
    run, _ = run_against_stub(adapter, plan, StubConfig(ttft_s=0.02, itl_s=0.02), prompts=make_prompts())
    assert all(r.status == "ok" for r in run.records)
    assert run.client.mean_in_flight >= 0.99 * 4
    assert not run.client.client_saturated, run.client.reason


def test_a_client_that_cannot_keep_the_target_is_still_flagged():
    recs = _closed_loop_records()
    for r in recs[4:8]:  # the second wave went out 50 ms late: the client was busy elsewhere
        r.t_start_ns += 50 * MS
    s = client_stats(recs, [], 4)
    assert s.client_saturated and "mean in-flight" in s.reason and "of 4" in s.reason


def test_a_point_the_server_rejected_entirely_is_not_client_bound():
    recs = _closed_loop_records(dur_ms=1, status=FAILED, error_kind="http_500")
    lags = [(r.t_start_ns, 5 * MS) for r in recs]  # the loop was busy turning requests around
    s = client_stats(recs, lags, 4)
    assert not s.client_saturated and s.reason is None


def test_rate_mode_reason_names_the_dispatch_lag_not_a_missing_target():
    s = client_stats(_closed_loop_records(), [], None, schedule_lags_ns=[5 * MS] * 10)
    assert s.client_saturated and s.reason == "dispatch lag P99 5.00 ms > 1 ms"
    assert "None" not in s.reason


def _c1_records(n, dur_ms, delays_ms):
    """n back-to-back requests at concurrency 1, each dur_ms long, request i left delays_ms[i] after it was
    wanted (the previous one's end)."""
    out, t = [], 1_000 * MS  # 0 would read as "wanted time not recorded"
    for i in range(n):
        out.append(_record(i, t + int(delays_ms[i] * MS), dur_ms, t_wanted_ns=t))
        t = out[-1].t_end_ns
    return out


def test_one_scheduler_hiccup_in_a_small_point_is_not_a_client_that_fell_behind():
    """The CI failure of 2026-12-08: a CPU engine shares the client's two cores; one request of 19 left 100 ms
    late in a 19 s window (0.5 % of the slot time). Its 'P99' is that one request; the server lost ~nothing."""
    delays = [0.5] * 19
    delays[7] = 100
    s = client_stats(_c1_records(19, 1000, delays), [], 1)
    assert not s.client_saturated, s.reason
    assert s.send_delay_p99_ms > s.send_delay_limit_ms  # the old rule fired on this
    window_ms = sum(delays[1:]) + 19 * 1000  # from the first send to the last end
    assert s.send_delay_lost_fraction == pytest.approx(sum(delays) / window_ms, rel=1e-6)


def test_a_client_that_kept_the_server_waiting_is_flagged_whatever_the_point_size():
    delays = [30.0] * 19  # 3 % of every request's life spent in the client
    s = client_stats(_c1_records(19, 1000, delays), [], 1)
    lost = 19 * 30 / (18 * 30 + 19 * 1000)
    assert s.send_delay_lost_fraction == pytest.approx(lost, rel=1e-6)
    assert s.client_saturated and f"kept {100 * lost:.1f} % of the slot time empty" in s.reason


def test_a_send_delay_tail_is_flagged_even_when_the_slot_time_lost_is_small():
    delays = [0.5] * 200
    for i in range(0, 200, 50):  # 2 % of the requests waited 60 ms: a tail, though 0.6 % of the slot time
        delays[i] = 60
    s = client_stats(_c1_records(200, 1000, delays), [], 1)
    assert s.client_saturated and s.reason.startswith("send delay P99") and "slot time" not in s.reason
    delays[50] = delays[100] = delays[150] = 0.5  # one request of 200 is a hiccup, not a tail
    assert not client_stats(_c1_records(200, 1000, delays), [], 1).client_saturated


def test_a_client_kept_off_its_cpu_says_so():
    """Issue 29: c=64 points on a shared machine were flagged with the client at 21-30 % CPU. The flag was
    true (requests waited in the client), but its cause was other processes holding the client's core: the
    client's run-queue wait over the window is measured and a flagged point names it. Waiting alone never
    flags a point that kept up."""
    recs = _closed_loop_records()
    t0, t1 = min(r.t_start_ns for r in recs), max(r.t_end_ns for r in recs)
    # cumulative run-queue wait: 40 % of the window
    waits = [(t0 + i * (t1 - t0) // 10, i * 4 * (t1 - t0) // 100) for i in range(11)]
    lag = [(t0 + i * MS, 15 * MS) for i in range(100)]  # a loop 15 ms late at every tick
    flagged = client_stats(recs, lag, 4, cpu_wait_samples=waits)
    assert flagged.client_saturated and flagged.cpu_wait_share == 0.4
    assert "waited 40% of the window for a CPU held by other processes" in flagged.reason
    healthy = client_stats(recs, [], 4, cpu_wait_samples=waits)
    assert not healthy.client_saturated and healthy.reason is None and healthy.cpu_wait_share == 0.4
    own = client_stats(recs, lag, 4, cpu_wait_samples=[(t0, 0), (t1, 0)])  # its own work: no CPU named
    assert own.client_saturated and "CPU held" not in own.reason


def test_the_loop_monitor_samples_its_threads_cpu_wait():
    import asyncio

    from speedbench.load.monitor import LoopMonitor, cpu_wait_ns

    if cpu_wait_ns() is None:  # not Linux: nothing to read
        return

    async def run():
        m = LoopMonitor(0.001).start()
        await asyncio.sleep(0.05)
        await m.stop()
        return m

    m = asyncio.run(run())
    assert len(m.cpu_wait) >= 2
    assert all(b[0] > a[0] and b[1] >= a[1] for a, b in zip(m.cpu_wait, m.cpu_wait[1:]))


def test_waiting_for_the_servers_message_end_is_the_servers_not_a_client_that_fell_behind(adapter):
    """The stub writes each reply's chunked terminator 30 ms after [DONE] (a server whose HTTP layer ends the
    message late, as the SGLang emulator did): the next request on that slot waits for its connection. That
    wait is recorded as ``server_wait_ns`` and is not the client's send delay; it used to flag every point of
    a quiet rehearsal CLIENT-BOUND."""
    plan = LoadPlan(concurrency=1, num_requests=12, warmup_requests=0, max_tokens=10)
    run, _ = run_against_stub(
        adapter, plan, StubConfig(ttft_s=0.02, itl_s=0.02, end_delay_s=0.03), prompts=make_prompts()
    )
    measured = sorted((r for r in run.records if not r.warmup), key=lambda r: r.t_start_ns)
    assert all(r.status == "ok" for r in measured)
    later = measured[1:]  # the first one found its connection idle
    assert all(r.server_wait_ns >= 25 * MS for r in later), [r.server_wait_ns for r in later]
    assert all(r.t_start_ns - r.t_wanted_ns >= r.server_wait_ns for r in later)
    # none of the load rules blames the client (loop lag, the machine's own noise, is not what this tests)
    reason = run.client.reason or ""
    assert not any(rule in reason for rule in ("send delay", "slot time", "in-flight")), reason
    assert run.client.send_delay_p99_ms < 25 and run.client.mean_in_flight > 0.97  # the client's own part only
