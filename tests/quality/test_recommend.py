"""Recommendations on simulated results where the right draft length is known (tests/quality/synth.py)."""

import json

import pytest

from speedbench.quality.draft_plan import plan_draft_lengths
from speedbench.quality.gamma_report import build_gamma
from speedbench.quality.points import load_points
from speedbench.quality.recommend import INSUFFICIENT, NO_COST, RECOMMENDED, WITHIN_NOISE
from tests.quality.synth import true_speedups, write_results

SLOW = (3.0, 0.0)  # conditional acceptance 0.95 at every position
FAST = (0.0, -2.0)  # 0.50, 0.12, 0.02, ...: falls fast
FLAT = (1.0, 0.02)  # step cost ratio r(k) = c0 + c1 k
STEEP = (0.8, 0.9)


def _rows(path, cats, ks, cost, **kw):
    write_results(path, cats, ks, cost, **kw)
    rec, val = build_gamma(load_points(path))
    return {r["category"]: r for r in rec["rows"]}, val["rows"]


def _best(ab, cost):
    s = true_speedups(*ab, *cost)
    k = max(s, key=s.get)
    return (k if s[k] > 1.0 else "off"), s


@pytest.mark.parametrize("cost", [FLAT, STEEP], ids=["flat-cost", "steep-cost"])
def test_recommends_the_known_best_draft_length(tmp_path, cost):
    rows, _ = _rows(tmp_path, {"Slow": SLOW, "Fast": FAST}, [1, 2, 4], cost)
    for cat, ab in (("Slow", SLOW), ("Fast", FAST)):
        best, truth = _best(ab, cost)
        r = rows[cat]
        assert r["recommended_draft_length"] == best, (cat, truth)
        assert r["verdict"] == RECOMMENDED and r["p_beats_runner_up"] >= 0.95
        if best != "off":  # the model recovers the true speedup; the interval is about its estimate
            assert r["expected_speedup"] == pytest.approx(truth[best], rel=0.02)
            assert r["speedup_lo"] < r["expected_speedup"] < r["speedup_hi"]
    # the contrasts the model exists for: slow decay + flat cost -> long drafts; fast decay or steep cost -> short
    if cost == FLAT:
        assert rows["Slow"]["recommended_draft_length"] == 8 and rows["Fast"]["recommended_draft_length"] == 2
    else:
        assert rows["Slow"]["recommended_draft_length"] == 1 and rows["Fast"]["recommended_draft_length"] == "off"


def test_extrapolates_beyond_the_largest_measured_draft_length(tmp_path):
    rows, _ = _rows(tmp_path, {"Slow": SLOW, "Fast": FAST}, [1, 2], FLAT)
    assert rows["Slow"]["recommended_draft_length"] == 8 and rows["Slow"]["extrapolated"] is True
    assert rows["Slow"]["verdict"] == RECOMMENDED
    assert rows["Fast"]["recommended_draft_length"] == 2 and rows["Fast"]["extrapolated"] is False
    # the fitted trend carries the acceptance out: k=8 within 5 % of the truth from two measured positions
    assert rows["Slow"]["speedup_k8"] == pytest.approx(true_speedups(*SLOW, *FLAT)[8], rel=0.05)


def test_one_measured_draft_length_recommends_nothing(tmp_path):
    rows, _ = _rows(tmp_path, {"Slow": SLOW}, [3], FLAT)
    assert rows["Slow"]["verdict"] == NO_COST and rows["Slow"]["recommended_draft_length"] is None


def test_too_few_prompts_is_insufficient_data(tmp_path):
    rows, _ = _rows(tmp_path, {"Slow": SLOW}, [1, 4], FLAT, prompts=3)
    assert rows["Slow"]["verdict"].startswith(INSUFFICIENT) and rows["Slow"]["recommended_draft_length"] is None
    assert "3 prompts" in rows["Slow"]["verdict"] and "expected_speedup" not in rows["Slow"]


def test_indistinguishable_draft_lengths_are_within_noise(tmp_path):
    even = (0.0, 0.0)  # p = 0.5 everywhere: E(1) = 1.5, E(2) = 1.75
    cost = (1.0, 0.2)  # r(1) = 1.2, r(2) = 1.4: S(1) = S(2) = 1.25
    truth = true_speedups(*even, *cost)
    assert truth[1] == pytest.approx(truth[2])
    rows, _ = _rows(tmp_path, {"Even": even}, [1, 2, 4], cost)
    r = rows["Even"]
    assert r["verdict"].startswith(WITHIN_NOISE) and {r["recommended_draft_length"], r["runner_up"]} == {1, 2}


def test_all_row_pools_per_request_figures_of_every_category(tmp_path):
    rows, val = _rows(tmp_path, {"Slow": SLOW, "Fast": FAST}, [1, 2, 4], FLAT)
    assert rows["all"]["drafted_steps"] == rows["Slow"]["drafted_steps"] + rows["Fast"]["drafted_steps"]
    assert rows["all"]["prompts"] == 80
    for v in val:  # the pooled model reproduces the measured tokens/step at every measured k
        assert v["tokens_per_step_in_sample"] == pytest.approx(v["tokens_per_step_measured"], rel=0.01)


def test_held_out_draft_length_is_predicted_from_smaller_ones(tmp_path):
    _, val = _rows(tmp_path, {"Slow": SLOW, "Fast": FAST}, [1, 2, 4], FLAT)
    k4 = next(v for v in val if v["draft_length"] == 4)
    assert k4["holdout_fit_draft_lengths"] == "1,2"
    assert k4["holdout_within_tolerance"] is True and abs(k4["tokens_per_step_holdout_error_pct"]) < 2
    assert k4["speedup_holdout"] == pytest.approx(k4["speedup_measured"], rel=0.03)
    # from k=1 alone the trend is unknown (held constant): Fast's falling acceptance makes that miss, and it says so
    k2 = next(v for v in val if v["draft_length"] == 2)
    assert k2["acceptance_trend_identifiable"] is False and k2["holdout_within_tolerance"] is False


def test_auto_draft_lengths_add_the_fewest_points():
    assert plan_draft_lengths([3]) == ([3, 8], [8])
    assert plan_draft_lengths([8]) == ([1, 8], [1])
    assert plan_draft_lengths([1]) == ([1, 8], [8])
    assert plan_draft_lengths([2, 5]) == ([2, 5], [])


def test_sweep_draft_lengths_auto_says_what_it_added():
    from click.testing import CliRunner

    from speedbench.api.config_sources import resolve_config
    from speedbench.cli import main

    resolved = resolve_config(preset="cpu-demo", sd_spec="off,ngram:3", flags={"draft_lengths": "auto"}, use_env=False)
    assert [(s.method, s.num_speculative_tokens if s.enabled else None) for s in resolved.config.sd] == [
        ("off", None),
        ("ngram", 3),
        ("ngram", 8),
    ]
    assert "added k=8 (largest k of interest)" in resolved.origin("sd")
    res = CliRunner().invoke(
        main, ["sweep", "--preset", "cpu-demo", "--sd", "off,ngram:8", "--draft-lengths", "auto", "--dry-run"]
    )
    assert res.exit_code == 0, res.output + res.stderr
    assert "configured k=8; added k=1 (smallest k of interest)" in res.stderr
    assert '"num_speculative_tokens": 1' in res.stdout


def test_recommend_command_prints_verdicts_and_validation(tmp_path):
    from click.testing import CliRunner

    from speedbench.cli import main

    write_results(tmp_path, {"Slow": SLOW}, [1, 2, 4], FLAT, prompts=10)
    res = CliRunner().invoke(main, ["recommend", str(tmp_path), "--validation", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {r["verdict"] for r in doc["recommendation"]["rows"]} == {RECOMMENDED}
    assert [r["draft_length"] for r in doc["validation"]["rows"]] == [1, 2, 4]
    assert (tmp_path / "gamma_validation.json").is_file()


def test_one_request_per_category_still_has_uncertainty(tmp_path):
    # 11 categories of one prompt each, as the vLLM-CPU test sweeps qualitative-mini: resampling within a
    # category of one request would never vary, and the held-out tolerance would collapse to 0
    cats = {f"C{i}": (1.0 - 0.3 * i, -0.5) for i in range(11)}
    _, val = _rows(tmp_path, cats, [1, 2, 4], FLAT, prompts=1, tokens=32)
    k4 = next(v for v in val if v["draft_length"] == 4)
    assert k4["tokens_per_step_measured_sd"] > 0.01
    assert k4["tokens_per_step_holdout_tolerance"] > 0.02
    assert k4["tokens_per_step_holdout_lo"] < k4["tokens_per_step_holdout"] < k4["tokens_per_step_holdout_hi"]
