"""One entry point for `report` and `compare`: ReportData + format + destination -> output."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from speedbench.report import plots as pl
from speedbench.report.cells import Section
from speedbench.report.comparable import check_comparable
from speedbench.report.compare import compare_rows, compare_section
from speedbench.report.export import dumps, report_document, summary_csv, write_tables
from speedbench.report.html import render_html
from speedbench.report.load import ReportData, ReportError
from speedbench.report.sections import build_sections
from speedbench.report.table import PIPE_WIDTH, render_sections_markdown, render_sections_terminal

FORMATS = ("table", "md", "csv", "json", "html")
DEFAULT_NAMES = {
    "table": "report.txt",
    "md": "report.md",
    "csv": "points.csv",
    "json": "report.json",
    "html": "report.html",
}


@dataclass
class Output:
    text: str | None = None  # for stdout (None when written to files)
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_dir_target(out: Path) -> bool:
    """A destination is a folder when it exists as one or has no file suffix."""
    return out.is_dir() or (not out.exists() and out.suffix == "")


def _title(data: ReportData, kind: str) -> str:
    names = ", ".join(r.label for r in data.runs)
    return f"speedbench {kind}: {names}"


def render(
    data: ReportData,
    fmt: str,
    out: Path | None = None,
    kind: str = "report",
    lead: Sequence[Section] = (),
    compare_rows: list[dict] | None = None,
) -> Output:
    """Render every section; `lead` sections (compare's side-by-side table) come first.

    With a folder as `out`, also write the plots as PNG and every table as CSV + parquet next to the report.
    """
    sections = build_sections(data)
    at = 1 if sections and sections[0].key == "headline" else 0
    sections[at:at] = list(lead)  # the answer at a glance stays first
    res = Output(warnings=[n for n in (run.missing_note() for run in data.runs) if n])
    out_dir = out if out is not None and is_dir_target(out) else None
    to_dir = out_dir is not None
    target = (out_dir / DEFAULT_NAMES[fmt]) if out_dir is not None else out
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    if fmt == "html" or to_dir:
        plots = pl.make_plots(data)
        if not pl.available():
            res.warnings.append("matplotlib is not installed: no plots (pip install 'speedbench[report]')")
    text: str
    if fmt == "table":
        text = _terminal_text(sections, to_file=target is not None)
        if target is None:
            return res  # printed straight to the terminal
    elif fmt == "md":
        text = render_sections_markdown(sections, _title(data, kind))
    elif fmt == "csv":
        text = summary_csv(data)
    elif fmt == "json":
        text = dumps(report_document(data, kind, compare_rows))
    elif fmt == "html":
        note = None if plots else "No plots: matplotlib is not installed (pip install 'speedbench[report]')."
        text = render_html(sections, plots, data.runs, _title(data, kind), note)
        if target is None:
            target = data.runs[0].path / DEFAULT_NAMES["html"]
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if target is None:
        res.text = text
        return res
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    res.written.append(target)
    if out_dir is not None:
        res.written += write_tables(data, out_dir)
        for p in plots:
            (out_dir / "plots").mkdir(exist_ok=True)
            (out_dir / "plots" / f"{p.name}.png").write_bytes(p.png)
            res.written.append(out_dir / "plots" / f"{p.name}.png")
    return res


def report_output(
    paths: Sequence[str | Path],
    fmt: str,
    out: Path | None = None,
    kind: str = "report",
    labels: Sequence[str] | None = None,
    allow_generation_mismatch: bool = False,
) -> Output:
    """What `speedbench report/compare` and REST ``/runs/{id}/report`` / ``/compare`` return, built once.

    Raises ReportError (NotComparable when `compare` is refused by speedbench.report.comparable)."""

    data = ReportData.load(paths, labels)
    lead, rows, allowed = [], None, []
    if kind == "compare":
        empty = [f"{r.label} ({p})" for r, p in zip(data.runs, paths) if not r.points]
        if empty:  # a side with nothing to compare would show as a column of dashes, exit 0
            raise ReportError(
                f"nothing to compare in {', '.join(empty)}: no finished points (continue it with "
                "speedbench sweep --resume, or leave it out)"
            )
        allowed = check_comparable(
            [(r.label, r.manifest) for r in data.runs], allow_generation_mismatch=allow_generation_mismatch
        )
        rows = compare_rows(data)
        lead = [compare_section(rows, allowed)]
    res = render(data, fmt, out, kind, lead, rows)
    res.warnings[:0] = [f"compared although generation settings differ: {d}" for d in allowed]
    return res


def _terminal_text(sections: Sequence[Section], to_file: bool) -> str:
    if not to_file:
        render_sections_terminal(sections)
        return ""
    console = Console(width=PIPE_WIDTH, record=True, file=io.StringIO(), color_system=None)
    render_sections_terminal(sections, console)
    return console.export_text()
