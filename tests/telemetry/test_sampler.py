"""The NVML sampler on a fake pynvml: rate, the window cut, a lost GPU, and n/a without NVML."""

from __future__ import annotations

import sys
import time

import pytest

from speedbench.metrics.energy import point_energy
from speedbench.telemetry.nvml import GpuSampler
from tests.telemetry import fake_nvml


def test_samples_every_gpu_at_least_10_hz_and_energy_matches_power():
    with GpuSampler(0.05, fake_nvml.make([300.0, 150.0])) as s:
        time.sleep(0.3)
        t0 = time.perf_counter_ns()
        time.sleep(1.0)
        t1 = time.perf_counter_ns()
        time.sleep(0.2)
    per_gpu = [x for x in s.samples if x.gpu == 0 and t0 <= x.t_ns <= t1]
    assert len(per_gpu) >= 10  # >= 10 Hz over the 1 s window
    assert {x.gpu for x in s.samples} == {0, 1} and s.unavailable is None
    e = point_energy(s.samples, t0, t1, s.gpus)
    assert e.energy_j == pytest.approx(450.0 * (t1 - t0) / 1e9, rel=0.02)
    assert e.gpus[0].mean_sm_util == 87.0 and e.gpus[0].max_mem_used_mb == 3072.0


def test_power_only_gpus_are_integrated():
    with GpuSampler(0.05, fake_nvml.make([200.0], no_counter=True)) as s:
        time.sleep(0.2)
        t0 = time.perf_counter_ns()
        time.sleep(0.5)
        t1 = time.perf_counter_ns()
    e = point_energy(s.samples, t0, t1, s.gpus)
    assert e.energy_j == pytest.approx(200.0 * (t1 - t0) / 1e9, rel=0.02) and e.gpus[0].method == "power"


def test_a_lost_gpu_stops_being_sampled_and_energy_is_unknown():
    with GpuSampler(0.05, fake_nvml.make([300.0, 300.0], lose_gpu_after_s={1: 0.3})) as s:
        t0 = time.perf_counter_ns()
        time.sleep(0.8)
        t1 = time.perf_counter_ns()
    assert set(s.lost) == {1}
    e = point_energy(s.samples, t0, t1, s.gpus)
    assert e.energy_j is None and "GPU 1" in e.note


@pytest.mark.parametrize(
    "nvml,why",
    [
        (None, "NVML not installed"),
        (fake_nvml.make([1.0], init_error="Driver Not Loaded"), "Driver Not Loaded"),
        (fake_nvml.make([]), "no GPU"),
    ],
)
def test_without_nvml_nothing_fails(monkeypatch, nvml, why):
    if nvml is None:
        monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as on a machine without the package
    with GpuSampler(0.05, nvml) as s:
        pass
    assert s.samples == [] and why in s.unavailable


def test_gpu_indices_out_of_range_are_na_with_the_reason():
    with GpuSampler(0.05, fake_nvml.make([1.0, 1.0]), indices=[0, 5]) as s:
        pass
    assert s.samples == [] and "telemetry.gpus [5]" in s.unavailable
