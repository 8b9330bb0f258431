"""`speedbench data build`: assemble a Qualitative split from source datasets named in a YAML manifest.

Manifest (paths are relative to the manifest file)::

    name: qualitative-mini-diverse
    per_category: 4                # prompts kept per category (SPEED-Bench: 80)
    embedder: hashed-ngrams        # or sentence-transformers
    seed: 0                        # for the random-subset comparison only; selection is deterministic
    allow_short: false             # true: a category with too few candidates keeps all (logged)
    output: ../qualitative/mini-diverse.jsonl
    sources:
      - path: ../qualitative/mini.jsonl    # .jsonl, .jsonl.gz, .parquet; or  hf: owner/name  (+ config, split)
        category_field: category           # category from a field ...
        # category: Coding                 # ... or one category for every row
        categories: [Coding, Math]         # optional filter
        id_field: id
        text_field: turns                  # str, list of str, or messages (role/content)
        id_prefix: ""                      # keeps ids unique across sources

Output: one JSONL row per prompt (id, category, turns, source, license), categories in SPEED-Bench
order, each in selection order; plus a report of the objective vs random subsets per category.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from speedbench.config import ConfigError, format_validation_error
from speedbench.data.diversity import Selection, get_embedder, select_diverse
from speedbench.data.prompts import CATEGORIES

log = logging.getLogger(__name__)


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    hf: str | None = None
    config: str | None = None
    split: str = "test"
    category: str | None = None
    category_field: str | None = None
    categories: list[str] | None = None
    id_field: str = "id"
    text_field: str = "turns"
    id_prefix: str = ""
    license: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        if bool(self.path) == bool(self.hf):
            raise ValueError("give exactly one of path or hf")
        if bool(self.category) == bool(self.category_field):
            raise ValueError("give exactly one of category or category_field")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    per_category: int = Field(80, ge=1)
    embedder: str = "hashed-ngrams"
    seed: int = 0
    allow_short: bool = False
    output: str | None = None
    sources: list[SourceSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Candidate:
    id: str
    category: str
    turns: tuple[str, ...]
    source: str
    license: str


@dataclass
class BuildResult:
    rows: list[dict]
    report: dict[str, Selection]
    output: Path | None


def load_manifest(path: Path) -> Manifest:
    if not path.is_file():
        raise ConfigError(f"manifest not found: {path}")
    try:
        return Manifest.model_validate(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as e:
        raise ConfigError(f"bad YAML in {path}: {e}") from None
    except ValidationError as e:
        raise ConfigError(f"{path}: " + format_validation_error(e)) from None


def _read_rows(src: SourceSpec, base: Path) -> tuple[list[dict], str]:
    if src.hf:
        try:  # the [hf] extra, needed only for hub sources
            import datasets
        except ImportError:
            raise ConfigError(
                f"source hf:{src.hf} needs the 'datasets' package (pip install 'speedbench[hf]')"
            ) from None
        try:
            return list(datasets.load_dataset(src.hf, src.config, split=src.split)), f"hf:{src.hf}"
        except Exception as e:  # network, auth, missing config
            raise ConfigError(f"could not load hf:{src.hf}: {e}") from None
    assert src.path is not None  # the source model requires hf or path
    p = (base / src.path).resolve()
    if not p.is_file():
        raise ConfigError(f"source file not found: {p}")
    if p.suffix == ".parquet":
        return pq.read_table(p).to_pylist(), p.name
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as fh:
        try:
            return [json.loads(line) for line in fh if line.strip()], p.name
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: bad JSON ({e.msg})") from None


def _text_turns(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        value = [m.get("content") for m in value if m.get("role") == "user"]
    if isinstance(value, list) and value and all(isinstance(t, str) and t for t in value):
        return tuple(value)
    return None


def candidates_from(src: SourceSpec, base: Path) -> list[Candidate]:
    rows, label = _read_rows(src, base)
    out = []
    for n, row in enumerate(rows):
        where = f"{label} row {n}"
        cat = src.category or row.get(src.category_field)
        if not isinstance(cat, str) or not cat:
            raise ConfigError(f"{where}: no category (field {src.category_field!r})")
        if src.categories and cat not in src.categories:
            continue
        if cat not in CATEGORIES:
            raise ConfigError(f"{where}: unknown category {cat!r}; categories: {', '.join(CATEGORIES)}")
        if row.get(src.id_field) in (None, ""):
            raise ConfigError(f"{where}: missing id field {src.id_field!r}")
        turns = _text_turns(row.get(src.text_field))
        if turns is None:
            raise ConfigError(f"{where}: field {src.text_field!r} is missing or not text / a list of texts")
        out.append(
            Candidate(
                f"{src.id_prefix}{row[src.id_field]}",
                cat,
                turns,
                str(row.get("source") or label),
                str(src.license or row.get("license") or ""),
            )
        )
    return out


def build_split(
    manifest_path: Path, out: Path | None = None, per_category: int | None = None, embedder: str | None = None
) -> BuildResult:
    m = load_manifest(manifest_path)
    base = manifest_path.parent
    k = per_category or m.per_category
    emb = get_embedder(embedder or m.embedder)
    pool: dict[str, list[Candidate]] = {}
    for src in m.sources:
        for c in candidates_from(src, base):
            pool.setdefault(c.category, []).append(c)
    ids = [c.id for cs in pool.values() for c in cs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ConfigError(f"duplicate candidate ids across sources {dup}; set id_prefix per source")
    rows: list[dict] = []
    report: dict[str, Selection] = {}
    for cat in CATEGORIES:
        cands = pool.get(cat, [])
        if not cands:
            continue
        if len(cands) < k:
            msg = f"category {cat}: {len(cands)} candidates < {k} wanted"
            if not m.allow_short:
                raise ConfigError(msg + " (add sources, lower per_category, or set allow_short: true)")
            log.warning("%s; keeping all of them (allow_short)", msg)
        sel = select_diverse(emb.embed(["\n".join(c.turns) for c in cands]), k, seed=m.seed)
        report[cat] = sel
        rows += [
            {
                "id": cands[i].id,
                "category": cat,
                "turns": list(cands[i].turns),
                "source": cands[i].source,
                "license": cands[i].license,
            }
            for i in sel.indices
        ]
    if not rows:
        raise ConfigError(f"{manifest_path}: the sources yielded no candidates")
    target = out or ((base / m.output).resolve() if m.output else None)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return BuildResult(rows, report, target)


def format_report(res: BuildResult) -> str:
    lines = [
        f"{'category':<14}{'cand':>6}{'kept':>6}{'objective':>11}{'random':>16}",
        "  (mean pairwise cosine similarity; lower = more diverse)",
    ]
    for cat, s in res.report.items():
        lines.append(
            f"{cat:<14}{s.candidates:>6}{len(s.indices):>6}{s.objective:>11.4f}"
            f"{s.random_mean:>10.4f}±{s.random_std:.4f}"
        )
    lines.append(f"{len(res.rows)} prompts" + (f" -> {res.output}" if res.output else ""))
    return "\n".join(lines)
