"""The id of one sweep point, written and read in this one place (runner, REST progress, reports, quality).

``ngram-k3-c4`` = SD setting label + concurrency; a sweep with ``load.repeats > 1`` gives every point its
repeat: ``ngram-k3-c4-r2``. The id names the point's records file, so it is a plain folder-safe name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config imports nothing from here; keep this module import-light for metrics
    from speedbench.config import BenchmarkConfig, SDConfig

_ID = re.compile(r"^(?P<sd>.+)-c(?P<conc>\d+)(?:-r(?P<repeat>\d+))?$")


@dataclass(frozen=True)
class PointId:
    sd_label: str
    concurrency: int
    repeat: int | None = None  # None: the sweep measured each point once (no -r suffix)

    def __str__(self) -> str:
        return f"{self.sd_label}-c{self.concurrency}" + (f"-r{self.repeat}" if self.repeat is not None else "")

    @property
    def repeat_index(self) -> int:
        """1-based repeat; points of a sweep without repeats are repeat 1."""
        return self.repeat or 1

    @classmethod
    def parse(cls, text: str) -> PointId | None:
        """The id's parts, or None for an id not written by the runner (a merge prefixes the engine name:
        ``vllm-sd-off-c1`` still parses, with sd_label ``vllm-sd-off``)."""
        m = _ID.match(text or "")
        if not m:
            return None
        return cls(m["sd"], int(m["conc"]), int(m["repeat"]) if m["repeat"] else None)


def point_name(sd: SDConfig, conc: int, repeat: int = 1, repeats: int = 1) -> str:
    """``ngram-k3-c4``; with repeats > 1 every point carries its repeat: ``ngram-k3-c4-r2``."""
    return str(PointId(sd.label, conc, repeat if repeats > 1 else None))


def planned_points(cfg: BenchmarkConfig) -> list[str]:
    """Every point id of a sweep, in the order the runner measures them (SD, then concurrency, then repeat)."""
    n = cfg.load.repeats
    return [point_name(sd, c, r, n) for sd in cfg.sd for c in cfg.load.concurrency for r in range(1, n + 1)]


def repeat_of(point_id: str) -> int:
    """Repeat index of a point id (``ngram-k3-c4-r2`` -> 2); 1 when the sweep had no repeats."""
    parsed = PointId.parse(point_id)
    return parsed.repeat_index if parsed else 1
