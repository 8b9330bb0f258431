"""A stand-in for ``pynvml``: GPUs drawing constant power, their energy counter driven by the real clock."""

from __future__ import annotations

import time
import types


class NVMLError(Exception):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


def make(
    watts: list[float],
    lose_gpu_after_s: dict[int, float] | None = None,
    no_counter: bool = False,
    init_error: str | None = None,
) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    t0 = time.perf_counter()
    calls = {"power": 0}
    lose = lose_gpu_after_s or {}

    def check(h):
        if h in lose and time.perf_counter() - t0 > lose[h]:
            raise NVMLError_GpuIsLost("GPU is lost")

    def init():
        if init_error:
            raise NVMLError(init_error)

    def power(h):
        check(h)
        calls["power"] += 1
        return int(watts[h] * 1000)

    def energy(h):
        if no_counter:
            raise NVMLError("Not Supported")
        check(h)
        return int(watts[h] * (time.perf_counter() - t0) * 1000)

    mod.NVMLError, mod.NVMLError_GpuIsLost = NVMLError, NVMLError_GpuIsLost
    mod.nvmlInit, mod.nvmlShutdown = init, lambda: None
    mod.nvmlDeviceGetCount = lambda: len(watts)
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetPowerUsage = power
    mod.nvmlDeviceGetTotalEnergyConsumption = energy
    mod.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=87, memory=40)
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=3 * 2**30, total=80 * 2**30)
    mod.calls = calls
    return mod
