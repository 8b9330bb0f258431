"""The report's sections in reading order (headline, performance, crossover, categories, positions, turns, documents)
built from a ReportData; the table type and cell formatting are in speedbench.report.cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speedbench.core.point_id import repeat_of
from speedbench.report import analysis as an
from speedbench.report import conditions as cond
from speedbench.report.cells import Section, fmt, interval_cell, isl_text, ok_cell, point_order, value_cell
from speedbench.report.energy import RATIO_NOTE, energy_cost
from speedbench.report.load import EXTRA_SECTIONS

AL_NOTES = {
    "category_tokens_per_step": "tok/step pooled = Σ output tokens / Σ streamed steps of the category's requests, "
    "every step counted (token-weighted chunk acceptance length).",
    "category_al_speedbench": "AL SPEED-Bench = mean over conversations of each one's Σ tokens / Σ streamed "
    "steps over all its turns, EOS stripped (SPEED-Bench's acceptance length and aggregation: the "
    "headline AL; for single-turn prompts the mean over requests).",
    "category_al_drafted": "AL drafted = 1 + Σ accepted / Σ drafts from the server's per-request SD counters: "
    "acceptance length over verify steps that carried drafts (steps without a draft "
    "excluded, so it is ≥ tok/step).",
}
MATRIX_TAIL = " mean = unweighted mean over the categories shown; all = every request pooled."
PERF_NOTE = (
    "out tok/s = Σ output tokens / (first send .. last activity) of the point's measured requests (a "
    "stream that timed out ends at its last chunk; the EOS token counted); /GPU divides by every GPU the "
    "engine holds (tensor_parallel_size × data_parallel_size); user tok/s "
    "= mean per-request (tokens−1)/(last−first chunk); latencies in ms. AL SPEED-Bench = mean over "
    "conversations of each one's tokens per streamed step over all its turns, EOS stripped "
    "(SPEED-Bench's acceptance length and aggregation), with its 95 % bootstrap interval over "
    "prompts; tok/step pooled = Σ tokens / Σ steps; AL drafted = 1 + accepted / drafts "
    "over steps that drafted, from the measured requests' own SD metrics (server counters as the "
    "fallback). speedup = SD on / SD off at the same concurrency and ISL (output TPS, mean user TPS), "
    "[95 % interval: paired bootstrap over the prompts both points measured]. Flags in ok/sent: "
    "CLIENT-BOUND (the load generator fell behind: loop lag P99 over "
    "its limit, mean in-flight < 99 % of the concurrency while requests waited to be sent, over 1 % of the "
    "slot time kept empty before sends, or a send-delay P99 over 1 % of a request's life in points of 100 "
    "requests or more; the point's reason says which), N NOT OK "
    "(requests that failed, were cancelled or never sent), MERGED N / CHUNK≠STEP N (chunks that are "
    "not one engine step each: chunk-based AL over-counts), ACCEPTANCE ≠ (per-request and server "
    "acceptance differ by more than the tolerance), NO LATENCY (no token chunk could be timed)."
)
CROSS_NOTE = (
    "crossover = first concurrency after which the speedup stays below 1, interpolated on "
    "log2(concurrency) between the two measured points that bracket it."
)
POS_NOTE = (
    "absolute = P(draft position i accepted) per drafted step; cond/drafted = P(position i accepted | "
    "position i−1 accepted) per drafted step (counters pooled over the setting's concurrency points); "
    "cond SPEED-Bench = SPEED-Bench's conditional acceptance rate P(chunk length ≥ i+1 | length ≥ i) "
    "from the histogram of every streamed chunk (prefill chunks and steps that drafted nothing "
    "included, EOS stripped), lower where many steps draft nothing."
)


def performance(rows: Sequence[dict], speedup_rows: Sequence[dict], multi_run: bool) -> Section:
    sp = {
        (s["run"], s["engine"], s["isl"], s["concurrency"], s["sd_label"], s.get("repeat", 1)): s for s in speedup_rows
    }
    headers = (["run"] if multi_run else []) + [
        "engine",
        "SD",
        "ISL",
        "conc",
        "ok/sent",
        "out tok/s",
        "out/GPU",
        "user tok/s",
        "TTFT p50",
        "TTFT p99",
        "E2E p50",
        "E2E p99",
        "AL SPEED-Bench",
        "tok/step pooled",
        "AL drafted",
        "speedup out",
        "speedup user",
    ]
    # out/GPU needs the manifest's TP size; the bare sweep table (summary rows only) has none
    per_gpu = any(r.get("output_tps_per_gpu") is not None for r in rows)
    if not per_gpu:
        headers.remove("out/GPU")
    body = []
    order = sorted(rows, key=lambda r: (*point_order(r), r.get("point_id") or ""))  # repeats by point id
    for r in order:
        s = sp.get(
            (r.get("run"), r["engine"], r["isl"], r["concurrency"], r["sd_label"], repeat_of(r.get("point_id", ""))), {}
        )
        body.append(
            ([r["run"]] if multi_run else [])
            + [
                r["engine"],
                r["sd_label"],
                isl_text(r["isl"]),
                str(r["concurrency"]),
                ok_cell(r),
                fmt(r["output_tps"], "{:.1f}"),
            ]
            + ([fmt(r.get("output_tps_per_gpu"), "{:.1f}")] if per_gpu else [])
            + [
                fmt(r["user_tps_mean"], "{:.1f}"),
                fmt(r["ttft_p50_ms"], "{:.0f}"),
                fmt(r["ttft_p99_ms"], "{:.0f}"),
                fmt(r["e2e_p50_ms"], "{:.0f}"),
                fmt(r["e2e_p99_ms"], "{:.0f}"),
                interval_cell(r.get("al_speedbench"), r.get("al_speedbench_lo"), r.get("al_speedbench_hi")),
                fmt(r["tokens_per_step"]),
                fmt(r["al_drafted"]),
                interval_cell(
                    s.get("output_tps_speedup"),
                    s.get("output_tps_speedup_lo"),
                    s.get("output_tps_speedup_hi"),
                    unit="x",
                ),
                interval_cell(
                    s.get("user_tps_speedup"), s.get("user_tps_speedup_lo"), s.get("user_tps_speedup_hi"), unit="x"
                ),
            ]
        )
    n = 1 if multi_run else 0
    return Section(
        "performance",
        "Throughput and latency per ISL and concurrency",
        headers,
        body,
        PERF_NOTE,
        left=set(range(n + 2)),
    )


def crossover(cross_rows: Sequence[dict], multi_run: bool) -> Section:
    headers = (["run"] if multi_run else []) + [
        "engine",
        "SD",
        "ISL",
        "concurrencies",
        "crossover (out tok/s)",
        "crossover (user tok/s)",
    ]
    body = [
        ([c["run"]] if multi_run else [])
        + [
            c["engine"],
            c["sd_label"],
            isl_text(c["isl"]),
            ",".join(map(str, c["concurrencies"])),
            c["output_tps_crossover_text"],
            c["user_tps_crossover_text"],
        ]
        for c in cross_rows
    ]
    return Section(
        "crossover",
        "Crossover concurrency: where SD stops paying",
        headers,
        body,
        CROSS_NOTE,
        left=set(range(len(headers))),
    )


def category_matrix(matrix: Sequence[dict], categories: Sequence[str], measure_title: str, key: str) -> Section:
    headers = ["model / SD / engine"] + list(categories) + ["mean", "all"]
    body = [
        [m["setting"]] + [fmt(m.get(c)) for c in categories] + [fmt(m.get("mean")), fmt(m.get("all"))] for m in matrix
    ]
    return Section(
        key, f"Acceptance per category: {measure_title}", headers, body, AL_NOTES.get(key, "") + MATRIX_TAIL, left={0}
    )


def positions(pos_rows: Sequence[dict]) -> Section:
    by_setting: dict[str, list[dict]] = {}
    for p in pos_rows:
        by_setting.setdefault(p["setting"], []).append(p)
    n = max((len(v) for v in by_setting.values()), default=0)
    headers = (
        ["model / SD / engine"]
        + [f"pos {i + 1} abs" for i in range(n)]
        + [f"pos {i + 1} cond/drafted" for i in range(n)]
        + [f"pos {i + 1} cond SPEED-Bench" for i in range(n)]
    )
    body = []
    for setting, ps in by_setting.items():
        ps = sorted(ps, key=lambda p: p["position"])
        pad = [fmt(None)] * (n - len(ps))
        body.append(
            [setting]
            + [fmt(p["absolute"]) for p in ps]
            + pad
            + [fmt(p["conditional"]) for p in ps]
            + pad
            + [fmt(p.get("conditional_speedbench")) for p in ps]
            + pad
        )
    return Section("positions", "Acceptance per draft position", headers, body, POS_NOTE, left={0})


TURN_NOTE = (
    "Multi-turn prompts send every user turn, each with the model's own earlier replies in context, "
    "so later turns have longer inputs. AL SPEED-Bench above takes one AL per conversation over all "
    "its turns, then the mean over conversations (SPEED-Bench's rule); here each turn of the point's "
    "conversations on its own (tok/step per-req: mean over the turn's requests, EOS counted). tok/step "
    "and AL drafted as per category."
)


def turns(turn_rows: Sequence[dict]) -> Section:
    headers = [
        "model / SD / engine",
        "conc",
        "turn",
        "requests",
        "prompt len mean",
        "TTFT mean",
        "tok/step",
        "tok/step per-req",
        "AL drafted",
    ]
    body = [
        [
            t["setting"],
            str(t["concurrency"]),
            str(t["turn"]),
            str(t["requests"]),
            fmt(t["prompt_len_mean"], "{:.0f}"),
            fmt(t["ttft_mean_ms"], "{:.0f}"),
            fmt(t["tokens_per_step"]),
            fmt(t["tokens_per_step_mean"]),
            fmt(t["al_drafted"]),
        ]
        for t in turn_rows
    ]
    return Section("turns", "Acceptance per conversation turn", headers, body, TURN_NOTE, left={0})


def generic(key: str, title: str, doc: Any) -> Section:
    """A {'rows': [dict, ...], 'notes': [...] | str} document (quality, recommendation) as a table."""
    doc = doc if isinstance(doc, dict) else {"rows": doc if isinstance(doc, list) else []}
    rows = [r for r in (doc.get("rows") or []) if isinstance(r, dict)]
    headers: list[str] = []
    for r in rows:
        headers += [k for k in r if k not in headers]
    body = [[value_cell(r.get(h)) for h in headers] for r in rows]
    notes = doc.get("notes") or []
    note = notes if isinstance(notes, str) else " ".join(str(n) for n in notes)
    left = {i for i, h in enumerate(headers) if any(isinstance(r.get(h), str) for r in rows)}
    return Section(key, title, headers, body, note, left=left)


def headline(data) -> Section:
    """The answer at a glance: per SD-on setting, speedup by concurrency with intervals, best point,
    crossover, acceptance, and the verdict the intervals allow."""
    cross = {(c["run"], c["engine"], c["isl"], c["sd_label"]): c for c in data.crossovers}
    al = {o["setting"]: o for o in data.overall_rows}
    groups: dict[tuple, list[dict]] = {}
    for s in data.speedups:
        groups.setdefault((s["run"], s["engine"], s["isl"], s["sd_label"]), []).append(s)
    multi = data.multi_run
    headers = (["run"] if multi else []) + [
        "engine",
        "SD",
        "ISL",
        "speedup by concurrency",
        "tok/J ratio",
        "cost ratio",
        "best",
        "crossover",
        "AL SPEED-Bench",
        "tok/step pooled",
        "AL drafted",
        "verdict",
    ]
    body = []
    for key, g in groups.items():
        g = sorted(g, key=lambda s: (s["concurrency"], s.get("repeat", 1)))
        vals = [s for s in g if s["output_tps_speedup"] is not None]
        if not vals:
            continue
        best = max(vals, key=lambda s: s["output_tps_speedup"])
        c = cross.get(key, {})
        row0 = next(r for r in data.rows if (r["run"], r["engine"], r["isl"], r["sd_label"]) == key)
        setting = an.setting_name(row0, with_run=multi)
        a = al.get(setting, {})
        body.append(
            ([key[0]] if multi else [])
            + [
                key[1],
                key[3],
                isl_text(key[2]),
                " → ".join(
                    interval_cell(
                        s["output_tps_speedup"],
                        s.get("output_tps_speedup_lo"),
                        s.get("output_tps_speedup_hi"),
                        unit="x",
                    )
                    + f"@c{s['concurrency']}"
                    for s in vals
                ),
                ratio_by_concurrency(g, "tokens_per_joule_ratio"),
                ratio_by_concurrency(g, "cost_ratio"),
                f"{best['output_tps_speedup']:.2f}x at c={best['concurrency']}",
                c.get("output_tps_crossover_text", "-"),
                interval_cell(a.get("al_speedbench"), a.get("al_speedbench_lo"), a.get("al_speedbench_hi")),
                fmt(a.get("tokens_per_step")),
                fmt(a.get("al_drafted")),
                an.verdict_text(vals),
            ]
        )
    n = 1 if multi else 0
    return Section(
        "headline",
        "At a glance",
        headers,
        body,
        "speedup = SD-on / SD-off output tokens/s at the same concurrency (x@cN = at concurrency "
        "N) with its 95 % interval in brackets (from repeats when there are several, else a seeded "
        "bootstrap over the prompts, one resample for SD on and off, which ran the same prompts); SD "
        "pays where the whole interval is above 1, and a speedup "
        "whose interval holds 1.0 is within noise; crossover on output tokens/s. AL SPEED-Bench "
        "(mean over conversations of tokens per step over all turns, EOS stripped; interval over "
        "distinct prompts), tok/step pooled and AL drafted pool every "
        "measured request of the setting (see below). " + RATIO_NOTE,
        left=set(range(n + 3)) | {n + 7, len(headers) - 1},
    )


def ratio_by_concurrency(group: Sequence[dict], key: str) -> str:
    """``0.91x@c1 → 0.80x@c8`` of an SD-on/off ratio, or n/a where no point of the setting has one."""
    vals = [(s["concurrency"], s.get(key)) for s in group if s.get(key) is not None]
    return " → ".join(f"{v:.2f}x@c{c}" for c, v in vals) if vals else "n/a"


def build_sections(data) -> list[Section]:
    """Every section a report shows, in reading order (ReportData in, Sections out)."""

    out = [headline(data)] if data.speedups else []
    perf = performance(data.rows, data.speedups, data.multi_run)
    rule = cond.common_output_rule([run.manifest for run in data.runs])
    perf.title += f"; output: {rule}" if rule else "; output rule differs between runs (see conditions)"
    out.append(perf)
    out.append(cond.conditions(data))
    lengths = cond.lengths(data)
    if lengths is not None:
        out.append(lengths)
    out.append(energy_cost(data.rows, data.speedups, data.multi_run))
    if data.crossovers:
        out.append(crossover(data.crossovers, data.multi_run))
    if data.category_rows:
        out.append(
            category_matrix(
                data.category_matrix("al_speedbench"),
                data.categories,
                "AL SPEED-Bench (mean over conversations, EOS stripped)",
                "category_al_speedbench",
            )
        )
        out.append(
            category_matrix(
                data.category_matrix("tokens_per_step"),
                data.categories,
                "tok/step pooled (Σ tokens / Σ steps)",
                "category_tokens_per_step",
            )
        )
        if any(r["al_drafted"] is not None for r in data.category_rows):
            drafted = [m for m in data.category_matrix("al_drafted") if m.get("mean") is not None]
            out.append(
                category_matrix(
                    drafted, data.categories, "AL drafted (1 + Σ accepted / Σ drafts)", "category_al_drafted"
                )
            )
    if data.position_rows:
        out.append(positions(data.position_rows))
    if data.turn_rows:
        out.append(turns(data.turn_rows))
    for run in data.runs:
        for name, title in EXTRA_SECTIONS:
            if name in run.extras:
                suffix = f" ({run.label})" if data.multi_run else ""
                out.append(generic(name, title + suffix, run.extras[name]))
    return out
