"""Issue 15 item 7: every speedup and AL with an interval; verdicts on constructed results whose right
answer is known."""

import dataclasses
import warnings
from pathlib import Path

import pytest

from speedbench.metrics import uncertainty as un
from speedbench.metrics.category import category_acceptance
from speedbench.metrics.paired import prompt_units
from speedbench.metrics.speedup import speedup_rows
from speedbench.report.analysis import crossover, crossovers, verdict_text
from speedbench.results import ResultsDir
from tests.conftest import make_record
from tests.metrics.helpers import speedup_input, summarize

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "vllm-cpu-sample"


def _records(n, gap_ms, jitter, chunk_tokens=(1, 2, 3, 4, 5, 6, 7, 8), flip=False):
    """n sequential requests, one per prompt p0..p(n-1), whose chunk gap is gap_ms × (1 ± jitter),
    alternating by prompt (``flip`` swaps which prompts are the fast ones)."""
    out, t = [], 0
    for i in range(n):
        g = gap_ms * (1 + (jitter if (i % 2) != flip else -jitter))
        r = make_record(
            chunk_tokens=chunk_tokens, chunk_gap_ms=g, ttft_ms=g, start_ns=t, request_id=f"r{i}", prompt_id=f"p{i}"
        )
        out.append(r)
        t = r.t_end_ns
    return out


def _row(sd, c, records, pid=None):
    return summarize(sd, c, records, pid).to_row()


def _paired(off_records, on_records):
    """speedup_rows over the two points with their records at hand, as the report and the runner call it."""
    off, on = _row("off", 1, off_records), _row("ngram", 1, on_records)
    units = {off["point_id"]: prompt_units(off_records), on["point_id"]: prompt_units(on_records)}
    (s,) = speedup_rows([off, on], lambda row: units[row["point_id"]])
    return s


@pytest.mark.parametrize(
    "on_gap,jitter,flip,verdict",
    [
        (5.0, 0.05, False, un.PAYS),  # twice as fast, little spread
        (20.0, 0.05, False, un.SLOWER),  # twice as slow
        # each prompt exactly 2 % faster (slower), while prompts differ by ±60 %: SD on and off ran the same
        # prompts, so the prompt-to-prompt spread is not noise of the speedup (the unpaired bootstrap said so)
        (9.8, 0.60, False, un.PAYS),
        (10.2, 0.60, False, un.SLOWER),
        # pure noise: the same mean, but the prompts that were fast with SD off are the slow ones with it on
        (10.0, 0.60, True, un.NOISE),
        (9.8, 0.60, True, un.NOISE),
    ],
)
def test_paired_verdict_on_constructed_points(on_gap, jitter, flip, verdict):
    s = _paired(_records(12, 10.0, jitter), _records(12, on_gap, jitter, flip=flip))
    assert s["interval_from"] == "paired bootstrap over 12 prompts"
    assert s["output_tps_speedup_lo"] <= s["output_tps_speedup"] <= s["output_tps_speedup_hi"]
    assert s["output_tps_verdict"] == verdict and s["user_tps_verdict"] == verdict


def test_paired_interval_keeps_the_point_estimate_and_pairs_by_prompt():
    off, on = _records(12, 10.0, 0.6), _records(12, 9.8, 0.6)
    s = _paired(off, on)
    off_row, on_row = _row("off", 1, off), _row("ngram", 1, on)
    assert s["output_tps_speedup"] == on_row["output_tps"] / off_row["output_tps"]
    assert s["user_tps_speedup"] == on_row["user_tps_mean"] / off_row["user_tps_mean"]
    # the same requests in another order (c > 1 finishes prompts out of order): matched by prompt id
    assert _paired(off, on[::-1])["output_tps_speedup_lo"] == pytest.approx(s["output_tps_speedup_lo"], rel=0.02)


def test_points_without_records_fall_back_to_the_unpaired_interval():
    """An old folder whose records are gone: each point's own log SE, as if independent (wider)."""
    off, on = _row("off", 1, _records(12, 10.0, 0.6)), _row("ngram", 1, _records(12, 9.8, 0.6))
    (s,) = speedup_rows([off, on])
    assert s["interval_from"] == "bootstrap over requests"
    assert s["output_tps_verdict"] == un.NOISE  # the answer pairing corrects


def test_fixture_c1_speedup_interval_excludes_one():
    """The README's worked example: SD on is slower at c=1 once its prompts are paired with SD off's (the
    unpaired interval was [0.49–1.49], 'within noise')."""
    rd = ResultsDir(SAMPLE)  # read only
    sp = {s["concurrency"]: s for s in speedup_rows(rd.summary_rows(), rd.prompt_units)}
    c1 = sp[1]
    assert c1["interval_from"] == "paired bootstrap over 11 prompts"
    assert c1["output_tps_speedup_hi"] < 1.0 and c1["output_tps_verdict"] == un.SLOWER
    assert c1["output_tps_speedup_lo"] == pytest.approx(0.78, abs=0.02)
    assert c1["output_tps_speedup_hi"] == pytest.approx(0.94, abs=0.02)


def test_intervals_are_seeded_and_reproducible():
    recs = _records(15, 10.0, 0.3)
    a, b = _row("off", 1, recs), _row("off", 1, recs)
    assert (a["output_tps_log_se"], a["al_speedbench_lo"]) == (b["output_tps_log_se"], b["al_speedbench_lo"])


def test_a_resample_with_no_duration_is_dropped_without_a_warning():
    """Σ den = 0 in some resamples (a zero-length request): dropped quietly, the spread of the rest kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's divide-by-zero RuntimeWarning showed in every test run
        se = un.log_se_of_ratio([4, 6, 8], [0.0, 2.0, 4.0])
    assert se is not None and se > 0


def test_al_interval_brackets_the_headline_al():
    recs = [
        make_record(chunk_tokens=c, request_id=f"r{i}", prompt_id=f"p{i}")
        for i, c in enumerate([(1, 2, 3), (1, 4, 7), (1, 3, 5), (1, 2, 6), (1, 5, 9), (1, 2, 3)])
    ]
    row = _row("ngram", 1, recs)
    assert row["al_speedbench_lo"] < row["al_speedbench"] < row["al_speedbench_hi"]
    assert row["al_speedbench"] == pytest.approx(sum(c / 3 for c in (3, 7, 5, 6, 9, 3)) / 6)


def test_repeats_give_the_interval_when_there_are_several():
    def row(sd, rep, tps):
        return speedup_input(sd, rep, tps, output_tps_log_se=0.001, user_tps_log_se=0.001)

    steady = [row("off", r, 10.0) for r in (1, 2, 3)] + [
        row("ngram", r, x) for r, x in ((1, 12.0), (2, 12.2), (3, 11.8))
    ]
    sp = speedup_rows(steady)
    assert {s["interval_from"] for s in sp} == {"3 repeats"}
    assert all(s["output_tps_verdict"] == un.PAYS for s in sp)
    # the same mean speedup with repeats that swing both ways: each point alone looks sure, together noise
    swing = [row("off", r, 10.0) for r in (1, 2, 3)] + [row("ngram", r, x) for r, x in ((1, 15.0), (2, 7.0), (3, 14.0))]
    assert {s["output_tps_verdict"] for s in speedup_rows(swing)} == {un.NOISE}


def test_failed_requests_feeding_a_speedup_are_flagged():
    off = _row("off", 1, _records(6, 10.0, 0.1))
    bad = _records(6, 5.0, 0.1)
    bad[2] = dataclasses.replace(bad[2], status="failed", error_kind="http_500")
    on = _row("ngram", 1, bad)
    (s,) = speedup_rows([off, on])
    assert "1 of 6 measured requests did not end ok" in s["flags"] and "ngram-k3-c1" in s["flags"]
    (clean,) = speedup_rows([off, _row("ngram", 1, _records(6, 5.0, 0.1))])
    assert clean["flags"] == ""


def test_crossover_text_follows_the_numbers():
    # the demo's case: 0.96x at c=1, 1.03x at c=4, both within noise: not "SD pays at every concurrency"
    sp = [
        {
            "run": None,
            "model": "m",
            "engine": "vllm",
            "isl": None,
            "sd_label": "ngram-k3",
            "concurrency": c,
            "output_tps_speedup": x,
            "user_tps_speedup": x,
            "output_tps_verdict": un.NOISE,
            "user_tps_verdict": un.NOISE,
        }
        for c, x in ((1, 0.96), (4, 1.03))
    ]
    (x,) = crossovers(sp)
    assert x["output_tps_crossover_status"] == "mixed"
    assert x["output_tps_crossover_text"] == (
        "none in range (≥ 1 at the highest concurrency, < 1 at c=1); within noise at c=1,4"
    )
    assert verdict_text(sp) == "within noise at every measured concurrency"
    sp[1]["output_tps_verdict"] = un.PAYS
    assert verdict_text(sp) == "within noise at c=1; SD pays at c=4"
    assert "SD pays at every" not in crossover([(1, 0.96), (4, 1.03)]).describe()
    assert crossover([(1, 1.2), (2, 1.1)]).describe() == "none in range (speedup ≥ 1 at every concurrency)"
    assert (
        verdict_text([{"concurrency": 1, "output_tps_speedup": 1.2}])
        == "SD pays at every measured concurrency (no interval)"
    )


def test_setting_al_interval_resamples_distinct_prompts():
    """A setting pools its concurrency points, where each prompt is measured once per point: measuring the
    same 8 prompts at 4 concurrencies is not 32 independent prompts (the interval was ~2x too narrow)."""
    sizes = [(1, 2, 3), (1, 4, 7), (1, 3, 5), (1, 2, 6), (1, 5, 9), (1, 2, 3), (1, 3, 4), (1, 4, 8)]

    def point(c):
        return [
            make_record(chunk_tokens=s, request_id=f"c{c}#{i}", prompt_id=f"p{i}", conversation_id=f"c{c}#{i}")
            for i, s in enumerate(sizes)
        ]

    (one,) = category_acceptance(point(1))
    (pooled,) = category_acceptance([r for c in (1, 2, 4, 8) for r in point(c)])
    assert pooled.al_speedbench == pytest.approx(one.al_speedbench)
    width_one = one.al_speedbench_hi - one.al_speedbench_lo
    width_pooled = pooled.al_speedbench_hi - pooled.al_speedbench_lo
    assert width_pooled == pytest.approx(width_one, rel=0.2)
    assert pooled.tokens_per_step_mean_hi - pooled.tokens_per_step_mean_lo == pytest.approx(width_one, rel=0.2)
