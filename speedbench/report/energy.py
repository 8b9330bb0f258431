"""Energy and cost per point (from GPU telemetry and cost.*) and their SD-on / SD-off ratios."""

from __future__ import annotations

from collections.abc import Sequence

from speedbench.report.cells import Section, fmt, isl_text, point_order

RATIO_NOTE = (
    "tok/J ratio = SD-on / SD-off output tokens per joule (> 1x: SD saves energy per token); cost ratio "
    "= SD-on / SD-off $ per million output tokens (< 1x: SD is cheaper per token); n/a = no GPU "
    "telemetry (NVML absent) or no cost.gpu_hour_usd / cost.node_hour_usd."
)
ENERGY_NOTE = (
    "energy = Σ GPUs over the point's measured window (first measured request start to last end), from "
    "NVML energy counters (power integrated where a GPU has none); tok/J = output tokens / energy; "
    "W = mean power; $/Mtok = price per hour of the engine's GPUs (cost.gpu_hour_usd x TP x DP, or "
    "cost.node_hour_usd) / output tokens per hour x 10^6. n/a = not measured: no NVML on the machine, "
    "or a GPU stopped answering during the point (points.jsonl 'telemetry' says which)."
)


def _na(v, spec: str) -> str:
    return "n/a" if v is None else fmt(v, spec)


def energy_cost(rows: Sequence[dict], speedup_rows: Sequence[dict], multi_run: bool):
    sp = {(s["run"], s["engine"], s["isl"], s["concurrency"], s["sd_label"]): s for s in speedup_rows}
    headers = (["run"] if multi_run else []) + [
        "engine",
        "SD",
        "ISL",
        "conc",
        "out tok/s",
        "energy J",
        "tok/J",
        "W",
        "$/Mtok",
        "tok/J ratio",
        "cost ratio",
    ]
    order = sorted(rows, key=point_order)
    body = []
    for r in order:
        s = sp.get((r.get("run"), r["engine"], r["isl"], r["concurrency"], r["sd_label"]), {})
        off = r["sd_method"] == "off"
        body.append(
            ([r["run"]] if multi_run else [])
            + [
                r["engine"],
                r["sd_label"],
                isl_text(r["isl"]),
                str(r["concurrency"]),
                _na(r["output_tps"], "{:.1f}"),
                _na(r.get("energy_j"), "{:.1f}"),
                _na(r.get("output_tokens_per_joule"), "{:.3f}"),
                _na(r.get("mean_power_w"), "{:.0f}"),
                _na(r.get("usd_per_mtok"), "{:.3f}"),
                "-" if off else _na(s.get("tokens_per_joule_ratio"), "{:.2f}x"),
                "-" if off else _na(s.get("cost_ratio"), "{:.2f}x"),
            ]
        )
    n = 1 if multi_run else 0
    return Section("energy_cost", "Energy and cost per point", headers, body, ENERGY_NOTE, left=set(range(n + 2)))
