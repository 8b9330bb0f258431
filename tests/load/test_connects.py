"""Issue 29 item 1: a request's start is when it left, and a point's measured requests never include a connect.

The stub server counts the connections it accepts (``StubServer.connects``, stamped on the client's clock);
the phases are read from the records: a connection accepted once the first measured request was wanted is a
connect inside the measured window."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from speedbench.load.monitor import client_stats
from speedbench.load.plan import LoadPlan
from speedbench.load.point import run_point
from speedbench.load.stub_server import StubConfig, start_stub
from tests.conftest import make_record
from tests.load.conftest import make_prompts


def _run(adapter, plan: LoadPlan, cfg: StubConfig, warmup_wave: bool):
    """One point against the stub, as ``speedbench sweep`` runs it (``warmup_wave``: the warm-up is its own
    wave and drive, then a quiet moment) or with the warm-up inline; returns the run and the server."""
    quiet: list[int] = []

    async def before_measure() -> None:
        quiet.append(time.perf_counter_ns())

    async def main():
        srv, server, port = await start_stub(cfg)
        try:
            run = await run_point(
                adapter,
                f"http://127.0.0.1:{port}",
                make_prompts(16),
                plan,
                None,
                "pt",
                before_measure if warmup_wave else None,
            )
        finally:
            server.close()
        return run, srv

    run, srv = asyncio.run(main())
    return run, srv, quiet


@pytest.mark.parametrize(
    "warmup, wave, end_delay_s",
    [
        (4, True, 0.0),  # the runner's path: the warm-up wave's connections close with its drive
        (0, False, 0.0),  # no warm-up at all
        (4, False, 0.0),  # warm-up inline, on the same connections
        (4, True, 0.005),  # the chunked body's end arrives 5 ms after [DONE]: the slot waits for it
    ],
)
def test_measured_requests_never_include_a_connect(adapter, warmup, wave, end_delay_s):
    conc = 4
    plan = LoadPlan(concurrency=conc, num_requests=12, warmup_requests=warmup, max_tokens=4)
    cfg = StubConfig(ttft_s=0.01, itl_s=0.002, end_delay_s=end_delay_s)
    run, srv, quiet = _run(adapter, plan, cfg, wave)
    measured = [r for r in run.records if not r.warmup]
    assert len(measured) == 12 and all(r.status == "ok" for r in measured)
    first_wanted = min(r.t_wanted_ns for r in measured)
    in_window = [t for t in srv.connects if t >= first_wanted]
    assert in_window == [], f"{len(in_window)} connects inside the measured window"
    assert all(r.connect_ns == 0 for r in measured)
    assert run.client.measured_connects == 0
    # one connection per in-flight slot for the measured load (and, in a wave of its own, for the warm-up)
    before = [t for t in srv.connects if not quiet or t >= quiet[0]]
    assert len(before) == conc
    assert len(srv.connects) == (2 * conc if wave and warmup else conc)


def test_a_connect_inside_the_window_is_timed_apart_and_flagged(adapter):
    """A server that closes every connection after one response (no keep-alive): every request connects.
    The connect is recorded and counted, and the start still follows it."""
    plan = LoadPlan(concurrency=2, num_requests=6, warmup_requests=0, max_tokens=3)

    async def main():
        srv, server, port = await start_stub(StubConfig(ttft_s=0.005, itl_s=0.001))
        orig = srv.send

        def send_then_close(s, n=1):  # close once the response is complete
            more = orig(s, n)
            if not more and s.conn.transport is not None:
                s.conn.transport.close()
            return more

        srv.send = send_then_close
        try:
            return await run_point(adapter, f"http://127.0.0.1:{port}", make_prompts(), plan)
        finally:
            server.close()

    run = asyncio.run(main())
    measured = [r for r in run.records if not r.warmup]
    assert all(r.status == "ok" for r in measured)
    reconnected = [r for r in measured if r.connect_ns > 0]
    assert len(reconnected) >= 4  # the first two used the pre-opened connections
    assert run.client.measured_connects == len(reconnected)
    assert all(r.t_start_ns - r.t_wanted_ns >= r.connect_ns for r in reconnected)


def test_the_clients_own_delay_is_recorded_apart_and_kept_out_of_ttft(adapter, monkeypatch):
    """Encoding a request takes 3 ms here (a slow client): a closed-loop slot's next request is wanted when
    its previous one ended, leaves ≥ 3 ms later, and its TTFT still matches the server's truth (kernel
    arrival of the request to the first chunk's send), because it counts from when the request left."""
    build = adapter.build_request

    def slow_build(*a, **kw):
        t = time.perf_counter()
        while time.perf_counter() - t < 0.003:
            pass
        return build(*a, **kw)

    monkeypatch.setattr(adapter, "build_request", slow_build)
    plan = LoadPlan(concurrency=4, num_requests=12, warmup_requests=4, max_tokens=3)
    run, srv, _ = _run(adapter, plan, StubConfig(ttft_s=0.02, itl_s=0.002, lockstep=True), False)
    measured = [r for r in run.records if not r.warmup]
    delays = np.array([r.t_start_ns - r.t_wanted_ns for r in measured]) / 1e6
    assert (delays >= 3.0).all()
    # a slot's next request is wanted from the moment its previous one ended
    ends = {r.t_end_ns for r in run.records}
    assert sum(r.t_wanted_ns in ends for r in measured) >= len(measured) - 4
    truth = {tuple(e["prompt_head"][:2]): e for e in srv.log}
    errors = []
    for r in measured:
        e = truth[(2, 100 + int(r.prompt_id[1:]))]
        errors.append(((r.t_first_ns - r.t_start_ns) - (e["sends"][0] - e["recv_ns"])) / 1e6)
    # the 3-12 ms of encoding in a burst of 4 is not in TTFT (a stray scheduling stall may be)
    assert np.median(np.abs(errors)) < 1.0
    assert run.client.send_delay_p99_ms >= 3.0


def test_a_large_send_delay_flags_the_point_client_bound():
    def rec(i, delay_ms):
        r = make_record(chunk_tokens=tuple(range(1, 11)), start_ns=10**9 + i * 10**6, request_id=f"r{i}")
        r.t_wanted_ns = r.t_start_ns - int(delay_ms * 1e6)
        return r

    # requests of ~140 ms: the limit is 1.4 ms
    calm = client_stats([rec(i, 0.05) for i in range(50)], [], None)
    assert not calm.client_saturated and calm.send_delay_p99_ms == pytest.approx(0.05)
    assert calm.send_delay_limit_ms == pytest.approx(1.41, abs=0.01)
    burst = client_stats([rec(i, 0.2 * i) for i in range(50)], [], None)  # a wave re-sent one by one
    assert burst.client_saturated and "send delay P99" in (burst.reason or "")
    old = client_stats([make_record(request_id=f"r{i}") for i in range(5)], [], None)  # no t_wanted_ns
    assert old.send_delay_p99_ms is None and not old.client_saturated
