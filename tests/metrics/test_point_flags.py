"""Issue 15 item 6: warnings that are true (merged chunks, chunk/step mismatches, failed requests, stalled
streams) and shown where a reader looks."""

import dataclasses

import pytest

from speedbench.core.records import FAILED
from speedbench.metrics.flags import point_flags
from speedbench.metrics.summary import summarize_point
from speedbench.outcome import EXIT_POINTS, sweep_outcome
from speedbench.report.table import render_markdown
from tests.conftest import make_record


def _summary(records, sd="ngram", k=3):
    return summarize_point(
        records,
        point_id=f"{'ngram-k3' if sd != 'off' else 'sd-off'}-c1",
        engine="vllm",
        sd_label="ngram-k3" if sd != "off" else "sd-off",
        sd_method=sd,
        draft_length=k if sd != "off" else None,
        concurrency=1,
        isl=None,
    )


def test_merged_chunks_and_step_mismatches_are_shown_and_warned():
    recs = [
        make_record(chunk_tokens=(1, 2, 5, 6, 8), sd_per_step_accepted=[2, 1], request_id="a"),  # exact
        make_record(chunk_tokens=(1, 3), sd_per_step_accepted=[], request_id="b"),  # merged
        make_record(chunk_tokens=(1, 2, 3), sd_per_step_accepted=[3, 3], request_id="c"),
    ]  # mismatch
    row = _summary(recs).to_row()
    assert (row["merged_chunk_requests"], row["chunk_step_mismatches"]) == (1, 1)
    tags = [t for t, _ in point_flags(row)]
    assert "MERGED 1" in tags and "CHUNK≠STEP 1" in tags
    table = render_markdown([row])
    assert "MERGED 1" in table and "CHUNK≠STEP 1" in table


def test_a_healthy_point_has_no_flag():
    row = _summary(
        [make_record(chunk_tokens=(1, 2, 5), sd_per_step_accepted=[0, 2], request_id=f"r{i}") for i in range(3)]
    ).to_row()
    assert point_flags(row) == []


def test_a_stalled_stream_does_not_stretch_the_throughput_window():
    """4 requests finish within 1 s; a fifth got 2 chunks, then nothing, until the 60 s idle timeout."""
    ok = [
        make_record(chunk_tokens=tuple(range(1, 11)), chunk_gap_ms=90, ttft_ms=50, start_ns=0, request_id=f"r{i}")
        for i in range(4)
    ]
    stalled = make_record(chunk_tokens=(1, 2), chunk_gap_ms=100, ttft_ms=100, request_id="dead")
    stalled = dataclasses.replace(stalled, status=FAILED, error_kind="timeout", t_end_ns=60_200_000_000)
    s = _summary(ok + [stalled], sd="off")
    window = max(r.t_end_ns for r in ok) * 1e-9
    assert s.duration_s == pytest.approx(window)
    assert s.output_tps == pytest.approx(40 / window)  # not 40 / 60.2 s
    assert s.output_tps_window == pytest.approx((40 + 2) / window)


def test_a_point_whose_latencies_could_not_be_measured_fails_the_sweep():
    """Requests ended ok, but no chunk carried countable tokens: every latency is empty."""
    blind = [make_record(chunk_tokens=(), request_id=f"r{i}", completion_tokens=8) for i in range(3)]
    point = dataclasses.asdict(_summary(blind, sd="off"))
    assert point["ok"] == 3 and point["ttft_s"]["count"] == 0
    out = sweep_outcome([point], max_error_rate=0.0)
    assert out.exit_code == EXIT_POINTS and "no token chunk was timed" in out.line


def test_a_connect_inside_the_measured_window_is_flagged():
    """Issue 29: connections are opened before the window; a measured request that had to connect is shown."""
    s = _summary([make_record(request_id=f"r{i}") for i in range(3)], sd="off")
    assert point_flags(s.to_row()) == []
    s.measured_connects = 2
    tags = [t for t, _ in point_flags(s.to_row())]
    assert tags == ["CONNECT 2"]
    assert "CONNECT 2" in render_markdown([s.to_row()])
