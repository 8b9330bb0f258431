"""Crossover concurrency: first concurrency after which SD-on / SD-off stays below 1."""

import math

import pytest

from speedbench.report.analysis import crossover, position_acceptance, speedups, sum_counters


def test_interpolates_on_log2_concurrency():
    x = crossover([(1, 1.5), (2, 1.2), (4, 0.8), (8, 0.6)])
    assert x.status == "crossover" and (x.below, x.above) == (2, 4)
    assert x.concurrency == pytest.approx(2**1.5)  # halfway between log2(2) and log2(4)


def test_a_dip_that_recovers_is_not_the_crossover():
    x = crossover([(16, 0.5), (1, 1.2), (2, 0.9), (4, 1.1), (8, 0.7)])  # order of input does not matter
    assert (x.below, x.above) == (4, 8)
    assert x.concurrency == pytest.approx(2 ** (2 + 0.1 / 0.4))


@pytest.mark.parametrize(
    "points,status",
    [
        ([(1, 1.2), (4, 1.1)], "always_pays"),
        ([(1, 1.2), (2, 0.9), (4, 1.05)], "mixed"),  # ends above 1, but it does not pay everywhere either
        ([(1, 0.9), (2, 0.8)], "never_pays"),
        ([], "no_data"),
        ([(1, None), (2, float("nan"))], "no_data"),
    ],
)
def test_no_crossover_in_range(points, status):
    x = crossover(points)
    assert x.status == status and x.concurrency is None
    assert "none in range" in x.describe() or status == "no_data"


def test_exactly_one_counts_as_paying_and_missing_points_are_skipped():
    x = crossover([(1, 1.0), (2, None), (4, 0.5)])
    assert (x.below, x.above) == (1, 4) and x.concurrency == pytest.approx(1.0)


def test_speedups_pair_with_sd_off_of_the_same_run_and_concurrency():
    def row(run, sd, c, tps):
        return {
            "run": run,
            "engine": "e",
            "isl": None,
            "concurrency": c,
            "sd_label": sd,
            "draft_length": 3,
            "sd_method": "off" if sd == "off" else "ngram",
            "output_tps": tps,
            "user_tps_mean": tps / c,
        }

    rows = [
        row("a", "off", 1, 10.0),
        row("a", "ng", 1, 15.0),
        row("b", "off", 1, 20.0),
        row("b", "ng", 1, 10.0),
        row("a", "ng", 2, 9.0),
    ]  # no SD-off at c=2: no speedup
    sp = {(s["run"], s["concurrency"]): s for s in speedups(rows)}
    assert set(sp) == {("a", 1), ("b", 1)}
    assert sp["a", 1]["output_tps_speedup"] == pytest.approx(1.5)
    assert sp["b", 1]["user_tps_speedup"] == pytest.approx(0.5)


def test_position_acceptance_absolute_and_conditional():
    total = sum_counters(
        [
            {"drafts": 6, "draft_tokens": 18, "accepted_tokens": 7, "accepted_per_position": [4, 2]},
            None,
            {"drafts": 4, "draft_tokens": 12, "accepted_tokens": 6, "accepted_per_position": [4, 1, 1]},
        ]
    )
    assert total["drafts"] == 10 and total["accepted_per_position"] == [8, 3, 1]
    pos = position_acceptance(total)
    assert [p["absolute"] for p in pos] == pytest.approx([0.8, 0.3, 0.1])
    assert [p["conditional"] for p in pos] == pytest.approx([0.8, 3 / 8, 1 / 3])
    assert position_acceptance({"drafts": 0}) == [] and position_acceptance(None) == []
    assert not any(math.isnan(p["absolute"]) for p in pos)
