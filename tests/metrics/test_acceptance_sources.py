"""Issue 15 items 4 and 5: the headline AL is SPEED-Bench's aggregation, and acceptance comes from the
measured requests first, cross-checked against the server's counters."""

import json
import re
from pathlib import Path

import pytest

from speedbench.core.acceptance import SpecDecodeCounters
from speedbench.metrics import acceptance as acc
from speedbench.metrics.flags import point_flags
from speedbench.metrics.summary import point_from_dict
from speedbench.results import ResultsDir
from tests.conftest import make_record
from tests.metrics.helpers import summarize

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "results" / "vllm-cpu-sample"


def _sd(drafts, accepted, per_pos, k=3):
    return SpecDecodeCounters(drafts, k * drafts, accepted, tuple(per_pos), "test")


def _point(records, counters=None):
    return summarize("ngram", 1, records, counters=counters)


def test_headline_al_is_the_mean_over_requests_and_the_pooled_figure_stays_beside_it():
    short = make_record(chunk_tokens=(1, 5), sd_per_step_accepted=[3])  # 2 steps, 5 tokens: 2.5
    long = make_record(chunk_tokens=tuple(range(1, 11)), request_id="r2")  # 10 steps, 10 tokens: 1.0
    row = _point([short, long]).to_row()
    assert row["al_speedbench"] == pytest.approx((2.5 + 1.0) / 2)  # SPEED-Bench: mean of ALs
    assert row["tokens_per_step"] == pytest.approx(15 / 12)  # pooled: Σ tokens / Σ steps


def test_fixture_headline_al_recomputed_from_its_records_and_quoted_in_the_readme():
    rd = ResultsDir(SAMPLE)
    rows = {r["point_id"]: r for r in rd.summary_rows()}
    for pid, row in rows.items():
        ok = [r for r in rd.records(pid) if not r.warmup and r.status == "ok"]
        per_req = [r.output_tokens / len(r.chunk_tokens) for r in ok]
        assert row["al_speedbench"] == pytest.approx(sum(per_req) / len(per_req))
        assert row["tokens_per_step"] == pytest.approx(
            sum(r.output_tokens for r in ok) / sum(len(r.chunk_tokens) for r in ok)
        )
    ng = rows["ngram-k3-c4"]
    readme = (ROOT / "README.md").read_text()
    quote = re.search(
        r"`tests/fixtures/results/vllm-cpu-sample`[^)]*\): AL drafted ([\d.]+), AL SPEED-Bench "
        r"([\d.]+), tok/step pooled ([\d.]+)",
        readme,
    )
    assert quote, "README must quote the sample's three acceptance figures"
    assert quote.groups() == (f"{ng['al_drafted']:.2f}", f"{ng['al_speedbench']:.2f}", f"{ng['tokens_per_step']:.2f}")


def test_per_request_counters_first_server_deltas_as_fallback():
    recs = [
        make_record(
            chunk_tokens=(1, 4, 5),
            sd={"drafts": 2, "draft_tokens": 6, "accepted_tokens": 2, "accepted_per_position": [1, 1, 0]},
            request_id=f"r{i}",
        )
        for i in range(3)
    ]
    server = _sd(10, 9, (5, 3, 1))  # the window also saw other requests: 4 more drafts, better acceptance
    p = _point(recs, server)
    assert p.acceptance_source == acc.PER_REQUEST
    assert p.al_drafted == pytest.approx(1 + 6 / 6) and p.al_drafted_req_sum == p.al_drafted
    assert p.al_drafted_server == pytest.approx(1 + 9 / 10)
    assert p.per_position_acceptance == pytest.approx([3 / 6, 3 / 6, 0.0])
    assert p.draft_acceptance_rate == pytest.approx(6 / 18)
    assert p.acceptance_check["agree"] is False  # 1.9 vs 2.0: 5 % apart
    assert any(tag == "ACCEPTANCE ≠" for tag, _ in point_flags(p.to_row()))
    # no per-request metrics (e.g. an engine version without them): the server's deltas are used, unchecked
    bare = _point([make_record(chunk_tokens=(1, 4, 5))], server)
    assert bare.acceptance_source == acc.SERVER and bare.al_drafted == pytest.approx(1.9)
    assert bare.acceptance_check is None


def test_sources_within_tolerance_agree_and_raise_no_flag():
    per_req, server = _sd(62, 129, (51, 45, 33)), _sd(86, 179, (73, 63, 43))  # the sample's c=4 point
    check = acc.cross_check(per_req, server)
    assert check.agree and check.max_rel_diff < acc.TOLERANCE
    assert (check.per_request_drafts, check.server_drafts) == (62, 86)
    assert acc.cross_check(_sd(100, 200, ()), _sd(100, 200 * (1 + acc.TOLERANCE / 2), ())).agree
    assert not acc.cross_check(_sd(100, 200, ()), _sd(100, 215, ())).agree


def test_old_points_are_re_read_with_per_request_acceptance():
    """The sample was written when the server's deltas came first: its c=4 point said 0.849/0.733/0.500."""
    points = {p["point_id"]: p for p in ResultsDir(SAMPLE).points()}
    stored = points["ngram-k3-c4"]
    assert "acceptance_source" not in stored and stored["per_position_acceptance"][0] == pytest.approx(73 / 86)
    p = point_from_dict(stored)
    assert p.acceptance_source == acc.PER_REQUEST
    assert p.per_position_acceptance == pytest.approx([51 / 62, 45 / 62, 33 / 62])  # 0.823/0.726/0.532
    assert p.al_drafted == pytest.approx(1 + 129 / 62) and p.al_drafted_server == pytest.approx(1 + 179 / 86)
    assert p.acceptance_check["agree"] is True
    json.dumps(p.to_row())  # the row stays JSON-clean
