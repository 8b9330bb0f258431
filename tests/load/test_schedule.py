import numpy as np
import pytest

from speedbench.load.schedule import ArrivalSchedule, PromptOrder, prompt_budget


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


def test_prompt_order_in_order_and_seeded_shuffle():
    assert [PromptOrder(3).index(i) for i in range(5)] == [0, 1, 2, 0, 1]
    a = [PromptOrder(10, True, 7).index(i) for i in range(10)]
    assert sorted(a) == list(range(10)) and a != list(range(10))
    assert a == [PromptOrder(10, True, 7).index(i) for i in range(10)]


def test_warmup_prompts_are_never_measured_prompts():
    order = PromptOrder(10, warmup_pool=4)
    measured = {order.index(i) for i in range(6)}
    warm = {order.warmup_index(j) for j in range(4)}
    assert measured == set(range(6)) and warm == {6, 7, 8, 9}
    shuffled = PromptOrder(10, True, 3, warmup_pool=4)
    assert not {shuffled.index(i) for i in range(50)} & {shuffled.warmup_index(j) for j in range(50)}


def test_prompt_budget_measures_each_prompt_once_by_default():
    b = prompt_budget(88, 32, 32, None)
    assert (b.measured, b.warmup_pool, b.repeats) == (56, 32, 0)  # every prompt the warm-up leaves
    assert prompt_budget(88, 4, 4, 20).measured == 20


@pytest.mark.parametrize("n,c,w,req,need", [(88, 64, 64, None, 128), (88, 32, 32, 60, 92), (11, 1, 1, 11, 12)])
def test_point_needing_more_prompts_is_refused_with_the_count(n, c, w, req, need):
    with pytest.raises(ValueError, match=f"needs {need} distinct prompts .* has {n}:.*allow_repeats"):
        prompt_budget(n, c, w, req)


def test_allowed_repeats_are_counted_and_warmup_keeps_its_own_prompts():
    b = prompt_budget(88, 64, 64, None, allow_repeats=True)
    assert b.measured == 128 and b.warmup_pool == 44 and b.repeats == 128 - 44
    with pytest.raises(ValueError, match="allow_repeats"):
        prompt_budget(88, 4, 4, None, by_duration=True)
    with pytest.raises(ValueError, match="warm-up needs prompts of its own"):
        prompt_budget(1, 1, 1, None, allow_repeats=True)
