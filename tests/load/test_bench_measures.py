"""The benchmark's own yardsticks (scripts/bench_client.py), on server logs whose answer is known."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_client", Path(__file__).parents[2] / "scripts" / "bench_client.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

MS = 1_000_000


def closed_loop_log(conc, n_warm, n, tokens, service_ms, buffered=False, staggered=False):
    """Server log of a closed loop: each stream sends its next request when it finished reading the last
    one (``service_ms`` per response).  ``buffered``: the server 'finishes' sending at once (responses
    parked in socket buffers), which must not change the completion rate."""
    log = []
    free_at = [s * service_ms * MS // conc for s in range(conc)] if staggered else [0] * conc
    for i in range(n_warm + n):
        s = int(np.argmin(free_at))
        arrive = free_at[s]
        done = arrive + service_ms * MS
        last_send = arrive + (MS if buffered else service_ms * MS)
        sends = list(np.linspace(arrive + MS // 10, last_send, tokens).astype(int))
        log.append({"recv_ns": arrive, "cpu_ns": arrive // 2, "sends": sends, "prompt_head": [2, 10, 10 + i]})
        free_at[s] = done
    return log


@pytest.mark.parametrize("buffered,staggered", [(False, False), (True, False), (False, True)])
def test_completion_rate_counts_what_the_client_read(buffered, staggered):
    # 8 streams, each response read in 40 ms, 100 tokens: 8 × 100 / 0.040 = 20,000 chunks/s, whether the
    # streams finish in waves (equal lengths, the zero-latency case) or spread out
    log = closed_loop_log(conc=8, n_warm=8, n=80, tokens=100, service_ms=40, buffered=buffered, staggered=staggered)
    view = bench.server_view(log, conc=8, measured=80)
    assert view["chunks_s"] == pytest.approx(20_000, rel=0.02)
    assert view["server_cpu"] == pytest.approx(0.5)


def test_matched_errors_are_client_minus_server_per_request():
    log = [{"recv_ns": 1_000 * MS, "sends": [1_050 * MS, 1_060 * MS, 1_070 * MS], "prompt_head": [2, 10, 17]}]
    # client: started 0.2 ms before the server saw it; chunk 2 read 0.5 ms late, chunk 3 on time
    sb = {"chunks": {"q7": [int(999.8 * MS), [int(1_050.1 * MS), int(1_060.6 * MS), int(1_070.1 * MS)]]}}
    m = bench.matched_errors(sb, log)
    assert m["ttft"] == pytest.approx([0.3], abs=1e-5)
    assert m["itl"] == pytest.approx([0.5, -0.5], abs=1e-5)
    assert m["delay"] == pytest.approx([0.1, 0.6, 0.1], abs=1e-5)
    assert m["start_minus_arrival"] == pytest.approx([-0.2], abs=1e-5)  # stamped before it reached the server


def test_the_lockstep_server_ends_equal_length_streams_on_one_tick(adapter):
    """The burst case of the wire table: requests that arrive spread over a tick get their chunks on one global
    clock, so equal-length streams end together (the stub's own stamps say so)."""
    from speedbench.load.plan import LoadPlan
    from speedbench.load.stub_server import StubConfig
    from tests.load.conftest import run_against_stub

    plan = LoadPlan(concurrency=8, num_requests=8, warmup_requests=0, max_tokens=5)
    _, log = run_against_stub(adapter, plan, StubConfig(ttft_s=0.02, itl_s=0.01, lockstep=True))
    tick = 10 * MS
    assert len(log) == 8
    for e in log:
        first, last = e["sends"][0], e["sends"][-1]
        assert first - e["recv_ns"] >= 20 * MS  # never before its TTFT
        assert last - first == pytest.approx(4 * tick, abs=3 * MS)
    # every stream's chunks fire on the global tick: send stamps sit just after a multiple of 10 ms
    lateness = [(t % tick) / MS for e in log for t in e["sends"]]
    assert np.median(lateness) < 2.0
