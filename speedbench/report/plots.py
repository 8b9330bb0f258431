"""Report figures as PNG bytes (matplotlib, Agg, no pyplot state): install with `pip install speedbench[report]`."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

from speedbench.report.cells import isl_text, point_order

# matplotlib (the [report] extra) is imported in the functions, only after available() found it.

PERCENTILES = ("p50", "p90", "p95", "p99")


@dataclass
class Plot:
    name: str  # file stem
    title: str
    png: bytes


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _series_label(r: dict, multi_run: bool, with_isl: bool) -> str:
    parts = ([r["run"]] if multi_run else []) + [r["engine"], r["sd_label"]]
    if with_isl:
        parts.append(f"ISL {isl_text(r['isl'])}")
    return " ".join(str(p) for p in parts)


def _log2_axis(ax, concurrencies) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(concurrencies))
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()


def speedup_plot(data) -> Plot | None:
    sp = data.speedups
    if not sp:
        return None
    with_isl = len({s["isl"] for s in sp}) > 1
    fig, axes = _figure(2)
    cross = {(c["run"], c["engine"], c["isl"], c["sd_label"]): c for c in data.crossovers}
    groups: dict[tuple, list[dict]] = {}
    for s in sp:
        groups.setdefault((s["run"], s["engine"], s["isl"], s["sd_label"]), []).append(s)
    for ax, metric, title in ((axes[0], "output_tps", "output TPS"), (axes[1], "user_tps", "user TPS (mean)")):
        for key, g in groups.items():
            g = sorted(g, key=lambda s: s["concurrency"])
            ys = [s[f"{metric}_speedup"] for s in g]
            xs = [s["concurrency"] for s in g]
            (line,) = ax.plot(
                xs,
                [math.nan if y is None else y for y in ys],
                marker="o",
                label=_series_label(g[0], data.multi_run, with_isl),
            )
            for x_, y_ in zip(xs, ys):
                if y_ is not None:
                    ax.annotate(
                        f"{y_:.2f}x",
                        (x_, y_),
                        textcoords="offset points",
                        xytext=(4, 5),
                        fontsize=8,
                        color=line.get_color(),
                    )
            x = cross.get(key, {}).get(f"{metric}_crossover")
            if x:
                ax.axvline(x, color=line.get_color(), ls=":", lw=1.2)
                ax.annotate(
                    f"crossover {x:.1f}",
                    (x, 1.0),
                    textcoords="offset points",
                    xytext=(4, 6),
                    color=line.get_color(),
                    fontsize=8,
                )
        ax.axhline(1.0, color="black", lw=1)
        # shade where SD pays (above 1) and where it costs (below), so the answer reads at a glance
        lo, hi = ax.get_ylim()
        lo, hi = min(lo, 0.95), max(hi, 1.05)
        ax.axhspan(1.0, hi, color="tab:green", alpha=0.07)
        ax.axhspan(lo, 1.0, color="tab:red", alpha=0.07)
        ax.set_ylim(lo, hi)
        side = ax.get_yaxis_transform()  # x in axes fraction, y in data: labels hug the y=1 line
        ax.text(0.995, 1.0, "SD pays ↑", transform=side, ha="right", va="bottom", fontsize=8, color="darkgreen")
        ax.text(0.995, 1.0, "SD costs ↓", transform=side, ha="right", va="top", fontsize=8, color="darkred")
        _log2_axis(ax, [s["concurrency"] for s in sp])
        ax.set_xlabel("concurrency")
        ax.set_ylabel(f"speedup, {title} (SD on / SD off)")
        ax.set_title(f"Speedup vs concurrency: {title}")
        ax.legend(fontsize=8)
    return Plot("speedup_vs_concurrency", "Speedup vs concurrency", _png(fig))


def pareto_plot(data) -> Plot | None:
    rows = [r for r in data.rows if r["user_tps_mean"] is not None and not math.isnan(r["user_tps_mean"])]
    if not rows:
        return None
    with_isl = len({r["isl"] for r in rows}) > 1
    fig, (ax,) = _figure(1, 8.0, 5.2)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["run"], r["engine"], r["isl"], r["sd_label"]), []).append(r)
    for g in groups.values():
        g = sorted(g, key=lambda r: r["concurrency"])
        off = g[0]["sd_method"] == "off"
        xs, ys = [r["user_tps_mean"] for r in g], [r["output_tps_per_gpu"] for r in g]
        ax.plot(
            xs,
            ys,
            marker="s" if off else "o",
            ls="--" if off else "-",
            label=("SD off: " if off else "SD on: ") + _series_label(g[0], data.multi_run, with_isl),
        )
        for r, x, y in zip(g, xs, ys):
            ax.annotate(f"c={r['concurrency']}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    _log_if_wide(ax, [r["user_tps_mean"] for r in rows], [r["output_tps_per_gpu"] for r in rows])
    ax.set_xlabel("user TPS (tokens/s per request, mean)")
    ax.set_ylabel("output TPS per GPU (tokens/s)")
    ax.set_title("Throughput vs per-user speed (up and right is better)")
    ax.legend(fontsize=8)
    return Plot("pareto", "Throughput–latency Pareto", _png(fig))


def _grouped_bars(ax, groups: list[str], series: dict[str, list[float | None]]) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (label, vals) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, [0 if v is None else v for v in vals], width, label=label)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)


def category_plot(data) -> Plot | None:
    if not data.category_rows:
        return None
    cats = data.categories + ["mean", "all"]
    measures = [("al_speedbench", "AL SPEED-Bench (mean over conversations, EOS stripped)")]
    if any(r["al_drafted"] is not None for r in data.category_rows):
        measures.append(("al_drafted", "AL drafted (1 + Σ accepted / Σ drafts)"))
    fig, axes = _figure(len(measures), 7.0, 4.4)
    for ax, (key, title) in zip(axes, measures):
        series = {
            m["setting"]: [m.get(c) for c in cats] for m in data.category_matrix(key) if m.get("mean") is not None
        }
        _grouped_bars(ax, cats, series)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axvline(len(cats) - 2.5, color="grey", lw=0.8, ls="--")  # categories | mean, all
        ax.set_ylabel(title)
        ax.set_title(f"Acceptance per category: {title.split(' (')[0]}")
        ax.legend(fontsize=7)
    return Plot("acceptance_per_category", "Acceptance per category", _png(fig))


def position_plot(data) -> Plot | None:
    if not data.position_rows:
        return None
    fig, axes = _figure(2)
    by: dict[str, list[dict]] = {}
    for p in data.position_rows:
        by.setdefault(p["setting"], []).append(p)
    for ax, key, title in (
        (axes[0], "absolute", "absolute: P(position i accepted)"),
        (axes[1], "conditional", "conditional: P(i accepted | i−1 accepted)"),
    ):
        for setting, ps in by.items():
            ps = sorted(ps, key=lambda p: p["position"])
            ax.plot(
                [p["position"] for p in ps],
                [math.nan if p[key] is None else p[key] for p in ps],
                marker="o",
                label=setting,
            )
        ax.set_ylim(0, 1.05)
        ax.set_xticks(sorted({p["position"] for p in data.position_rows}))
        ax.set_xlabel("draft position")
        ax.set_ylabel("acceptance rate")
        ax.set_title(title)
        ax.legend(fontsize=8)
    return Plot("acceptance_per_position", "Acceptance per draft position", _png(fig))


def _log_if_wide(ax, xs, ys) -> None:
    """Log axes when values span more than a decade (sweeps from concurrency 1 to 512 do)."""
    for vals, setter in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        vals = [v for v in vals if v and v > 0 and not math.isnan(v)]
        if vals and max(vals) / min(vals) > 10:
            setter("log")


def _ms_unit(values) -> tuple[str, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return ("s", 1e-3) if vals and max(vals) >= 10_000 else ("ms", 1.0)


# Up to this many points, grouped bars per point read best; beyond, lines over concurrency per setting.
MAX_BAR_POINTS = 8
LINESTYLES = {"p50": "-", "p90": "-.", "p95": "--", "p99": ":"}


def latency_plot(data) -> Plot | None:
    rows = sorted(data.rows, key=point_order)
    if not rows:
        return None
    with_isl = len({x["isl"] for x in rows}) > 1
    fig, axes = _figure(2, 6.4, 4.4)
    for ax, base, title in ((axes[0], "ttft", "TTFT"), (axes[1], "e2e", "E2E latency")):
        unit, scale = _ms_unit(r.get(f"{base}_{p}_ms") for r in rows for p in PERCENTILES)
        if len(rows) <= MAX_BAR_POINTS:
            labels = [
                (f"{r['run']} " if data.multi_run else "")
                + f"{r['sd_label']} c={r['concurrency']}"
                + (f" ISL {isl_text(r['isl'])}" if with_isl else "")
                for r in rows
            ]
            series = {p.upper(): [_scaled(r.get(f"{base}_{p}_ms"), scale) for r in rows] for p in PERCENTILES}
            _grouped_bars(ax, labels, series)
            ax.legend(fontsize=8)
        else:
            _latency_lines(ax, rows, base, scale, data.multi_run, with_isl)
        ax.set_ylabel(unit)
        ax.set_title(f"{title} percentiles per point")
    return Plot("latency_percentiles", "TTFT / E2E percentiles", _png(fig))


def _scaled(v, scale):
    return None if v is None else v * scale


def _latency_lines(ax, rows, base, scale, multi_run, with_isl) -> None:
    """Color = SD setting, line style = percentile; x = concurrency."""
    from matplotlib.lines import Line2D

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["run"], r["engine"], r["isl"], r["sd_label"]), []).append(r)
    color_handles = []
    for i, g in enumerate(groups.values()):
        color = f"C{i % 10}"
        xs = [r["concurrency"] for r in g]
        for p, ls in LINESTYLES.items():
            ys = [_scaled(r.get(f"{base}_{p}_ms"), scale) for r in g]
            ax.plot(xs, [math.nan if y is None else y for y in ys], ls=ls, color=color, marker=".")
        color_handles.append(Line2D([], [], color=color, label=_series_label(g[0], multi_run, with_isl)))
    style_handles = [Line2D([], [], color="black", ls=ls, label=p.upper()) for p, ls in LINESTYLES.items()]
    _log2_axis(ax, [r["concurrency"] for r in rows])
    ax.set_xlabel("concurrency")
    first = ax.legend(handles=color_handles, fontsize=7, loc="upper left")
    ax.add_artist(first)
    ax.legend(handles=style_handles, fontsize=7, loc="lower right")


PLOTS: tuple[Callable, ...] = (speedup_plot, pareto_plot, category_plot, position_plot, latency_plot)


def make_plots(data) -> list[Plot]:
    """Every plot the data supports (empty when matplotlib is not installed)."""
    if not available():
        return []
    import matplotlib

    matplotlib.use("Agg", force=True)
    return [p for p in (f(data) for f in PLOTS) if p is not None]
