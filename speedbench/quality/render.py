"""Terminal rendering of {"rows": [...], "notes": [...]} documents (quality, recommendation, validation)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import click

# the columns worth a terminal per document kind; json output always carries every field
QUALITY_COLUMNS = [
    "concurrency",
    "sd_label",
    "category",
    "pairs",
    "exact_match_rate",
    "first_divergence_min",
    "al",
    "bleu_vs_off",
    "rouge_l_vs_off",
    "bertscore_vs_off",
    "bleu_vs_dataset",
    "rouge_l_vs_dataset",
    "bertscore_vs_dataset",
]
RECOMMEND_COLUMNS = [
    "concurrency",
    "sd_method",
    "category",
    "prompts",
    "recommended_draft_length",
    "verdict",
    "expected_speedup",
    "speedup_lo",
    "speedup_hi",
    "runner_up",
    "runner_up_speedup",
    "extrapolated",
    "expected_tokens_per_step",
    "measured_draft_lengths",
]
VALIDATION_COLUMNS = [
    "concurrency",
    "sd_method",
    "draft_length",
    "repeats",
    "f_draft",
    "tokens_per_step_measured",
    "tokens_per_step_in_sample",
    "holdout_fit_draft_lengths",
    "tokens_per_step_holdout",
    "tokens_per_step_holdout_error_pct",
    "tokens_per_step_holdout_tolerance",
    "holdout_within_tolerance",
    "cost_ratio_measured",
    "speedup_measured",
    "speedup_holdout",
    "speedup_holdout_error_pct",
]


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def render_rows(doc: dict, fmt: str, title: str, columns: Sequence[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    # rich's table (~20 ms) only for the table format: the CLI imports this module's columns at every start
    from rich.console import Console
    from rich.table import Table

    rows = doc.get("rows") or []
    cols = list(columns or [])
    for r in rows:  # per-k columns (speedup_k1, ...) appear only in some documents
        cols += [k for k in r if k.startswith("speedup_k") and k not in cols]
    if not cols and rows:
        cols = list(rows[0])
    table = Table(title=title, show_lines=False)
    for c in cols:
        table.add_column(c.replace("_", " "), overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in cols))
    console = Console()
    console.print(table)
    for n in doc.get("notes") or []:
        console.print(f"  - {n}", highlight=False, soft_wrap=True)
