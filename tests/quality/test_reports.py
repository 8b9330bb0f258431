"""quality.json / recommendation.json / gamma_validation.json from a synthetic results folder."""

import json

import pytest

from speedbench.config import expand_draft_lengths
from speedbench.core.point_id import repeat_of
from speedbench.metrics.summary import summarize_point
from speedbench.quality.gamma_report import build_gamma, write_gamma
from speedbench.quality.points import load_points
from speedbench.quality.quality_report import build_quality
from speedbench.quality.recommend import NO_COST
from speedbench.results import ResultsDir
from tests.conftest import make_record

IDS = [5, 6, 7, 8, 9, 10, 11, 12]


def _rec(pid, cat, sizes, gap_ms, ids, drafted=None, accepted=None, k=0):
    tokens, n = [], 0
    for s in sizes:
        n += s
        tokens.append(n)
    sd = None
    if drafted is not None:
        hist = [0] * (k + 1)
        for a in accepted:
            hist[a] += 1
        sd = {
            "drafts": len(accepted),
            "draft_tokens": k * len(accepted),
            "accepted_tokens": sum(accepted),
            "accepted_per_position": [sum(hist[i + 1 :]) for i in range(k)],
            "source": "test",
        }
    return make_record(
        chunk_tokens=tuple(tokens),
        chunk_gap_ms=gap_ms,
        prompt_id=pid,
        category=cat,
        output_ids=list(ids[:n]),
        text=" ".join(map(str, ids[:n])),
        completion_tokens=n,
        sd=sd,
        sd_per_step_drafted=drafted,
        sd_per_step_accepted=accepted,
    )


def _write_point(rd, records, sd_label, method, k, repeat):
    pid = f"{sd_label}-c1-r{repeat}"
    rd.append_records(pid, records)
    rd.append_point(
        summarize_point(
            records,
            point_id=pid,
            engine="vllm",
            sd_label=sd_label,
            sd_method=method,
            draft_length=k,
            concurrency=1,
            isl=None,
        )
    )


@pytest.fixture
def results(tmp_path):
    rd = ResultsDir(tmp_path).create({"config": {"data": {"split": "qualitative-mini"}}})
    for rep in (1, 2):
        # SD off: 1 prefill chunk + 7 one-token steps of 10 ms
        _write_point(
            rd,
            [_rec("coding-000", "Coding", [1] * 8, 10, IDS), _rec("math-000", "Math", [1] * 8, 10, IDS)],
            "sd-off",
            "off",
            None,
            rep,
        )
        # k=2: Coding drafts every step and accepts both (3 tokens/step); Math never drafts; steps cost 12 ms
        _write_point(
            rd,
            [
                _rec("coding-000", "Coding", [1, 3, 3, 1], 12, IDS, [2, 2], [2, 2], 2),
                _rec("math-000", "Math", [1] * 8, 12, IDS[:3] + [0] * 5, [], [], 2),
            ],
            "ngram-k2",
            "ngram",
            2,
            rep,
        )
    return tmp_path


def test_repeat_ids_and_draft_length_expansion():
    assert repeat_of("ngram-k3-c4-r2") == 2 and repeat_of("ngram-k3-c4") == 1
    sds = expand_draft_lengths([{"method": "off"}, {"method": "ngram", "num_speculative_tokens": 3}], [1, 2, 5])
    assert [(s["method"], s.get("num_speculative_tokens")) for s in sds] == [
        ("off", None),
        ("ngram", 1),
        ("ngram", 2),
        ("ngram", 5),
    ]


def test_quality_rows_pair_by_prompt_and_flag_divergence(results):
    q = build_quality(load_points(results), {}, None, "off in tests")
    rows = {(r["sd_label"], r["category"]): r for r in q["rows"]}
    assert rows[("ngram-k2", "Coding")]["exact_match_rate"] == 1.0
    assert rows[("ngram-k2", "Math")]["first_divergence_min"] == 3
    assert rows[("ngram-k2", "all")]["pairs"] == 4 and rows[("ngram-k2", "all")]["exact_match_rate"] == 0.5
    assert rows[("sd-off", "all")]["exact_match_rate"] == 1.0  # repeat 2 vs repeat 1: the noise floor
    assert rows[("ngram-k2", "Coding")]["al"] == 3.0
    assert any("NOT computed" in n for n in q["notes"])


def test_gamma_model_matches_synthetic_measurement(results):
    rec, val = build_gamma(load_points(results))
    v = val["rows"][0]
    # decode steps: Coding 3 (2 drafted, 3 tokens each, then 1) + Math 7 (none drafted) = 10 for 14 tokens
    assert v["f_draft"] == pytest.approx(2 / 10)
    assert v["tokens_per_step_measured"] == pytest.approx(14 / 10)
    assert v["tokens_per_step_in_sample"] == pytest.approx(v["tokens_per_step_measured"])
    assert v["cost_ratio_measured"] == pytest.approx(1.2)
    assert v["speedup_measured"] == pytest.approx((14 / 10) / 1.2) and v["repeats"] == 2
    assert v["holdout_fit_draft_lengths"] is None  # nothing smaller than k=2 was measured
    # one measured draft length: the step cost at any other k is unknown, so nothing is recommended
    # (the old model held the cost constant and so always favoured the longest draft)
    by_cat = {r["category"]: r for r in rec["rows"]}
    assert set(by_cat) == {"Coding", "Math", "all"}
    assert all(r["verdict"] == NO_COST and r["recommended_draft_length"] is None for r in by_cat.values())
    assert any("f_draft" in n for n in rec["notes"])


def test_write_gamma_files(results):
    write_gamma(results)
    for name in ("recommendation.json", "gamma_validation.json"):
        doc = json.loads((results / name).read_text())
        assert set(doc) == {"rows", "notes"} and doc["rows"]


def test_point_names_carry_repeats_only_when_repeating():
    from speedbench.config import LoadConfig, SDConfig
    from speedbench.core.point_id import point_name

    assert LoadConfig().repeats == 1
    sd = SDConfig(method="ngram", num_speculative_tokens=3)
    assert point_name(sd, 4) == "ngram-k3-c4"
    assert point_name(sd, 4, 2, 3) == "ngram-k3-c4-r2"


def test_report_shows_the_held_out_validation(tmp_path):
    from speedbench.report.load import ReportData
    from speedbench.report.render import render
    from tests.quality.synth import write_results

    write_results(tmp_path, {"Slow": (3.0, 0.0), "Fast": (0.0, -2.0)}, [1, 2, 4], (1.0, 0.02), prompts=10)
    _, val = write_gamma(tmp_path)
    k4 = next(v for v in val["rows"] if v["draft_length"] == 4)
    text = render(ReportData.load([str(tmp_path)]), "md", None, "report", (), None).text
    assert "Draft-length model vs measurement (held-out draft lengths)" in text
    assert "tokens_per_step_holdout_error_pct" in text and f"{k4['tokens_per_step_holdout_error_pct']:.4g}" in text
