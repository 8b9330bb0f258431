"""Finished points of a results folder with their raw records, and the SD-off point each one pairs with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from speedbench.config import ConfigError
from speedbench.core.point_id import repeat_of
from speedbench.core.records import RequestRecord
from speedbench.data.prompts import load_split
from speedbench.results import ResultsDir


@dataclass
class PointData:
    point: dict  # the points.jsonl entry (PointSummary as JSON)
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def point_id(self) -> str:
        return self.point["point_id"]

    @property
    def repeat(self) -> int:
        return repeat_of(self.point_id)

    @property
    def sd_on(self) -> bool:
        return self.point["sd_method"] != "off"

    @property
    def draft_length(self) -> int | None:
        return self.point.get("draft_length") if self.sd_on else None

    @property
    def group(self) -> tuple:
        """Points comparable with each other: same engine, ISL and concurrency."""
        return (self.point["engine"], self.point.get("isl"), self.point["concurrency"])


def load_points(path: str | Path) -> list[PointData]:
    rd = ResultsDir.open(path)
    out = []
    for p in rd.points():
        rp = rd.records_path(p["point_id"])
        out.append(PointData(p, rd.records(p["point_id"]) if rp.is_file() else []))
    return out


def off_reference(points: list[PointData], on: PointData) -> PointData | None:
    """The SD-off point at the same engine/ISL/concurrency, same repeat when there is one, else the first.

    For an SD-off point it is SD-off repeat 1 (itself for repeat 1): later repeats measure the noise floor.
    """
    offs = sorted((p for p in points if not p.sd_on and p.group == on.group), key=lambda p: p.repeat)
    if not on.sd_on:
        return offs[0] if offs else None
    same = [p for p in offs if p.repeat == on.repeat]
    return same[0] if same else (offs[0] if offs else None)


def dataset_references(manifest: dict) -> dict[str, str]:
    """prompt id -> the split's reference answer, for splits whose rows carry ``reference``."""

    data = (manifest.get("config") or {}).get("data") or {}
    try:
        prompts = load_split(
            data.get("split", "qualitative-mini"), data.get("categories"), data.get("prompts_per_category")
        )
    except (ConfigError, OSError):
        return {}
    return {p.id: p.reference for p in prompts if p.reference}


class QualityError(ValueError):
    """Asked for explicitly (`quality`, `recommend`), the analysis cannot answer: one line, exit 2."""


def check_inputs(points: list[PointData], path: str | Path) -> None:
    """Refuse what would print empty tables: no request records, or SD-on points without an SD-off baseline."""
    if not any(p.records for p in points):
        raise QualityError(f"no request records in {path} (no records/ files): nothing to compare")
    on = [p for p in points if p.sd_on and p.records]
    if on and not any((ref := off_reference(points, p)) is not None and ref.records for p in on):
        raise QualityError(
            f"no SD-off point with records at the concurrencies of the SD-on points in {path}: "
            f"equivalence needs the SD-off baseline (run --sd off into the same sweep)"
        )
