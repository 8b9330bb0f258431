"""One self-contained static HTML file: tables, plots as base64 PNG, the run manifest. No network to view it."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from speedbench.report.cells import Section
from speedbench.report.plots import Plot

# Which plot sits with which section (a plot with no section here goes to the "More plots" block).
PLOT_PLACE = {
    "speedup_vs_concurrency": "headline",
    "pareto": "performance",
    "latency_percentiles": "performance",
    "acceptance_per_category": "category_tokens_per_step",
    "acceptance_per_position": "positions",
}


def _env():
    return Environment(
        loader=PackageLoader("speedbench.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _get(d: Any, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def manifest_facts(manifest: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The manifest as a few readable groups of (name, value); the full JSON goes under it."""
    cfg = manifest.get("config") or {}
    sd = ", ".join(
        f"{s.get('method')}" + (f":k={s.get('num_speculative_tokens')}" if s.get("method") != "off" else "")
        for s in cfg.get("sd") or []
    )

    def kv(pairs):
        return [
            (k, "-" if v in (None, "", [], {}) else (", ".join(map(str, v)) if isinstance(v, list) else str(v)))
            for k, v in pairs
        ]

    versions = dict(_get(manifest, "engine.versions") or {})
    harness = dict(manifest.get("harness") or {})
    machine = manifest.get("machine") or {}
    gpus = machine.get("gpus") or []
    return [
        (
            "Run",
            kv(
                [
                    ("status", manifest.get("status")),
                    ("created", manifest.get("created_at")),
                    ("finished", manifest.get("finished_at")),
                    (
                        "points",
                        f"{manifest.get('points_finished', '?')} of "
                        f"{len(manifest.get('points_planned') or [])} planned",
                    ),
                    ("command", " ".join(map(str, manifest.get("command") or []))),
                ]
            ),
        ),
        (
            "Engine and model",
            kv(
                [
                    ("engine", _get(cfg, "engine.name")),
                    ("model", _get(cfg, "engine.model")),
                    ("served name", _get(cfg, "engine.served_model_name")),
                    ("tensor parallel", _get(cfg, "engine.tensor_parallel_size")),
                    ("attached to endpoint", _get(manifest, "engine.attached")),
                    ("extra args", " ".join(_get(cfg, "engine.extra_args") or [])),
                ]
                + [(f"version {k}", v) for k, v in versions.items()]
            ),
        ),
        (
            "Workload",
            kv(
                [
                    ("SD settings", sd),
                    ("concurrency", _get(cfg, "load.concurrency")),
                    ("output tokens", _get(cfg, "load.output_len")),
                    ("requests per point", _get(cfg, "load.requests_per_point") or "all prompts"),
                    ("split", _get(cfg, "data.split")),
                    ("ISL", _get(cfg, "data.isl") or "native"),
                    # runs from before multi-turn sent first turns only
                    ("turns", _get(cfg, "data.turns") or "first"),
                ]
            ),
        ),
        (
            "Prompts (token ids sent)",
            kv(
                [
                    (k, _get(manifest, f"prompts.{k}"))
                    for k in (
                        "fingerprint",
                        "ids_sha256",
                        "num_prompts",
                        "tokenizer",
                        "chat_template_applied",
                        "bos_policy",
                        "bos_id",
                        "turns_used",
                        "turns_rule",
                    )
                ]
            ),
        ),
        (
            "Machine",
            kv(
                [
                    ("host", machine.get("hostname")),
                    ("platform", machine.get("platform")),
                    ("CPU", f"{machine.get('cpu')} ({machine.get('usable_cpus')} usable cores)"),
                    ("memory GiB", machine.get("memory_gib")),
                    (
                        "GPUs",
                        "; ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in gpus) or "none",
                    ),
                ]
            ),
        ),
        ("Harness versions", kv(list(harness.items()))),
    ]


def _plot_ctx(p: Plot) -> dict:
    return {"name": p.name, "title": p.title, "src": "data:image/png;base64," + base64.b64encode(p.png).decode()}


def render_html(
    sections: Sequence[Section], plots: Sequence[Plot], runs, title: str | None = None, plots_note: str | None = None
) -> str:
    placed: dict[str, list[dict]] = {}
    loose: list[dict] = []
    keys = {s.key for s in sections}
    for p in plots:
        where = PLOT_PLACE.get(p.name)
        (placed.setdefault(where, []) if where in keys else loose).append(_plot_ctx(p))
    blocks = [{"section": s, "plots": placed.get(s.key, [])} for s in sections]
    run_ctx = [
        {
            "label": r.label,
            "path": str(r.path),
            "facts": manifest_facts(r.manifest),
            "json": json.dumps(r.manifest, indent=2, default=str),
        }
        for r in runs
    ]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            title=title or "speedbench report",
            blocks=blocks,
            loose_plots=loose,
            runs=run_ctx,
            plots_note=plots_note,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
