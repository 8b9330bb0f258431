"""Read results folders into what every report section needs (the only I/O of the report package)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from speedbench.config.engine import engine_gpus
from speedbench.core.records import OK, RequestRecord
from speedbench.metrics import request as rq
from speedbench.metrics import speed_bench as sb
from speedbench.metrics.category import (
    category_acceptance_of,
    mean_over_categories,
    measured_als,
    ordered_categories,
    overall_acceptance_of,
)
from speedbench.metrics.paired import PromptUnits, prompt_units
from speedbench.metrics.summary import point_from_dict, point_spread
from speedbench.quality.equivalence import output_lengths
from speedbench.report import analysis as an
from speedbench.results import ResultsDir, ResultsError

# Files other tools drop into a results folder; rendered generically when present.
EXTRA_SECTIONS = (
    ("quality", "Quality"),
    ("recommendation", "Draft-length (gamma) recommendation"),
    ("gamma_validation", "Draft-length model vs measurement (held-out draft lengths)"),
)


class ReportError(Exception):
    """One clear user-facing line (bad folder, no points, mismatched prompt sets)."""


def model_name(manifest: dict) -> str:
    eng = (manifest.get("config") or {}).get("engine") or {}
    served = (manifest.get("engine") or {}).get("served_model")  # what an attached server listed
    return eng.get("served_model_name") or served or Path(str(eng.get("model") or "?")).name


def tp_size(manifest: dict) -> int:
    eng = (manifest.get("config") or {}).get("engine") or {}
    return int(eng.get("tensor_parallel_size") or 1)


def dp_size(manifest: dict) -> int:
    eng = (manifest.get("config") or {}).get("engine") or {}
    return int(eng.get("data_parallel_size") or 1)


@dataclass(frozen=True)
class PointDigest:
    """One point's records reduced to what the report uses (Run.digest)."""

    units: PromptUnits | None  # per-prompt sums behind paired speedup intervals
    als: list  # RequestAL of each measured OK request (per-category acceptance)
    output_lengths: dict[str, int]  # per prompt, its conversation's output tokens (SD on/off lengths)


@dataclass
class Run:
    """One results folder, its rows tagged with the run label, model and TP size."""

    path: Path
    label: str
    manifest: dict
    points: list[dict]
    extras: dict = field(default_factory=dict)  # name -> parsed JSON (quality, recommendation)
    _digests: dict[str, PointDigest] = field(default_factory=dict, repr=False)

    @cached_property
    def rows(self) -> list[dict]:
        model, tp, dp = model_name(self.manifest), tp_size(self.manifest), dp_size(self.manifest)
        gpus = engine_gpus(tp, dp)
        out = []
        for p in self.points:
            point = point_from_dict(p)
            if "output_tps_log_se" not in p or "al_per_conversation" not in p:
                # written before points kept their spread or SPEED-Bench's aggregations: computed from the
                # records with today's rules, as a new run would (a point without records keeps what it has)
                ok = [r for r in self.records(point.point_id) if not r.warmup and r.status == OK]
                if ok:
                    point = dataclasses.replace(point, **point_spread(ok), **sb.point_acceptance(ok))
            row = point.to_row()
            row.update(
                run=self.label,
                model=model,
                tensor_parallel_size=tp,
                data_parallel_size=dp,
                engine_gpus=gpus,
                output_tps_per_gpu=row["output_tps"] / gpus,  # over every GPU the engine holds (TP x DP)
            )
            out.append(row)
        return out

    @cached_property
    def results_dir(self) -> ResultsDir:
        return ResultsDir(self.path)

    def records(self, point_id: str, ids_and_text: bool = True) -> list[RequestRecord]:
        rd = self.results_dir
        return rd.records(point_id, ids_and_text) if rd.records_path(point_id).is_file() else []

    def digest(self, point_id: str) -> PointDigest:
        """What the report's sections need of a point's records, from one read of them (cached: a few numbers
        per request). Each section reading the records itself decoded every point three times."""
        hit = self._digests.get(point_id)
        if hit is None:
            recs = self.records(point_id, ids_and_text=False)
            hit = PointDigest(prompt_units(recs) if recs else None, measured_als(recs), output_lengths(recs))
            self._digests[point_id] = hit
        return hit

    def prompt_units(self, row: dict) -> PromptUnits | None:
        """The point's per-prompt sums behind a paired speedup interval (metrics.paired)."""
        return self.digest(str(row["point_id"])).units

    def missing_note(self) -> str | None:
        """How many planned points have no result here, and why (None when every planned point ended)."""
        planned = self.manifest.get("points_planned") or []
        ended = {p.get("point_id") for p in self.points}
        missing = [p for p in planned if p not in ended]
        if not missing:
            return None
        m = self.manifest
        if m.get("points_missing"):  # a merge: each missing point's own source says why
            shown = "; ".join(f"{x['point']}: {x['why']}" for x in m["points_missing"][:6])
            return f"{self.label}: {len(missing)} of {len(planned)} planned points missing ({shown})"
        why = m.get("stopped_reason") or {
            "interrupted": f"the sweep was interrupted (continue it: speedbench sweep --resume {self.path})",
            "running": f"the sweep never finished: killed, or still running (continue it: speedbench sweep "
            f"--resume {self.path})",
        }.get(str(m.get("status")), "points.jsonl holds no line for them (damaged or torn last line?)")
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        return f"{self.label}: {len(missing)} of {len(planned)} planned points missing ({shown}): {why}"

    @property
    def fingerprint(self) -> tuple[str | None, str | None]:
        p = self.manifest.get("prompts") or {}
        return p.get("fingerprint"), p.get("ids_sha256")


def load_run(path: str | Path, label: str | None = None) -> Run:
    try:
        rd = ResultsDir.open(path)
        manifest = rd.manifest()
    except ResultsError as e:
        raise ReportError(str(e)) from None
    extras = {}
    for name, _ in EXTRA_SECTIONS:
        f = rd.path / f"{name}.json"
        if f.is_file():
            try:
                extras[name] = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                extras[name] = {"rows": [], "notes": [f"unreadable {f.name}: {e}"]}
    return Run(rd.path, label or rd.path.resolve().name, manifest, rd.points(), extras)


def unique_labels(paths: Sequence[str | Path]) -> list[str]:
    """Folder names, made unique with the parent's name (then an index) when two folders share one."""
    names = [Path(p).resolve().name for p in paths]
    out = []
    for p, n in zip(paths, names):
        if names.count(n) > 1:
            n = f"{Path(p).resolve().parent.name}/{n}"
        while n in out:
            n += "'"
        out.append(n)
    return out


@dataclass
class ReportData:
    runs: list[Run]

    @classmethod
    def load(cls, paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> ReportData:
        labels = list(labels) if labels else unique_labels(paths)
        data = cls([load_run(p, lab) for p, lab in zip(paths, labels)])
        if not data.rows:
            raise ReportError("no finished points in " + ", ".join(str(p) for p in paths))
        return data

    @cached_property
    def rows(self) -> list[dict]:
        return [r for run in self.runs for r in run.rows]

    @property
    def multi_run(self) -> bool:
        return len(self.runs) > 1

    @cached_property
    def speedups(self) -> list[dict]:
        by_label = {run.label: run for run in self.runs}
        return an.speedups(self.rows, lambda row: by_label[row["run"]].prompt_units(row))

    @cached_property
    def crossovers(self) -> list[dict]:
        return an.crossovers(self.speedups)

    def _settings(self) -> list[tuple[Run, dict, list[dict]]]:
        """(run, first row, points) per SD setting, in a stable order (SD off first)."""
        out: dict[tuple, tuple[Run, dict, list[dict]]] = {}
        for run in self.runs:
            by_id = {p["point_id"]: p for p in run.points}
            for row in run.rows:
                key = an.setting_key(row)
                out.setdefault(key, (run, row, []))[2].append(by_id[row["point_id"]])
        return sorted(
            out.values(),
            key=lambda t: (self.runs.index(t[0]), t[1]["engine"], t[1]["sd_method"] != "off", t[1]["sd_label"]),
        )

    @cached_property
    def _acceptance(self) -> tuple[list[dict], list[dict]]:
        """(per-category rows, pooled 'all' rows): one per SD setting, records pooled over its points."""
        per_cat, pooled = [], []
        for run, row, points in self._settings():
            # one point's records at a time, each kept as its few acceptance numbers: a setting of the full
            # matrix pools ~10^8 chunks, GBs as records
            items = [r for p in points for r in run.digest(p["point_id"]).als]
            base = {k: row.get(k) for k in an.SETTING_KEYS}
            base["setting"] = an.setting_name(row, with_run=self.multi_run)
            base["concurrencies"] = sorted({p["concurrency"] for p in points})
            cats = {c.category: c.to_dict() for c in category_acceptance_of(items)}
            per_cat += [{**base, **cats[name]} for name in ordered_categories(cats)]
            if cats:
                pooled.append({**base, **overall_acceptance_of(items).to_dict()})
        return per_cat, pooled

    @property
    def category_rows(self) -> list[dict]:
        """Long form: one row per (SD setting, category)."""
        return self._acceptance[0]

    @property
    def overall_rows(self) -> list[dict]:
        """One row per SD setting with category 'all': every category pooled (token-weighted)."""
        return self._acceptance[1]

    @cached_property
    def categories(self) -> list[str]:
        return ordered_categories({r["category"] for r in self.category_rows})

    def category_matrix(self, measure: str) -> list[dict]:
        """Wide form for one measure per SD setting: {'setting', <category>: value, ..., 'mean', 'all'}.

        mean = unweighted mean over categories (the paper's last column); all = pooled over all requests.
        """
        rows: dict[str, dict] = {}
        cats: dict[str, list[dict]] = {}
        for r in self.category_rows:
            rows.setdefault(r["setting"], {"setting": r["setting"]})[r["category"]] = r[measure]
            cats.setdefault(r["setting"], []).append(r)
        for o in self.overall_rows:
            rows[o["setting"]]["mean"] = mean_over_categories(c[measure] for c in cats[o["setting"]])
            rows[o["setting"]]["all"] = o[measure]
        return list(rows.values())

    @cached_property
    def position_rows(self) -> list[dict]:
        """Per SD-on setting and draft position: absolute and conditional acceptance (counters pooled)."""
        out = []
        for run, row, points in self._settings():
            if row["sd_method"] == "off":
                continue
            # Σ the measured requests' own counters, else the server's global counter deltas (metrics.acceptance)
            total = an.sum_counters(p.get("counters_req_sum") or p.get("counters") for p in points)
            hist: dict[int, int] = {}
            for p in points:
                h = p.get("chunk_length_histogram")
                if h is None:  # a point stored before it: counted from its records
                    h = sb.chunk_histogram(run.records(p["point_id"]))
                for k, v in h.items():
                    hist[int(k)] = hist.get(int(k), 0) + v
            for pos in an.position_acceptance(total, sb.conditional_rates(hist)):
                out.append(
                    {
                        "setting": an.setting_name(row, with_run=self.multi_run),
                        **{k: row.get(k) for k in an.SETTING_KEYS},
                        **pos,
                    }
                )
        return out

    @cached_property
    def turn_rows(self) -> list[dict]:
        """Multi-turn points: one row per (point, turn) from the point's per-turn acceptance."""
        out = []
        for run in self.runs:
            by_id = {p["point_id"]: p for p in run.points}
            for row in run.rows:
                for t in by_id.get(row["point_id"], {}).get("per_turn") or []:
                    out.append(
                        {
                            "setting": an.setting_name(row, with_run=self.multi_run),
                            "point_id": row["point_id"],
                            "concurrency": row["concurrency"],
                            **t,
                        }
                    )
        return out

    def request_rows(self) -> list[dict]:
        """Flat per-request table (one row per record, measured and warm-up) for pandas."""
        out = []

        for run in self.runs:
            for row in run.rows:
                for r in run.records(row["point_id"]):
                    sd = r.sd or {}
                    out.append(
                        {
                            "run": run.label,
                            "point_id": row["point_id"],
                            "engine": row["engine"],
                            "model": row["model"],
                            "sd_label": row["sd_label"],
                            "concurrency": row["concurrency"],
                            "isl": row["isl"],
                            "request_id": r.request_id,
                            "prompt_id": r.prompt_id,
                            "conversation_id": r.conversation_id,
                            "turn": r.turn,
                            "category": r.category,
                            "warmup": r.warmup,
                            "status": r.status,
                            "error_kind": r.error_kind,
                            "prompt_len": r.prompt_len,
                            "output_tokens": r.output_tokens,
                            "chunks": len(r.chunk_tokens),
                            "tokens_per_step": rq.tokens_per_step(r),
                            "ttft_ms": _ms(rq.ttft(r)),
                            "e2e_ms": _ms(rq.e2e(r)),
                            "tpot_ms": _ms(rq.tpot(r)),
                            "user_tps": rq.user_tps(r),
                            "sd_drafts": sd.get("drafts"),
                            "sd_draft_tokens": sd.get("draft_tokens"),
                            "sd_accepted_tokens": sd.get("accepted_tokens"),
                        }
                    )
        return out


def _ms(v: float | None) -> float | None:
    return v * 1e3 if v is not None else None
