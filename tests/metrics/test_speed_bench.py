"""Issue 26 item 4: SPEED-Bench's own aggregations (specdec_bench @ a2fbac7b, metrics.speed_bench), each
checked against a value computed by hand with SPEED-Bench's rule."""

from pathlib import Path

import pytest

from speedbench.metrics import speed_bench as sb
from speedbench.metrics.category import category_acceptance
from speedbench.report.load import ReportData
from speedbench.results import ResultsDir
from tests.conftest import make_record
from tests.metrics.helpers import summarize

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "vllm-cpu-sample"


def _two_conversations():
    """Conversation A (2 turns): chunk sizes [1, 4, 4] then [1, 1, 1, 1, 1, 1]; conversation B (1 turn):
    [1, 2, 2, 1]. No request ended at EOS."""
    a1 = make_record(chunk_tokens=(1, 5, 9), request_id="c#0", prompt_id="pA", conversation_id="c#0")
    a2 = make_record(chunk_tokens=(1, 2, 3, 4, 5, 6), request_id="c#0.2", prompt_id="pA", conversation_id="c#0", turn=2)
    b = make_record(chunk_tokens=(1, 3, 5, 6), request_id="c#1", prompt_id="pB", conversation_id="c#1")
    return [a1, a2, b]


def test_al_is_per_conversation_over_all_turns_then_averaged():
    row = summarize("ngram", 1, _two_conversations()).to_row()
    # SPEED-Bench: Request_AL = mean(chain(*turns)) per conversation, Average_AL = mean over conversations
    conv_a = (1 + 4 + 4 + 1 + 1 + 1 + 1 + 1 + 1) / 9  # 15 tokens over 9 chunks of both turns
    conv_b = (1 + 2 + 2 + 1) / 4
    assert row["al_speedbench"] == pytest.approx((conv_a + conv_b) / 2)  # 1.5833
    # each turn its own request: 3.0, 1.0 and 1.5 -> 1.8333, the breakdown beside it
    assert row["al_per_turn"] == pytest.approx((9 / 3 + 6 / 6 + 6 / 4) / 3)
    assert row["al_speedbench"] != pytest.approx(row["al_per_turn"])
    assert row["conversations"] == 2 and row["al_speedbench_rule"] == sb.HEADLINE_RULE
    (cat,) = category_acceptance(_two_conversations())
    assert cat.al_speedbench == pytest.approx(row["al_speedbench"]) and cat.conversations == 2
    assert cat.al_per_turn == pytest.approx(row["al_per_turn"])


def test_eos_is_stripped_as_specdec_bench_strips_it():
    # finish "stop" = ended at EOS; specdec_bench's vllm.py cuts the EOS from the last chunk, dropping the
    # chunk when the EOS was all it held
    alone = make_record(chunk_tokens=(1, 4, 5), finish_reason="stop", request_id="a", prompt_id="a")
    shared = make_record(chunk_tokens=(1, 4, 8), finish_reason="stop", request_id="b", prompt_id="b")
    capped = make_record(chunk_tokens=(1, 4, 8), finish_reason="length", request_id="c", prompt_id="c")
    assert sb.chunk_lengths(alone) == [1, 3] and sb.request_al(alone) == pytest.approx(4 / 2)
    assert sb.chunk_lengths(shared) == [1, 3, 3] and sb.request_al(shared) == pytest.approx(7 / 3)
    assert sb.chunk_lengths(capped) == [1, 3, 4] and sb.request_al(capped) == pytest.approx(8 / 3)
    row = summarize("ngram", 1, [alone, shared, capped]).to_row()
    assert row["al_speedbench"] == pytest.approx((2 + 7 / 3 + 8 / 3) / 3)
    assert row["al_per_request_eos_counted"] == pytest.approx((5 / 3 + 8 / 3 + 8 / 3) / 3)
    assert row["chunk_length_histogram"] == "1:3,3:4,4:1"  # [1, 3], [1, 3, 3], [1, 3, 4]
    assert row["output_tokens"] == 5 + 8 + 8  # TPS counts the EOS (the recorded choice)


def test_conditional_rate_from_the_chunk_histogram():
    # lengths 1 x4, 2 x2, 4 x2 (8 chunks): P(≥2 | ≥1) = 4/8, P(≥4 | ≥2) = 2/4, the first length 1.0
    assert sb.conditional_rates({1: 4, 2: 2, 4: 2}) == {1: 1.0, 2: 0.5, 4: 0.5}


def test_fixture_conditional_rates_speedbench_and_per_drafted_position():
    """The README's fixture: SPEED-Bench's rates (every chunk counted) and the per-drafted-position rates
    differ a lot for n-gram SD, which drafts nothing on most steps; the report names both."""
    rd = ResultsDir(SAMPLE)
    rows = {r["point_id"]: r for r in rd.summary_rows()}
    recs = rd.records("ngram-k3-c1")
    assert sb.chunk_histogram(recs) == {1: 184, 2: 7, 3: 14, 4: 28}
    rates = sb.conditional_rates(sb.chunk_histogram(recs))
    assert [round(rates[k], 3) for k in (2, 3, 4)] == [0.21, 0.857, 0.667]
    assert rows["ngram-k3-c1"]["al_speedbench"] == pytest.approx(1.71, abs=0.005)
    pos = sorted(ReportData.load([SAMPLE]).position_rows, key=lambda p: p["position"])
    assert [round(p["conditional_speedbench"], 3) for p in pos] == [0.21, 0.857, 0.667]
    assert [round(p["conditional"], 2) for p in pos] == [0.82, 0.88, 0.73]
