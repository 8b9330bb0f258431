"""Prompt splits stored as JSONL (one object per line): id, category, turns, source, license, reference?"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from speedbench.config import ConfigError
from speedbench.resources import DATASETS_DIR

# SPEED-Bench's Qualitative categories, spelled as in the paper and the HF dataset.
CATEGORIES = (
    "Coding",
    "Math",
    "Humanities",
    "STEM",
    "Writing",
    "Summarization",
    "Roleplay",
    "RAG",
    "Multilingual",
    "Reasoning",
    "QA",
)

# Bundled splits by name -> path under speedbench/resources/datasets/.
BUNDLED_SPLITS = {
    "qualitative-mini": "qualitative/mini.jsonl",
}


@dataclass(frozen=True)
class Prompt:
    id: str
    category: str
    turns: tuple[str, ...]
    source: str = ""
    license: str = ""
    reference: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def resolve_split_path(split: str) -> Path:
    if split in BUNDLED_SPLITS:
        return DATASETS_DIR / BUNDLED_SPLITS[split]
    p = Path(split).expanduser()
    if p.suffix in (".jsonl", ".gz", ".parquet") or p.exists():
        if p.is_dir():  # exists, so "not found" would mislead
            raise ConfigError(f"split {p} is a folder; give the .jsonl or .parquet file inside it")
        if not p.is_file():
            raise ConfigError(f"split file not found: {p}")
        return p
    raise ConfigError(
        f"unknown split {split!r}; splits: {', '.join(BUNDLED_SPLITS)}, throughput (with an ISL), "
        "speed-bench:<config>, or a .jsonl/.parquet path"
    )


def _parse_row(row: dict, where: str) -> Prompt:
    if not isinstance(row, dict):
        raise ConfigError(f"{where}: a prompt must be a JSON object, got {type(row).__name__}")
    for key in ("id", "category"):
        if row.get(key) is None or row[key] == "":
            raise ConfigError(f"{where}: missing or empty field {key!r}")
        if not isinstance(row[key], str):
            raise ConfigError(
                f"{where}: field {key!r} must be a string, got {type(row[key]).__name__} {row[key]!r} (quote it)"
            )
    turns = row.get("turns")
    if turns is None and isinstance(row.get("messages"), list):
        turns = [m.get("content", "") for m in row["messages"] if m.get("role") == "user"]
    if isinstance(turns, str):
        turns = [turns]
    if not turns or not all(isinstance(t, str) and t for t in turns):
        raise ConfigError(f"{where}: field 'turns' must be a non-empty list of non-empty strings")
    known = {"id", "category", "turns", "messages", "source", "license", "reference"}
    return Prompt(
        id=row["id"],
        category=row["category"],
        turns=tuple(turns),
        source=str(row.get("source", "")),
        license=str(row.get("license", "")),
        reference=row.get("reference"),
        extra={k: v for k, v in row.items() if k not in known},
    )


def read_jsonl_prompts(path: Path) -> list[Prompt]:
    prompts: list[Prompt] = []
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):  # bytes per line, so a decoding error names its line
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}:{lineno}: not UTF-8 text (byte {e.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{lineno}: bad JSON ({e.msg})") from None
            prompts.append(_parse_row(row, f"{path}:{lineno}"))
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ConfigError(f"{path}: duplicate prompt ids {dup}")
    return prompts


def read_parquet_prompts(path: Path) -> list[Prompt]:
    # pyarrow (~110 ms to import) only for parquet splits: the data package is imported by the runner, the
    # report readers and the API, and the bundled splits are JSONL
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for bad files
        raise ConfigError(f"cannot read parquet {path}: {e}") from None
    prompts = [_parse_row(r, f"{path} row {n}") for n, r in enumerate(rows)]
    if len({p.id for p in prompts}) != len(prompts):
        raise ConfigError(f"{path}: duplicate prompt ids")
    return prompts


def read_prompt_file(path: Path) -> list[Prompt]:
    return read_parquet_prompts(path) if path.suffix == ".parquet" else read_jsonl_prompts(path)


def select(
    prompts: Iterable[Prompt], categories: list[str] | None = None, per_category: int | None = None
) -> list[Prompt]:
    """Filter by category and keep the first ``per_category`` of each, in file order (deterministic)."""
    prompts = list(prompts)
    if categories:
        present = {p.category for p in prompts}
        unknown = [c for c in categories if c not in present]
        if unknown:
            raise ConfigError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                f"this split has: {', '.join(sorted(present))}"
            )
        prompts = [p for p in prompts if p.category in categories]
    if per_category:
        taken: dict[str, int] = {}
        kept = []
        for p in prompts:
            if taken.get(p.category, 0) < per_category:
                kept.append(p)
                taken[p.category] = taken.get(p.category, 0) + 1
        prompts = kept
    if not prompts:
        raise ConfigError("the prompt selection is empty")
    return prompts


def load_split(split: str, categories: list[str] | None = None, per_category: int | None = None) -> list[Prompt]:
    return select(read_prompt_file(resolve_split_path(split)), categories, per_category)
