"""What each run measured besides the numbers: output rule, caching, prompt reuse, SD-on launch differences,
what each SD label's server reported about itself, and prompts whose output length differs between SD off and
SD on (report sections; manifests in, tables out)."""

from __future__ import annotations

from speedbench.core.point_id import repeat_of
from speedbench.metrics import speed_bench as sb
from speedbench.quality.equivalence import length_differences_of
from speedbench.report.cells import Section

LENGTH_NOTE = (
    "Same prompt, same concurrency (and repeat). Greedy SD should stop where SD off stops; a prompt "
    "listed here produced a different number of tokens, so for it the speedup compares different work."
)
SHOWN = 5  # differing prompts spelled out per point


OUTPUT_KEYS = ("load.output_len", "load.fixed_length")


def output_rule(config: dict, differs: list[str] | None = None) -> str:
    """The output-length rule a run's config stands for (runs before natural length always forced the length).
    ``differs``: a merged folder's settings that differ between its sources (manifest ``config_differences``)."""
    named = [k for k in OUTPUT_KEYS if k in (differs or [])]
    if named:
        return f"differs between runs ({', '.join(named)})"
    load = (config or {}).get("load") or {}
    n = load.get("output_len")
    if n is None:
        return "not recorded"
    if "fixed_length" not in load or load["fixed_length"]:
        return f"fixed {n} tokens (EOS ignored)"
    return f"stop at EOS, cap {n} tokens"


def common_output_rule(manifests: list[dict]) -> str | None:
    rules = {output_rule(m.get("config") or {}, m.get("config_differences")) for m in manifests}
    return rules.pop() if len(rules) == 1 else None


def server_info_text(info: dict) -> str:
    """One line of what a server said about itself (manifest engine.server_info): release, SGLang's resolved
    args, the read's error; the model list only when it said nothing else."""
    parts = [f"version {info['engine_version']}"] if info.get("engine_version") else []
    parts += [f"{k}={v}" for k, v in (info.get("server_args") or {}).items()]
    if info.get("max_model_len"):
        parts.append(f"max_model_len={info['max_model_len']}")
    if not parts and info.get("served_models"):
        parts.append("models: " + ", ".join(map(str, info["served_models"])))
    if info.get("error"):
        parts.append(f"error: {info['error']}")
    return "; ".join(parts) or "nothing"


ATTACHED_UNKNOWN = "unknown (attached server)"  # a setting speedbench did not make and the server did not report


def prefix_caching(manifest: dict, configured: bool | None) -> str:
    """As the run recorded it (launched: as set; attached: unknown unless the server said); older runs: config."""
    recorded = (manifest.get("conditions") or {}).get("prefix_caching")
    if recorded is not None:
        return recorded
    if (manifest.get("engine") or {}).get("attached"):
        return ATTACHED_UNKNOWN  # older attach-mode runs recorded the config's value, which nobody applied
    return "not recorded (engine default: on)" if configured is None else "on" if configured else "off"


def prompts_rule(manifest: dict) -> str:
    """How a point without repeats spent its prompts: every prompt once, in which order, and the warm-up."""
    m = manifest.get("measurement")
    if not m:
        return (
            "each measured once per point, except the warm-up's "
            "(older run: warm-up kept the last prompts of the file order)"
        )
    order = f"{m.get('prompt_order')} order (seed {m.get('seed')})"
    return f"every prompt measured once per point, {order}; warm-up: {m.get('warmup')}"


def conditions(data) -> Section:
    multi = data.multi_run
    body = []
    for run in data.runs:
        cfg = run.manifest.get("config") or {}
        differs = run.manifest.get("config_differences") or []  # a merged folder's sources disagree on these
        eng, load = cfg.get("engine") or {}, cfg.get("load") or {}
        caching = eng.get("prefix_caching")
        repeated = sum(p.get("repeated_requests") or 0 for p in run.points)
        prompts = (
            "differs between runs (load.allow_repeats)"
            if "load.allow_repeats" in differs
            else "not recorded (older run)"
            if "allow_repeats" not in load
            else f"repeats allowed: {repeated} measured requests resent a prompt"
            if load["allow_repeats"]
            else prompts_rule(run.manifest)
        )
        rules = run.manifest.get("metric_rules") or {}
        eos = (
            "ignored: no request ends at EOS"
            if load.get("fixed_length", True)
            else rules.get("eos_token") or f"{sb.EOS_RULE} (not recorded: older run)"
        )
        rows = [
            ("output", output_rule(cfg, differs)),
            ("EOS token", eos),
            ("AL SPEED-Bench", rules.get("headline_al") or sb.HEADLINE_RULE),
            (
                "prefix caching",
                "differs between runs (engine.prefix_caching)"
                if "engine.prefix_caching" in differs
                else prefix_caching(run.manifest, caching),
            ),
            ("prompts", prompts),
        ]
        for label, diffs in (run.manifest.get("launch_differences") or {}).items():
            rows += [
                (
                    f"{label} launch vs SD off",
                    f"{d['setting']}: {d['sd_off']} -> {d['sd_on']} (set by {d['set_by']}; {d['why']})",
                )
                for d in diffs
            ]
            if not diffs:
                rows.append((f"{label} launch vs SD off", "no difference besides SD"))
        if "launch_differences" not in run.manifest:
            rows.append(("SD-on launch vs SD off", "not recorded (older run)"))
        elif (run.manifest.get("engine") or {}).get("attached"):
            rows.append(("SD-on launch vs SD off", ATTACHED_UNKNOWN))
        unverified = (run.manifest.get("engine") or {}).get("sd_unverified")
        if unverified:
            rows.append(("SD setting", f"unverified (--sd-unverified): the attached server showed {unverified}"))
        served = ((run.manifest.get("engine") or {}).get("server_info")) or {}
        rows += [(f"{label} server reported", server_info_text(info)) for label, info in served.items()]
        body += [([run.label] if multi else []) + list(r) for r in rows]
    headers = (["run"] if multi else []) + ["condition", "value"]
    return Section(
        "conditions",
        "Measurement conditions",
        headers,
        body,
        "Differences between the SD-off and SD-on launches other than SD itself can bias the speedup.",
        left=set(range(len(headers))),
    )


def length_rows(data) -> list[dict]:
    """Per SD-on point with an SD-off twin: prompts compared and those whose output length differs."""
    out = []
    for run in data.runs:
        off = {
            (r["engine"], r["isl"], r["concurrency"], repeat_of(r["point_id"])): r
            for r in run.rows
            if r["sd_method"] == "off"
        }
        for r in run.rows:
            twin = off.get((r["engine"], r["isl"], r["concurrency"], repeat_of(r["point_id"])))
            if r["sd_method"] == "off" or twin is None:
                continue
            compared, diffs = length_differences_of(
                run.digest(r["point_id"]).output_lengths, run.digest(twin["point_id"]).output_lengths
            )
            out.append(
                {
                    "run": run.label,
                    "sd_label": r["sd_label"],
                    "isl": r["isl"],
                    "concurrency": r["concurrency"],
                    "point_id": r["point_id"],
                    "compared": compared,
                    "differing": diffs,
                }
            )
    return out


def lengths(data) -> Section | None:
    rows = length_rows(data)
    if not rows:
        return None
    multi = data.multi_run
    body = [
        ([r["run"]] if multi else [])
        + [
            r["point_id"],
            str(r["compared"]),
            str(len(r["differing"])),
            ", ".join(f"{p} {a}->{b}" for p, a, b in r["differing"][:SHOWN])
            + (f" (+{len(r['differing']) - SHOWN} more)" if len(r["differing"]) > SHOWN else "")
            or "-",
        ]
        for r in rows
    ]
    headers = (["run"] if multi else []) + [
        "SD-on point",
        "prompts compared",
        "length differs",
        "prompt: SD-off -> SD-on tokens",
    ]
    return Section(
        "output_lengths",
        "Output length: SD on vs SD off",
        headers,
        body,
        LENGTH_NOTE,
        left={0, len(headers) - 1} | ({1} if multi else set()),
    )
