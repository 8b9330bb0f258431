import numpy as np

from speedbench.load.schedule import ArrivalSchedule, PromptOrder


def test_poisson_schedule_mean_rate_and_seeding():
    a = ArrivalSchedule(50.0, "poisson", seed=3).offsets(5000)
    assert a[0] == 0.0 and np.all(np.diff(a) >= 0)
    rate = (len(a) - 1) / a[-1]
    assert 45 < rate < 55
    gaps = np.diff(a)
    assert 0.7 < gaps.std() / gaps.mean() < 1.3     # exponential gaps: coefficient of variation ~1
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
