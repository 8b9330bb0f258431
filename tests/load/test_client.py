import asyncio
import contextlib
import sys
import time
from dataclasses import replace

import pytest

from speedbench.core.records import RequestRecord
from speedbench.load.client import drive
from speedbench.load.monitor import client_stats, mean_in_flight
from speedbench.load.plan import LoadPlan
from speedbench.load.point import run_point
from speedbench.load.stub_server import StubConfig, start_stub
from tests.load.conftest import make_prompts, run_against_stub


def _max_overlap(records):
    events = sorted(
        [(r.t_start_ns, 1) for r in records] + [(r.t_end_ns, -1) for r in records], key=lambda e: (e[0], e[1])
    )
    cur = peak = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    return peak


def test_closed_loop_holds_concurrency_and_records_everything(adapter):
    seen = []
    plan = LoadPlan(concurrency=6, num_requests=30, warmup_requests=6, max_tokens=16)
    run, log = run_against_stub(adapter, plan, StubConfig(ttft_s=0.004, itl_s=0.001), on_record=seen.append)
    measured = [r for r in run.records if not r.warmup]
    assert len(measured) == 30 and all(r.status == "ok" for r in measured)
    assert sorted(int(r.request_id.split("#")[1]) for r in measured) == list(range(6, 36))
    assert len(seen) == len(run.records)
    assert _max_overlap(run.records) <= 6
    assert run.client.mean_in_flight > 5.0  # cool-down keeps the load on to the end
    assert all(r.chunk_tokens[-1] == 16 and r.server_prompt_ids_match for r in measured)
    # the 6 warm-up requests send prompts built for them (never a measured one): measured ones take all 8
    warm = [r for r in run.records if int(r.request_id.split("#")[1]) < 6]
    assert {r.prompt_id for r in warm} == {f"warmup-{j}" for j in range(6)} and all(r.warmup for r in warm)
    assert run.prompt_order == [f"p{i % 8}" for i in range(30)]
    # warm-up / cool-down requests cancelled at the end are recorded as such, outside the measured set
    assert all(r.warmup for r in run.records if r.status == "cancelled")


def test_no_cooldown_drains_like_before(adapter):
    plan = LoadPlan(concurrency=4, num_requests=10, warmup_requests=2, max_tokens=4, cooldown=False)
    run, _ = run_against_stub(adapter, plan)
    assert len(run.records) == 12 and all(r.status == "ok" for r in run.records)


def test_shuffled_prompt_order_is_seeded(adapter):
    plan = LoadPlan(concurrency=2, num_requests=8, warmup_requests=0, max_tokens=2, order="shuffled", seed=5)
    a, _ = run_against_stub(adapter, plan)
    b, _ = run_against_stub(adapter, plan)
    assert a.prompt_order == b.prompt_order and sorted(a.prompt_order) == sorted(f"p{i}" for i in range(8))
    assert a.prompt_order != [f"p{i}" for i in range(8)]


@pytest.mark.parametrize(
    "cfg,kind",
    [
        (StubConfig(fault="http_500"), "http_500"),
        (StubConfig(fault="truncate"), "transport|truncated_stream"),
        (StubConfig(fault="malformed"), "malformed_sse"),
        (StubConfig(fault="error_event"), "server_error_event"),
    ],
)
@pytest.mark.parametrize("http_client", ["http1", "aiohttp"])
def test_failures_are_classified(adapter, cfg, kind, http_client):
    plan = LoadPlan(
        concurrency=2, num_requests=3, warmup_requests=0, max_tokens=4, cooldown=False, http_client=http_client
    )
    run, _ = run_against_stub(adapter, plan, cfg)
    assert len(run.records) == 3
    assert all(r.status == "failed" and r.error_kind in kind.split("|") for r in run.records)


def test_odd_framing_parses_the_same_on_both_clients(adapter):
    plan = LoadPlan(concurrency=3, num_requests=6, warmup_requests=0, max_tokens=8, cooldown=False)
    ref = replace(plan, http_client="aiohttp")
    runs = [run_against_stub(adapter, p, cfg)[0] for p in (plan, ref) for cfg in (None, StubConfig(odd_framing=True))]
    key = lambda run: sorted(
        (
            r.request_id,
            tuple(r.chunk_tokens),
            tuple(r.output_ids),
            r.text,
            r.completion_tokens,
            r.server_prompt_ids_match,
        )
        for r in run.records
    )
    assert all(key(r) == key(runs[0]) for r in runs[1:])
    assert all(r.status == "ok" for run in runs for r in run.records)


def test_open_loop_follows_the_seeded_schedule(adapter):
    plan = LoadPlan(
        concurrency=1,
        num_requests=40,
        warmup_requests=0,
        max_tokens=2,
        mode="rate",
        request_rate=200.0,
        arrival="constant",
        cooldown=False,
    )
    run, _ = run_against_stub(adapter, plan)
    assert len(run.records) == 40 and all(r.status == "ok" for r in run.records)
    starts = sorted(r.t_start_ns for r in run.records)
    span = (starts[-1] - starts[0]) / 1e9
    # 39 gaps of 5 ms: no request starts before its due time, so only a late first start can shorten the span
    assert span + max(run.schedule_lags_ns) / 1e9 >= 0.19 and span < 10
    assert len(run.schedule_lags_ns) == 40 and run.client.target_in_flight is None


def test_duration_mode_measures_by_time(adapter):
    plan = LoadPlan(concurrency=2, num_requests=10**6, warmup_requests=0, max_tokens=2, duration_s=0.3, cooldown=False)
    run, _ = run_against_stub(adapter, plan, StubConfig(ttft_s=0.01))
    assert 2 <= len(run.records) < 1000


def test_mean_in_flight_is_time_weighted():
    a = RequestRecord("a", "p", "c", 1, 1, t_start_ns=0, t_end_ns=100)
    b = RequestRecord("b", "p", "c", 1, 1, t_start_ns=50, t_end_ns=100)
    assert mean_in_flight([a, b], 0, 100) == pytest.approx(1.5)


def test_monitor_flags_a_blocked_loop(adapter):
    async def main():
        srv, server, port = await start_stub(StubConfig(ttft_s=0.002, itl_s=0.002))

        async def hog():
            while True:
                time.sleep(0.01)  # deliberately blocks the event loop
                await asyncio.sleep(0)

        h = asyncio.create_task(hog())
        plan = LoadPlan(concurrency=2, num_requests=6, warmup_requests=0, max_tokens=20)
        run = await drive(adapter, f"http://127.0.0.1:{port}", make_prompts(), plan, lambda r: None)
        h.cancel()
        server.close()
        return run

    run = asyncio.run(main())
    stats = client_stats(run.records, run.lag_samples, 2)
    assert stats.client_saturated and stats.client_lag_p99_ms > 5


@pytest.mark.slow
def test_worker_processes_merge_records(adapter):
    seen = []
    plan = LoadPlan(concurrency=4, num_requests=20, warmup_requests=4, max_tokens=8, workers=2)
    run, _ = run_against_stub(adapter, plan, StubConfig(ttft_s=0.003, itl_s=0.001), on_record=seen.append)
    measured = [r for r in run.records if not r.warmup]
    assert sorted(int(r.request_id.split("#")[1]) for r in measured) == list(range(4, 24))
    assert all(r.status == "ok" and r.chunk_tokens[-1] == 8 for r in measured)
    assert len(seen) == len(run.records)
    # across worker processes too: the 4 warm-up requests send their own prompts, measured ones cycle p0..p7
    assert {r.prompt_id for r in run.records if int(r.request_id.split("#")[1]) < 4} == {
        f"warmup-{j}" for j in range(4)
    }
    assert run.prompt_order == [f"p{i % 8}" for i in range(20)]
    assert run.lag_samples and run.client.mean_in_flight is not None
    assert run.client.timestamps == ("kernel" if sys.platform == "linux" else "read")  # from both workers


@pytest.mark.slow
def test_cancelled_point_stops_worker_processes_at_once(adapter):
    """The guard (server gone) or Ctrl-C cancels the point: every worker process stops sending within
    milliseconds, instead of firing its whole share and being killed by the parent's 10 s join timeout."""
    plan = LoadPlan(concurrency=4, num_requests=100_000, warmup_requests=0, max_tokens=8, workers=2)

    async def main():
        srv, server, port = await start_stub(StubConfig(ttft_s=0.002, itl_s=0.001))
        seen = []
        try:
            task = asyncio.ensure_future(
                run_point(adapter, f"http://127.0.0.1:{port}", make_prompts(), plan, seen.append, "pt")
            )
            while len(seen) < 64 and not task.done():  # both workers are up and streaming
                await asyncio.sleep(0.01)
            t_cancel = time.perf_counter_ns()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stopped_after_s = (time.perf_counter_ns() - t_cancel) / 1e9
            served = len(srv.log)
            await asyncio.sleep(0.3)
            return srv.log, served, t_cancel, stopped_after_s
        finally:
            server.close()

    log, served, t_cancel, stopped_after_s = asyncio.run(main())
    assert stopped_after_s < 3.0  # no 10 s join timeout
    assert len(log) == served  # nothing served after the point returned
    late = [e for e in log if e["recv_ns"] > t_cancel + 100_000_000]
    assert late == []  # no request arrived 100 ms or more after the cancel


def _rec(gap_ms, n=20):
    t = [int(i * gap_ms * 1e6) for i in range(n)]
    return RequestRecord(
        "r#0", "p", "c", 1, n, t_start_ns=0, t_end_ns=t[-1], chunk_times_ns=t, chunk_tokens=list(range(1, n + 1))
    )


def test_kernel_stamps_tolerate_lag_shorter_than_half_the_chunk_gap():
    recs = [_rec(25.0)]
    lags = [(t, 3_000_000) for t in range(0, recs[0].t_end_ns, 5_000_000)]  # 3 ms lag throughout
    read = client_stats(recs, lags, 1, kernel_stamps=False)
    kernel = client_stats(recs, lags, 1, kernel_stamps=True)
    assert read.client_saturated and read.lag_limit_ms == 1.0 and read.timestamps == "read"
    assert not kernel.client_saturated and kernel.lag_limit_ms == pytest.approx(12.5)
    # the same lag with 4 ms gaps would merge chunks into one read: flagged again
    fast = [_rec(4.0)]
    lags_fast = [(t, 3_000_000) for t in range(0, fast[0].t_end_ns, 1_000_000)]
    assert client_stats(fast, lags_fast, 1, kernel_stamps=True).client_saturated


def test_a_swallowed_cancel_still_stops_every_worker(adapter, monkeypatch):
    """Python 3.11's wait_for drops a cancel that lands as a connect is refused; the point must stop anyway.

    The transport below does what wait_for did: the failure wins and the cancel is lost.  Before
    _Phases.halt the workers went on firing at the dead server (113 of 150 requests in the SIGKILL fault
    test), and here they hang on the next request that nobody cancels any more."""
    from speedbench.load import client as client_mod
    from speedbench.load.http1 import StreamOutcome

    calls, answered = [], {"n": 0}  # requests started; how many are answered at once (the rest hang)

    class SwallowingTransport:
        async def open_idle(self, n):
            return 0

        async def stream(self, path, body, sink):
            calls.append(path)
            if len(calls) > 40:  # keeps the test bounded when the harness fails to stop
                raise RuntimeError("runaway: requests kept starting after the point was stopped")
            try:
                await asyncio.sleep(0.001 if len(calls) <= answered["n"] else 0.2)
            except asyncio.CancelledError:
                pass
            return StreamOutcome(error_kind="transport", error="refused", t_end_ns=time.perf_counter_ns())

    @contextlib.asynccontextmanager
    async def swallowing_streamer(base_url, plan):
        yield SwallowingTransport()

    monkeypatch.setattr(client_mod, "_streamer", swallowing_streamer)
    plan = LoadPlan(concurrency=4, num_requests=1000, warmup_requests=0, max_tokens=4, cooldown=False)

    async def cancelled_from_outside():
        task = asyncio.ensure_future(drive(adapter, "http://127.0.0.1:9", make_prompts(), plan, lambda r: None))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 3)

    asyncio.run(cancelled_from_outside())
    assert len(calls) == 4  # one hung request per stream, and not one started after the cancel

    # a point that ends by itself cancels its cool-down requests the same way: it must still end
    calls.clear()
    answered["n"] = 8
    plan = LoadPlan(concurrency=4, num_requests=8, warmup_requests=0, max_tokens=4, cooldown=True)
    run = asyncio.run(asyncio.wait_for(drive(adapter, "http://127.0.0.1:9", make_prompts(), plan, lambda r: None), 3))
    assert len(calls) == 8 + 4 and len(run.records) == 12  # the measured requests, one cool-down per stream


@pytest.mark.parametrize("payload", [b"[1, 2]", b"42", b'"text"'])
def test_a_payload_that_is_no_event_object_is_malformed(adapter, payload):
    """JSON that is no object (a list, a number, a string) is a malformed payload, like bad JSON.  It used to
    reach the adapter's fold, which raised, and the point ended as a client bug instead of a failed request."""
    from speedbench.load.client import _Fold

    rec = RequestRecord("r", "p", "c", 3, 4)
    assert _Fold(adapter, rec, [1, 2, 3])(payload, 0) is True  # the stream is over for us
    assert rec.status == "failed" and rec.error_kind == "malformed_sse"


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_a_prompts_ids_are_encoded_once_before_the_window(engine, monkeypatch):
    """Issue 29: a wave of streams ending together re-sends its bodies at once, and encoding thousands of ids
    per body (8k: ~0.1 ms each, 512 of them) held the loop in the window. The ids' JSON is made once per
    prompt before the window and embedded; the body sent is byte for byte what encoding it whole gives."""
    from speedbench.config import EngineConfig
    from speedbench.core.jsoncodec import dumps
    from speedbench.data.promptset import TokenizedPrompt
    from speedbench.engines import get_adapter
    from speedbench.load import client
    from speedbench.load.exchange import StreamOutcome

    adapter = get_adapter(EngineConfig(name=engine, model="/m"))
    plan = LoadPlan(concurrency=1, num_requests=1, warmup_requests=0, max_tokens=8)
    prompt = TokenizedPrompt("p0", "QA", list(range(300, 1300)))
    sent = []

    class Http:
        async def stream(self, path, body, sink):
            sent.append(body)
            return StreamOutcome(t_end_ns=1, t_sent_ns=1)

    encoded = []
    real_dumps = client.dumps
    monkeypatch.setattr(client, "dumps", lambda obj: encoded.append(obj) or real_dumps(obj))
    driver = client._PointDriver(adapter, [prompt], plan, lambda r: None, "pt", (0, 1))
    assert prompt._ids_json is not None  # encoded when the point was set up
    rec = RequestRecord("pt#0", "p0", "QA", 1000, 8)
    asyncio.run(driver._send(Http(), prompt.token_ids, rec, 0, prompt.ids_json()))
    _, whole = adapter.build_request(list(prompt.token_ids), 8)
    assert sent == [dumps(whole)]
    assert not any(isinstance(v, list) and len(v) == 1000 for v in encoded[0].values())  # not re-encoded
