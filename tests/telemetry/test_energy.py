"""Energy of a point from NVML-like samples (pure), and $ per million tokens."""

from __future__ import annotations

import pytest

from speedbench.metrics.energy import GpuSample, point_energy, tokens_per_joule, usd_per_million_tokens

S = 1_000_000_000  # ns per second


def steady(
    gpu: int, watts: float, t_from: float, t_to: float, dt: float = 0.05, counter0: int = 0, modulus: int = 1 << 64
) -> list[GpuSample]:
    """A GPU drawing ``watts`` constantly, sampled every ``dt`` s: the counter (mJ) rises by watts*dt*1000."""
    out, t, n = [], t_from, 0
    while t <= t_to + 1e-9:
        mj = (counter0 + round(watts * (t - t_from) * 1000)) % modulus
        out.append(GpuSample(int(t * S), gpu, watts, mj, 50.0, 1000.0))
        n += 1
        t = t_from + n * dt
    return out


def test_constant_power_two_gpus_cut_to_the_window():
    samples = steady(0, 300.0, 0.0, 12.0) + steady(1, 100.0, 0.0, 12.0)
    e = point_energy(samples, 2 * S, 12 * S - S // 2)  # window 9.5 s, inside the sampled span
    assert e.energy_j == pytest.approx(400.0 * 9.5, rel=1e-6)
    assert e.mean_power_w == pytest.approx(400.0, rel=1e-6)
    assert [g.method for g in e.gpus] == ["counter", "counter"]
    assert e.gpus[0].energy_j == pytest.approx(300.0 * 9.5, rel=1e-6)


def test_window_ends_between_samples_are_interpolated():
    samples = [GpuSample(0, 0, 100.0, 0), GpuSample(S, 0, 300.0, 200_000)]  # 200 J in the second
    e = point_energy(samples, S // 4, 3 * S // 4)
    assert e.energy_j == pytest.approx(100.0)


def test_counter_wrap_is_unwrapped():
    modulus = 1 << 32
    samples = steady(0, 250.0, 0.0, 4.0, counter0=modulus - 300_000, modulus=modulus)
    assert any(b.energy_mj < a.energy_mj for a, b in zip(samples, samples[1:]))  # it does wrap
    e = point_energy(samples, S // 2, 3 * S + S // 2, modulus=modulus)
    assert e.energy_j == pytest.approx(250.0 * 3.0, rel=1e-6) and e.gpus[0].method == "counter"


def test_counter_reset_interval_is_bridged_with_power():
    samples = steady(0, 200.0, 0.0, 2.0) + [
        GpuSample(int(t * S), 0, 200.0, round(200 * (t - 2.05) * 1000)) for t in (2.05, 2.1, 2.5, 3.0)
    ]  # driver reload: counter restarts at 0
    e = point_energy(samples, 0, 3 * S)
    assert e.energy_j == pytest.approx(600.0, rel=1e-6) and e.gpus[0].method == "counter+power"


def test_missing_samples_are_bridged_by_the_counter_and_reported():
    samples = steady(0, 300.0, 0.0, 10.0)
    holed = [s for s in samples if not (3.0 <= s.t_ns / S <= 7.0)]  # 4 s without a sample
    holed += [GpuSample(int(5.0 * S), 0, None, None)]  # a failed read
    e = point_energy(holed, S, 9 * S)
    assert e.energy_j == pytest.approx(300.0 * 8, rel=1e-6)
    assert e.gpus[0].max_gap_s == pytest.approx(4.05, abs=0.06)


def test_power_only_gpu_is_integrated():
    samples = [GpuSample(int(t * S), 0, 100.0 + 100.0 * t, None) for t in (0.0, 1.0, 2.0)]  # 100 W -> 300 W
    e = point_energy(samples, 0, 2 * S)
    assert e.energy_j == pytest.approx(400.0) and e.gpus[0].method == "power"


def test_a_gpu_that_disappears_makes_energy_unknown_not_partial():
    samples = steady(0, 300.0, 0.0, 10.0) + steady(1, 300.0, 0.0, 4.0)  # GPU 1 lost at 4 s
    e = point_energy(samples, S, 9 * S)
    assert e.energy_j is None and e.mean_power_w is None
    assert "GPU 1" in e.note and "GPU lost" in e.note
    assert e.gpus[0].energy_j == pytest.approx(2400.0, rel=1e-6)


def test_a_gpu_without_any_sample_in_the_list_still_counts():
    e = point_energy(steady(0, 300.0, 0.0, 10.0), S, 9 * S, gpus=[0, 1])
    assert e.energy_j is None and "GPU 1: no samples" in e.note


def test_no_samples_is_na():
    e = point_energy([], 0, S)
    assert e.energy_j is None and e.note == "no GPU samples"


def test_tokens_per_joule_and_cost_arithmetic():
    assert tokens_per_joule(1000, 400.0) == 2.5 and tokens_per_joule(1000, None) is None
    # 2 GPUs at $3/GPU-hour = $6/h; 1000 tok/s = 3.6 M tok/h -> $6 / 3.6 = $1.6667 per M tokens
    assert usd_per_million_tokens(1000.0, 6.0) == pytest.approx(6.0 / 3.6)
    assert usd_per_million_tokens(0.0, 6.0) is None and usd_per_million_tokens(1000.0, None) is None
