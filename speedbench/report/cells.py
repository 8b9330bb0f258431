"""The report's table model: a Section (title, headers, string cells, note) and the formatting of its cells,
shared by the section builders (sections, energy, conditions, compare) and the renderers (table, html, plots)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from speedbench.metrics.flags import point_flags


@dataclass
class Section:
    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    left: set[int] = field(default_factory=set)  # indices of left-aligned (text) columns


def point_order(r: dict) -> tuple:
    """The reading order of point rows in every report table and plot: run, engine, ISL, SD off before SD on,
    SD label, concurrency."""
    return (r.get("run") or "", r["engine"], r["isl"] or 0, r["sd_method"] != "off", r["sd_label"], r["concurrency"])


def fmt(v: Any, spec: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return spec.format(v)


def isl_text(isl: int | None) -> str:
    return "native" if isl is None else str(isl)


def ok_cell(r: dict) -> str:
    """ok/sent, what did not end ok (failed, cancelled, never sent), and the point's flags."""
    cell = f"{r['ok']}/{r['sent']}"
    extra = [
        f"{r[k]} {label}"
        for k, label in (("failed", "failed"), ("cancelled", "cancelled"), ("not_sent", "unsent"))
        if r.get(k)
    ]
    if extra:
        cell += f" ({', '.join(extra)})"
    tags = [t for t, _ in point_flags(r) if not t.endswith(" NOT OK")]  # counted in the brackets already
    return " ".join([cell] + tags)


def interval_cell(v: Any, lo: Any, hi: Any, spec: str = "{:.2f}", unit: str = "") -> str:
    """'1.03x [0.95–1.12]'; the bare value when there is no interval."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    text = spec.format(v) + unit
    if lo is None or hi is None:
        return text
    return f"{text} [{spec.format(lo)}–{spec.format(hi)}]"


def value_cell(v: Any) -> str:
    """Any JSON value of a quality or recommendation document as one cell (lists and dicts flattened)."""
    if isinstance(v, float):
        return fmt(v, "{:.4g}")
    if isinstance(v, (list, tuple)):
        return ", ".join(value_cell(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={value_cell(x)}" for k, x in v.items())
    return fmt(v)
