"""Terminal (rich) and markdown renderings of report sections, and the sweep table `speedbench sweep` prints."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from speedbench.metrics.speedup import UnitsOf
from speedbench.report import analysis as an
from speedbench.report.cells import Section
from speedbench.report.sections import performance

# When stdout is not a terminal (piped to a file, CI logs) rich would squeeze tables into 80 columns and
# truncate every cell; wide tables are the point of a benchmark report, so give them room instead.
PIPE_WIDTH = 240


def _console(console=None):
    if console is not None:
        return console
    c = Console()
    return c if c.is_terminal else Console(width=PIPE_WIDTH)


def _rich_table(s: Section, title: str | None = None):
    t = Table(title=title or s.title, header_style="bold", title_justify="left")
    for i, h in enumerate(s.headers):
        t.add_column(h, justify="left" if i in s.left else "right", no_wrap=i not in s.left or i == 0, overflow="fold")
    for cells in s.rows:
        t.add_row(*cells)
    return t


def render_sections_terminal(sections: Sequence[Section], console=None) -> None:
    console = _console(console)
    for s in sections:
        console.print(_rich_table(s))
        if s.note:
            console.print(s.note, style="dim", soft_wrap=False)
        console.print()


def render_terminal(rows: Sequence[dict], title: str | None = None, console=None, units: UnitsOf | None = None) -> None:
    """The sweep table (one row per point with speedups), as printed at the end of `speedbench sweep`;
    ``units`` (the results folder's ``prompt_units``) makes the speedup intervals paired."""
    rows = [{"run": None, **r} for r in rows]
    s = performance(rows, an.speedups(rows, units), multi_run=False)
    console = _console(console)
    console.print(_rich_table(s, title))
    console.print(s.note, style="dim")


def _md_escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def section_markdown(s: Section, level: int = 2, heading: bool = True) -> str:
    lines = [f"{'#' * level} {s.title}", ""] if heading else []
    if s.rows:
        lines.append("| " + " | ".join(_md_escape(h) for h in s.headers) + " |")
        lines.append("|" + "".join(":---|" if i in s.left else "---:|" for i in range(len(s.headers))))
        lines += ["| " + " | ".join(_md_escape(c) for c in cells) + " |" for cells in s.rows]
    else:
        lines.append("(no rows)")
    if s.note:
        lines += ["", f"_{s.note}_"]
    return "\n".join(lines) + "\n"


def render_sections_markdown(sections: Sequence[Section], title: str | None = None) -> str:
    parts = [f"# {title}\n"] if title else []
    parts += [section_markdown(s) for s in sections]
    return "\n".join(parts)


def render_markdown(rows: Sequence[dict], units: UnitsOf | None = None) -> str:
    """The sweep table alone in markdown, no heading (the REST report's `format=md`)."""
    rows = [{"run": None, **r} for r in rows]
    return section_markdown(performance(rows, an.speedups(rows, units), multi_run=False), heading=False)
