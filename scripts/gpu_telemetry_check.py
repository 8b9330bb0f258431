"""Sample NVML on a real GPU machine and show what a point's energy would be (run where a GPU is at hand).

    python scripts/gpu_telemetry_check.py [--seconds 10] [--interval 0.05]

Prints per GPU the sample rate reached, energy over the middle of the run from the energy counter and,
as a cross-check, from integrated power (the two should agree within a few percent), mean power, SM
utilisation and memory used.  Start a load on the GPU (e.g. a speedbench sweep) to see non-idle figures.
Exits 2 with one line where NVML is not available.
"""
from __future__ import annotations

import argparse
import sys
import time

from speedbench.metrics.energy import GpuSample, point_energy
from speedbench.telemetry.nvml import GpuSampler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=0.05)
    a = ap.parse_args()
    with GpuSampler(a.interval) as s:
        if s.unavailable:
            print(f"gpu_telemetry_check: {s.unavailable}", file=sys.stderr)
            return 2
        time.sleep(a.seconds * 0.1)
        t0 = time.perf_counter_ns()
        time.sleep(a.seconds * 0.8)
        t1 = time.perf_counter_ns()
        time.sleep(a.seconds * 0.1)
    window = (t1 - t0) / 1e9
    by_counter = point_energy(s.samples, t0, t1, s.gpus)
    power_only = [GpuSample(x.t_ns, x.gpu, x.power_w, None, x.sm_util, x.mem_used_mb) for x in s.samples]
    by_power = point_energy(power_only, t0, t1, s.gpus)
    print(f"window {window:.2f} s, {len(s.gpus)} GPU(s), lost: {s.lost or 'none'}")
    for g, p in zip(by_counter.gpus, by_power.gpus):
        n = sum(1 for x in s.samples if x.gpu == g.gpu and t0 <= x.t_ns <= t1)
        print(f"GPU {g.gpu}: {n / window:.1f} samples/s (largest gap {g.max_gap_s or 0:.3f} s); "
              f"energy {g.energy_j if g.energy_j is None else round(g.energy_j, 1)} J by {g.method}, "
              f"{p.energy_j if p.energy_j is None else round(p.energy_j, 1)} J by power; "
              f"mean {((g.energy_j or 0) / window):.1f} W; SM {g.mean_sm_util}%; memory {g.max_mem_used_mb} MiB")
    print(f"total: {by_counter.energy_j} J ({by_counter.note or 'every GPU covered'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
