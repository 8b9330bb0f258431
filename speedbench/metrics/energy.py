"""Energy of one point from GPU samples (pure): per GPU, cut to the point's measured window.

Per GPU the cumulative energy counter (NVML ``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver
loaded) is read at the window's two ends by linear interpolation between the samples that bracket them:
exact however many samples are missing in between.  A counter that goes down either wrapped (it was in
the top half of its range: the modulus is added) or was reset (driver reload): that one interval is then
integrated from power instead.  A GPU without a counter (pre-Volta) is integrated from power (trapezoids).
A GPU whose samples do not bracket the window (it disappeared, or sampling started late) makes the
point's energy unknown (None, with the reason): energy is reported for every GPU or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

COUNTER_MODULUS = 1 << 64  # NVML returns an unsigned long long


@dataclass(slots=True)
class GpuSample:
    t_ns: int  # perf_counter_ns, the records' clock
    gpu: int
    power_w: float | None = None
    energy_mj: int | None = None  # cumulative counter; None = not supported / read failed
    sm_util: float | None = None  # percent
    mem_used_mb: float | None = None


@dataclass
class GpuEnergy:
    gpu: int
    energy_j: float | None
    method: str  # "counter", "power", "counter+power" or "none"
    samples: int
    max_gap_s: float | None
    mean_sm_util: float | None
    max_mem_used_mb: float | None
    note: str | None = None


@dataclass
class PointEnergy:
    energy_j: float | None  # Σ over GPUs; None unless every GPU covers the window
    mean_power_w: float | None
    duration_s: float
    gpus: list[GpuEnergy] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _interp(t: int, ta: int, va: float, tb: int, vb: float) -> float:
    return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)


def _power_integral(pts: Sequence[tuple[int, float]], t0: int, t1: int) -> float | None:
    """Trapezoids of (t_ns, W) over [t0, t1], ends interpolated; None when the points do not bracket it."""
    if len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
        return None
    total = 0.0
    for (ta, pa), (tb, pb) in zip(pts, pts[1:]):
        lo, hi = max(ta, t0), min(tb, t1)
        if hi <= lo:
            continue
        total += (_interp(lo, ta, pa, tb, pb) + _interp(hi, ta, pa, tb, pb)) / 2 * (hi - lo) * 1e-9
    return total


def _counter_energy(samples: Sequence[GpuSample], t0: int, t1: int, modulus: int) -> tuple[float | None, bool]:
    """(joules from the counter over [t0, t1], whether a reset interval was bridged with power)."""
    pts = [s for s in samples if s.energy_mj is not None]
    if len(pts) < 2 or pts[0].t_ns > t0 or pts[-1].t_ns < t1:
        return None, False
    # unwrap into a monotone series (t_ns, joules); reset intervals take the power integral
    series = [(pts[0].t_ns, 0.0)]
    bridged = False
    for a, b in zip(pts, pts[1:]):
        ea, eb = a.energy_mj, b.energy_mj
        assert ea is not None and eb is not None  # pts holds counter readings only
        delta: float = eb - ea
        if delta < 0:
            if ea >= modulus // 2:
                delta += modulus
            else:  # reset: this interval from power, if power was read at both ends
                if a.power_w is None or b.power_w is None:
                    return None, False
                delta = (a.power_w + b.power_w) / 2 * (b.t_ns - a.t_ns) * 1e-9 * 1e3
                bridged = True
        series.append((b.t_ns, series[-1][1] + delta / 1e3))

    def at(t: int) -> float:
        for (ta, ea), (tb, eb) in zip(series, series[1:]):
            if ta <= t <= tb:
                return _interp(t, ta, ea, tb, eb)
        raise ValueError("outside the series")  # unreachable: bracketing checked above

    return at(t1) - at(t0), bridged


def gpu_energy(gpu: int, samples: Sequence[GpuSample], t0: int, t1: int, modulus: int = COUNTER_MODULUS) -> GpuEnergy:
    samples = sorted(samples, key=lambda s: s.t_ns)
    inside = [s for s in samples if t0 <= s.t_ns <= t1]
    times = [s.t_ns for s in samples if s.power_w is not None or s.energy_mj is not None]
    gaps = [(b - a) * 1e-9 for a, b in zip(times, times[1:]) if b > t0 and a < t1]
    utils = [s.sm_util for s in inside if s.sm_util is not None]
    mems = [s.mem_used_mb for s in inside if s.mem_used_mb is not None]
    base: dict[str, Any] = dict(
        gpu=gpu,
        samples=len(inside),
        max_gap_s=max(gaps) if gaps else None,
        mean_sm_util=sum(utils) / len(utils) if utils else None,
        max_mem_used_mb=max(mems) if mems else None,
    )
    joules, bridged = _counter_energy(samples, t0, t1, modulus)
    if joules is not None:
        return GpuEnergy(energy_j=joules, method="counter+power" if bridged else "counter", **base)
    power = _power_integral([(s.t_ns, s.power_w) for s in samples if s.power_w is not None], t0, t1)
    if power is not None:
        return GpuEnergy(energy_j=power, method="power", **base)
    last = max(times) if times else None
    why = (
        "no samples"
        if last is None
        else f"last sample {(t1 - last) * 1e-9:.2f} s before the window's end (GPU lost?)"
        if last < t1
        else "samples do not cover the window's start"
    )
    return GpuEnergy(energy_j=None, method="none", note=why, **base)


def point_energy(
    samples: Iterable[GpuSample],
    t0_ns: int,
    t1_ns: int,
    gpus: Sequence[int] | None = None,
    modulus: int = COUNTER_MODULUS,
) -> PointEnergy:
    """Energy of every GPU (``gpus``: those sampled at the start; a GPU that vanished still counts)."""
    by_gpu: dict[int, list[GpuSample]] = {g: [] for g in (gpus or [])}
    for s in samples:
        by_gpu.setdefault(s.gpu, []).append(s)
    duration = max(0.0, (t1_ns - t0_ns) * 1e-9)
    if not by_gpu or duration <= 0:
        return PointEnergy(None, None, duration, note="no GPU samples" if not by_gpu else "empty window")
    per = [gpu_energy(g, by_gpu[g], t0_ns, t1_ns, modulus) for g in sorted(by_gpu)]
    missing = [p for p in per if p.energy_j is None]
    if missing:
        note = "; ".join(f"GPU {p.gpu}: {p.note}" for p in missing)
        return PointEnergy(None, None, duration, per, note=f"energy unknown: {note}")
    total = sum(p.energy_j for p in per if p.energy_j is not None)  # all of them: missing ones returned above
    return PointEnergy(total, total / duration, duration, per)


def tokens_per_joule(output_tokens: int, energy_j: float | None) -> float | None:
    return output_tokens / energy_j if energy_j else None


def usd_per_million_tokens(output_tps: float, hourly_usd: float | None) -> float | None:
    """$ per million output tokens for hardware priced ``hourly_usd`` producing ``output_tps`` tokens/s."""
    if not hourly_usd or not output_tps or output_tps <= 0:
        return None
    return hourly_usd / (output_tps * 3600.0) * 1e6
