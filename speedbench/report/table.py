"""The sweep table people read first: one row per (SD setting, concurrency), speedup vs SD off."""
from __future__ import annotations

import math
from typing import Optional, Sequence

from speedbench.metrics.summary import speedup_rows

COLUMNS = [
    # (header, key, format)
    ("engine", "engine", "{}"),
    ("SD", "sd_label", "{}"),
    ("conc", "concurrency", "{}"),
    ("ok/sent", None, None),
    ("out tok/s", "output_tps", "{:.1f}"),
    ("user tok/s", "user_tps_mean", "{:.1f}"),
    ("TTFT p50 ms", "ttft_p50_ms", "{:.0f}"),
    ("TTFT p99 ms", "ttft_p99_ms", "{:.0f}"),
    ("E2E p50 ms", "e2e_p50_ms", "{:.0f}"),
    ("E2E p99 ms", "e2e_p99_ms", "{:.0f}"),
    ("tok/step", "tokens_per_step", "{:.2f}"),
    ("AL drafted", "al_drafted", "{:.2f}"),
    ("speedup out", "_speedup_out", "{:.2f}x"),
    ("speedup user", "_speedup_user", "{:.2f}x"),
]

LEGEND = ("tok/step = output tokens per streamed step (SPEED-Bench's AL, all steps); "
          "AL drafted = 1 + accepted/drafts over steps that drafted (server counters); "
          "speedup = SD-on / SD-off at the same concurrency (output TPS, mean user TPS).")


def _fmt(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def _ok_cell(r: dict) -> str:
    """ok/sent, plus what did not end ok: failed, cancelled, never sent, and a failed point's mark."""
    cell = f"{r['ok']}/{r['sent']}"
    extra = [f"{r[k]} {label}" for k, label in (("failed", "failed"), ("cancelled", "cancelled"),
                                                 ("not_sent", "unsent")) if r.get(k)]
    if extra:
        cell += f" ({', '.join(extra)})"
    return cell + (" POINT FAILED" if r.get("status", "complete") != "complete" else "")


def table_rows(rows: Sequence[dict]) -> list[list[str]]:
    done = [r for r in rows if r.get("status", "complete") == "complete"]  # failed points: no speedup
    sp = {(s["engine"], s["isl"], s["concurrency"], s["sd_label"]): s for s in speedup_rows(done)}
    out = []
    for r in sorted(rows, key=lambda r: (r["engine"], r["isl"] or 0, r["sd_method"] != "off", r["sd_label"],
                                         r["concurrency"])):
        s = sp.get((r["engine"], r["isl"], r["concurrency"], r["sd_label"]), {})
        r = {**r, "_speedup_out": s.get("output_tps_speedup"), "_speedup_user": s.get("user_tps_speedup")}
        cells = []
        for _, key, fmt in COLUMNS:
            cells.append(_ok_cell(r) if key is None else _fmt(fmt, r.get(key)))
        out.append(cells)
    return out


def render_terminal(rows: Sequence[dict], title: Optional[str] = None, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=title, header_style="bold")
    for header, key, _ in COLUMNS:
        t.add_column(header, justify="left" if key in ("engine", "sd_label") else "right")
    for cells in table_rows(rows):
        t.add_row(*cells)
    console.print(t)
    console.print(LEGEND, style="dim")


def render_markdown(rows: Sequence[dict]) -> str:
    headers = [h for h, _, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    return "\n".join(lines) + "\n\n" + LEGEND + "\n"
