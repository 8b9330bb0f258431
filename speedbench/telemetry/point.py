"""The runner's hook: sample GPUs while a point runs, then put energy and cost on its summary.

Raw samples go to ``<results>/telemetry/<point>.jsonl`` (one JSON object per sample) so any point's energy
can be recomputed; the summary gets energy, output tokens per joule, mean power (n/a without NVML) and $
per million output tokens (when ``cost`` prices the hardware).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from speedbench.config import BenchmarkConfig
from speedbench.core.records import RequestRecord
from speedbench.metrics.energy import point_energy, tokens_per_joule, usd_per_million_tokens
from speedbench.telemetry.nvml import GpuSampler

log = logging.getLogger(__name__)
_WARNED: set[tuple[int, int]] = set()  # (GPUs sampled, GPUs held): warned once per process


def hourly_usd(cfg: BenchmarkConfig) -> float | None:
    """Price of the hardware one engine holds per hour: the node's, or GPU-hour x TP x DP."""
    c, ec = cfg.cost, cfg.engine
    if c.node_hour_usd is not None:
        return c.node_hour_usd
    if c.gpu_hour_usd is not None:
        return c.gpu_hour_usd * ec.gpu_count
    return None


class PointTelemetry:
    def __init__(self, cfg: BenchmarkConfig, nvml=None) -> None:
        self.cfg = cfg
        t = cfg.telemetry
        self.sampler = GpuSampler(t.interval_s, nvml, t.gpus) if t.gpu else None

    def __enter__(self) -> PointTelemetry:
        if self.sampler is not None:
            self.sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.sampler is not None:
            self.sampler.stop()

    def apply(self, summary, records: Sequence[RequestRecord], results_dir: Path | None) -> None:
        """Energy over the measured window (first measured start to last measured end, as output TPS) and cost."""
        summary.usd_per_mtok = usd_per_million_tokens(summary.output_tps, hourly_usd(self.cfg))
        s = self.sampler
        if s is None:
            summary.telemetry = {"gpu": "off (telemetry.gpu: false)"}
            return
        if s.unavailable:
            summary.telemetry = {"gpu": s.unavailable}
            return
        if results_dir is not None:
            out = Path(results_dir) / "telemetry" / f"{summary.point_id}.jsonl"
            out.parent.mkdir(exist_ok=True)
            out.write_text("".join(json.dumps(asdict(x)) + "\n" for x in s.samples))
        measured = [r for r in records if not r.warmup]
        if not measured:
            summary.telemetry = {"gpu": "no measured requests"}
            return
        energy = point_energy(s.samples, min(r.t_start_ns for r in measured), max(r.t_end_ns for r in measured), s.gpus)
        summary.energy_j, summary.mean_power_w = energy.energy_j, energy.mean_power_w
        summary.output_tokens_per_joule = tokens_per_joule(summary.output_tokens, energy.energy_j)
        held = self.cfg.engine.gpu_count
        scope = {}
        if self.cfg.telemetry.gpus is None and len(s.gpus) > held:  # idle GPUs would lower tokens per joule
            scope["scope"] = (
                f"energy sums all {len(s.gpus)} GPUs of the node while the engine holds {held} "
                f"(TP x DP): set telemetry.gpus to count only the engine's"
            )
            if (len(s.gpus), held) not in _WARNED:
                _WARNED.add((len(s.gpus), held))
                log.warning(scope["scope"])
        summary.telemetry = {
            "gpu": "nvml",
            "interval_s": s.interval_s,
            **energy.to_dict(),
            **({"lost": s.lost} if s.lost else {}),
            **scope,
        }
