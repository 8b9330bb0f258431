import numpy as np
import pytest

from speedbench.load.schedule import ArrivalSchedule, PromptOrder, grid_note, measured_order, prompt_budget


def test_poisson_schedule_mean_rate_and_seeding():
    a = ArrivalSchedule(50.0, "poisson", seed=3).offsets(5000)
    assert a[0] == 0.0 and np.all(np.diff(a) >= 0)
    rate = (len(a) - 1) / a[-1]
    assert 45 < rate < 55
    gaps = np.diff(a)
    assert 0.7 < gaps.std() / gaps.mean() < 1.3  # exponential gaps: coefficient of variation ~1
    assert np.array_equal(a, ArrivalSchedule(50.0, "poisson", seed=3).offsets(5000))
    assert not np.array_equal(a, ArrivalSchedule(50.0, "poisson", seed=4).offsets(5000))


def test_schedule_is_stable_when_extended():
    s = ArrivalSchedule(10.0, "poisson", seed=1)
    first = [s.offset(i) for i in range(10)]
    s.offset(9000)
    assert [s.offset(i) for i in range(10)] == first


def test_constant_schedule():
    a = ArrivalSchedule(4.0, "constant").offsets(5)
    assert np.allclose(a, [0, 0.25, 0.5, 0.75, 1.0])


CATS = [c for c in "abcdefghijk" for _ in range(8)]  # qualitative-mini's layout: 11 categories in blocks of 8


def test_prompt_order_file_and_seeded_shuffle():
    assert [PromptOrder(["c"] * 3).index(i) for i in range(5)] == [0, 1, 2, 0, 1]
    a = [PromptOrder(["c"] * 10, "shuffled", 7).index(i) for i in range(10)]
    assert sorted(a) == list(range(10)) and a != list(range(10))
    assert a == [PromptOrder(["c"] * 10, "shuffled", 7).index(i) for i in range(10)]


def test_stratified_order_interleaves_categories_in_every_prefix():
    order = measured_order(CATS, "stratified", seed=0)
    assert sorted(order) == list(range(88))  # every prompt once
    for r in range(1, 9):  # every prefix of r rounds holds each of the 11 categories r times
        prefix = [CATS[i] for i in order[: 11 * r]]
        assert all(prefix.count(c) == r for c in "abcdefghijk")
    assert len({CATS[i] for i in order[:8]}) == 8  # a cut at 8 spans 8 categories (file order: one)
    assert order == measured_order(CATS, "stratified", seed=0) != measured_order(CATS, "stratified", seed=1)
    # unequal categories: each spread over the order in proportion (no category bunched at one end)
    uneven = ["big"] * 30 + ["small"] * 3
    pos = [k for k, i in enumerate(measured_order(uneven, "stratified", 3)) if uneven[i] == "small"]
    assert len(pos) == 3 and pos[0] < 11 and 11 <= pos[1] < 22 and pos[2] >= 22


def test_prompt_budget_measures_every_prompt_once_by_default():
    b = prompt_budget(88, 32, None)
    assert (b.measured, b.in_flight, b.repeats) == (88, 32, 0)  # the warm-up takes no prompt
    assert prompt_budget(88, 4, 20).measured == 20
    assert prompt_budget(88, 4, None, closed_loop=False).in_flight is None


def test_concurrency_above_the_prompt_count_runs_with_its_in_flight_level_said():
    budgets = {c: prompt_budget(88, c, None) for c in (32, 64, 128, 512)}
    assert [b.in_flight for b in budgets.values()] == [32, 64, 88, 88]
    assert all(b.measured == 88 and b.repeats == 0 for b in budgets.values())
    note = grid_note(88, budgets, "qualitative-mini")
    assert note is not None and "concurrency 128, 512 above the 88 prompts of qualitative-mini" in note
    assert "throughput split" in note and "\n" not in note
    assert "speed-bench:qualitative" in grid_note(88, {128: budgets[128]}, "x")  # 880 prompts would fill 128
    assert grid_note(88, {c: budgets[c] for c in (32, 64)}, "qualitative-mini") is None


@pytest.mark.parametrize("n,req", [(88, 92), (11, 12)])
def test_point_needing_more_prompts_is_refused_with_the_count(n, req):
    with pytest.raises(ValueError, match=f"need {req} distinct prompts, the prompt set has {n}:.*allow_repeats"):
        prompt_budget(n, 1, req)


def test_allowed_repeats_are_whole_passes_and_counted():
    b = prompt_budget(88, 64, None, allow_repeats=True)
    assert (b.measured, b.in_flight, b.repeats) == (176, 64, 88)  # two passes: every prompt twice
    assert prompt_budget(88, 4, None, allow_repeats=True).measured == 88
    assert prompt_budget(88, 512, None, allow_repeats=True, by_duration=True).in_flight == 512
    with pytest.raises(ValueError, match="allow_repeats"):
        prompt_budget(88, 4, None, by_duration=True)
