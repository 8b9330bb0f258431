"""`speedbench compare`: runs side by side, only when they sent exactly the same token ids and generated alike
(the rule: speedbench.report.comparable)."""

from __future__ import annotations

from collections.abc import Sequence

from speedbench.report.cells import Section, fmt, isl_text
from speedbench.report.load import ReportData

COMPARE_NOTE = (
    "All runs sent the same token ids (prompt fingerprint and ids sha256 match) with the same output "
    "length, EOS policy, sampling and engine version. 'vs ref' = this "
    "row's output tok/s / the reference's at the same ISL and concurrency; the reference is the "
    "first run's row with the same SD label, else the first run's SD-off row. speedup = SD on / "
    "SD off within the same run."
)


def compare_rows(data: ReportData) -> list[dict]:
    ref_run = data.runs[0].label
    ref = {(r["isl"], r["concurrency"], r["sd_label"]): r for r in data.rows if r["run"] == ref_run}
    ref_off = {(r["isl"], r["concurrency"]): r for r in data.rows if r["run"] == ref_run and r["sd_method"] == "off"}
    sp = {(s["run"], s["isl"], s["concurrency"], s["sd_label"]): s for s in data.speedups}
    out = []
    for r in sorted(
        data.rows,
        key=lambda r: (
            r["isl"] or 0,
            r["concurrency"],
            [x.label for x in data.runs].index(r["run"]),
            r["sd_method"] != "off",
            r["sd_label"],
        ),
    ):
        base = ref.get((r["isl"], r["concurrency"], r["sd_label"])) or ref_off.get((r["isl"], r["concurrency"]))
        s = sp.get((r["run"], r["isl"], r["concurrency"], r["sd_label"]), {})
        out.append(
            {
                "isl": r["isl"],
                "concurrency": r["concurrency"],
                "run": r["run"],
                "engine": r["engine"],
                "model": r["model"],
                "sd_label": r["sd_label"],
                "output_tps": r["output_tps"],
                "output_tps_per_gpu": r["output_tps_per_gpu"],
                "user_tps_mean": r["user_tps_mean"],
                "ttft_p50_ms": r["ttft_p50_ms"],
                "e2e_p50_ms": r["e2e_p50_ms"],
                "e2e_p99_ms": r["e2e_p99_ms"],
                "al_speedbench": r.get("al_speedbench"),
                "tokens_per_step": r["tokens_per_step"],
                "al_drafted": r["al_drafted"],
                "speedup_out": s.get("output_tps_speedup"),
                "vs_ref_out": r["output_tps"] / base["output_tps"] if base and base["output_tps"] else None,
                "ref": f"{base['run']} {base['sd_label']}" if base else None,
            }
        )
    return out


def compare_section(rows: Sequence[dict], allowed_differences: Sequence[str] = ()) -> Section:
    headers = [
        "ISL",
        "conc",
        "run",
        "engine",
        "SD",
        "out tok/s",
        "out/GPU",
        "user tok/s",
        "TTFT p50",
        "E2E p50",
        "E2E p99",
        "AL SPEED-Bench",
        "tok/step pooled",
        "AL drafted",
        "speedup out",
        "vs ref",
    ]
    body = [
        [
            isl_text(r["isl"]),
            str(r["concurrency"]),
            r["run"],
            r["engine"],
            r["sd_label"],
            fmt(r["output_tps"], "{:.1f}"),
            fmt(r["output_tps_per_gpu"], "{:.1f}"),
            fmt(r["user_tps_mean"], "{:.1f}"),
            fmt(r["ttft_p50_ms"], "{:.0f}"),
            fmt(r["e2e_p50_ms"], "{:.0f}"),
            fmt(r["e2e_p99_ms"], "{:.0f}"),
            fmt(r.get("al_speedbench")),
            fmt(r["tokens_per_step"]),
            fmt(r["al_drafted"]),
            fmt(r["speedup_out"], "{:.2f}x"),
            fmt(r["vs_ref_out"], "{:.2f}x"),
        ]
        for r in rows
    ]
    note = COMPARE_NOTE
    if allowed_differences:  # compared on request although they generated differently: say so beside the numbers
        note = (
            note.replace(" with the same output length, EOS policy, sampling and engine version", "")
            + " Generation settings DIFFER (compared on request): "
            + "; ".join(allowed_differences)
            + "."
        )
    return Section("compare", "Side by side (same prompt set)", headers, body, note, left={2, 3, 4})
