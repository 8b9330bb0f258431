"""Per-category acceptance (the SPEED-Bench matrix) against hand-computed values, and the report's matrix."""

import dataclasses
import json

import pytest

from speedbench.core.records import FAILED, RequestRecord
from speedbench.metrics.category import (
    CATEGORIES,
    category_acceptance,
    mean_over_categories,
    ordered_categories,
    overall_acceptance,
)
from speedbench.report.load import ReportData
from tests.conftest import make_record


def _records():
    sd = lambda drafts, acc: {
        "drafts": drafts,
        "draft_tokens": 3 * drafts,
        "accepted_tokens": acc,  # noqa: E731
        "accepted_per_position": [],
        "source": "t",
    }
    return [
        make_record((1, 3, 6), category="Coding", sd=sd(2, 3)),  # 6 tokens / 3 steps
        make_record((1, 2, 3, 4), category="Coding", sd=sd(3, 0)),  # 4 tokens / 4 steps
        make_record((1, 4), category="Math"),  # no SD counters
        make_record((1, 2, 9, 10), category="Math", warmup=True),  # warm-up: excluded
        make_record((1, 7), category="Math", status=FAILED),  # failed: excluded
        make_record((1, 2), category="Custom", sd=sd(1, 1)),  # a category outside the paper's 11
    ]


def test_category_values_match_hand_computation():
    rows = {r.category: r for r in category_acceptance(_records())}
    coding = rows["Coding"]
    assert coding.requests == 2
    assert coding.tokens_per_step == pytest.approx(10 / 7)  # Σ tokens / Σ steps
    assert coding.tokens_per_step_mean == pytest.approx((2 + 1) / 2)  # mean of per-request values
    assert coding.al_drafted == pytest.approx(1 + 3 / 5)  # 1 + Σ accepted / Σ drafts
    assert rows["Math"].requests == 1 and rows["Math"].tokens_per_step == pytest.approx(2.0)
    assert rows["Math"].al_drafted is None
    assert rows["Custom"].al_drafted == pytest.approx(2.0)
    assert ordered_categories(rows) == ["Coding", "Math", "Custom"]  # paper order first, others after


def test_overall_pools_all_categories_and_mean_is_unweighted():
    recs = _records()
    allrow = overall_acceptance(recs)
    assert allrow.category == "all" and allrow.requests == 4
    assert allrow.tokens_per_step == pytest.approx((6 + 4 + 4 + 2) / (3 + 4 + 2 + 2))
    assert allrow.al_drafted == pytest.approx(1 + 4 / 6)
    rows = category_acceptance(recs)
    assert mean_over_categories(r.tokens_per_step for r in rows) == pytest.approx((10 / 7 + 2.0 + 1.0) / 3)
    assert mean_over_categories(r.al_drafted for r in rows) == pytest.approx((1.6 + 2.0) / 2)
    assert overall_acceptance([]).tokens_per_step is None


def test_report_matrix_has_paper_columns_mean_and_all(synthetic_dir):
    data = ReportData.load([synthetic_dir])
    assert data.categories == ["Coding", "Math"]
    m = {r["setting"]: r for r in data.category_matrix("al_drafted")}
    on = m["tiny-llm / eagle3 / vllm / k=3"]
    # Coding: 2 accepted per 3 drafts per request; Math: 3 per 3 (pooled over 5 concurrency points)
    assert on["Coding"] == pytest.approx(1 + 2 / 3) and on["Math"] == pytest.approx(2.0)
    assert on["mean"] == pytest.approx((1 + 2 / 3 + 2.0) / 2) and on["all"] == pytest.approx(1 + 5 / 6)
    assert m["tiny-llm / off / vllm"]["all"] is None


def test_sample_records_agree_with_point_summaries(sample_dir):
    """Pooling one point's records reproduces the summary the runner wrote for it."""
    for line in (sample_dir / "points.jsonl").read_text().splitlines():
        p = json.loads(line)
        recs = [
            RequestRecord.from_dict(json.loads(x))
            for x in (sample_dir / "records" / f"{p['point_id']}.jsonl").read_text().splitlines()
        ]
        allrow = overall_acceptance(recs)
        assert allrow.tokens_per_step == pytest.approx(p["tokens_per_step"])
        if p["al_drafted_req_sum"] is not None:
            assert allrow.al_drafted == pytest.approx(p["al_drafted_req_sum"])
        cats = category_acceptance(recs)
        assert {r.category for r in cats} <= set(CATEGORIES)
        assert sum(r.requests for r in cats) == p["ok"]


def test_category_rows_never_hold_every_point_of_a_setting(synthetic_dir, monkeypatch):
    """A setting pools its points' acceptance as a few numbers per request, one point's records alive at a
    time: the full matrix's records are GBs (issue 29). Each point here hands out fresh records with long
    chunk lists; the peak while pooling five points must stay near one point's, not five."""
    import tracemalloc

    from speedbench.report.load import Run

    chunks = tuple(range(1, 20_001))
    real = Run.records

    def big(self, point_id, ids_and_text=True):
        return [
            dataclasses.replace(r, chunk_tokens=list(chunks), chunk_times_ns=list(chunks)) for r in real(self, point_id)
        ]

    monkeypatch.setattr(Run, "records", big)
    data = ReportData.load([synthetic_dir])
    run = data.runs[0]
    tracemalloc.start()
    one = big(run, run.points[0]["point_id"])
    one_point = tracemalloc.get_traced_memory()[0]
    del one
    tracemalloc.reset_peak()
    rows = data.category_rows
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert {r["category"] for r in rows} == {"Coding", "Math"}
    assert peak < 2 * one_point, (peak, one_point)


def test_a_report_reads_each_points_records_once(synthetic_dir, monkeypatch):
    """Issue 29: the speedup intervals, the per-category acceptance and the SD on/off output lengths each
    decoded every point's records (three reads per point: most of a matrix report's time). One read now
    feeds all three."""
    from collections import Counter

    from speedbench.report.sections import build_sections
    from speedbench.results import ResultsDir

    reads = Counter()
    real = ResultsDir.records

    def counting(self, point_id, *a, **kw):
        reads[point_id] += 1
        return real(self, point_id, *a, **kw)

    monkeypatch.setattr(ResultsDir, "records", counting)
    build_sections(ReportData.load([synthetic_dir]))
    assert reads and max(reads.values()) == 1, reads
