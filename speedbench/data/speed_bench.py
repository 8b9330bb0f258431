"""Rows of the official SPEED-Bench dataset (nvidia/SPEED-Bench layout) as speedbench Prompts.

Configs: ``qualitative`` and ``throughput_{1k,2k,8k,16k,32k}``. Rows carry ``question_id``, ``category``
and either ``turns`` (list of user texts) or ``messages`` (role/content dicts); ``sub_category``,
``source`` and ``src_id`` are kept as extras. Sources: a local parquet file, a local folder in the layout
that SPEED-Bench's prepare script writes (``data/speed/<config>/test.parquet``) or a hub snapshot
(``<config>/*.parquet``, ``data/<config>/*.parquet``), or a hub name loaded through HF ``datasets``.

The public hub copy replaces every text by a placeholder ("FULL BENCHMARK DATA SHOULD BE FETCHED FROM THE
SOURCE ..."); benchmarking those would measure nothing, so they are detected and either refused (default)
or dropped with a logged count.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from speedbench.config import ConfigError
from speedbench.data.prompts import CATEGORIES, Prompt
from speedbench.data.tokenization import sha256_file

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "nvidia/SPEED-Bench"
CONFIGS = ("qualitative", "throughput_1k", "throughput_2k", "throughput_8k", "throughput_16k", "throughput_32k")
PLACEHOLDER_MARKER = "FULL BENCHMARK DATA SHOULD BE FETCHED FROM THE SOURCE"
_CANON = {c.lower(): c for c in CATEGORIES}
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_placeholder(prompt: Prompt) -> bool:
    return any(PLACEHOLDER_MARKER.lower() in t.lower() for t in prompt.turns)


def drop_placeholders(prompts: list[Prompt], policy: str, where: str) -> list[Prompt]:
    """Refuse (``error``) or drop (``skip``, with a logged count) rows that are placeholder texts."""
    bad = [p for p in prompts if is_placeholder(p)]
    if not bad:
        return prompts
    msg = (
        f"{len(bad)} of {len(prompts)} rows in {where} are placeholder texts "
        f"({PLACEHOLDER_MARKER!r} ...), e.g. id {bad[0].id!r}: the public copy holds no prompts. "
        "Resolve the texts with SPEED-Bench's prepare script and point data.source at its output"
    )
    if policy == "skip":
        log.warning("%s; skipping them (data.placeholders=skip)", msg)
        kept = [p for p in prompts if not is_placeholder(p)]
        if not kept:
            raise ConfigError(f"every row in {where} is a placeholder text; nothing left to benchmark")
        return kept
    raise ConfigError(msg + ", or set data.placeholders: skip to drop them")


def _turns(row: dict, where: str) -> list[str]:
    turns = row.get("turns")
    if turns is None and isinstance(row.get("messages"), list):
        turns = [m.get("content") for m in row["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    if turns is None and isinstance(row.get("prompt"), str):
        turns = [row["prompt"]]
    if isinstance(turns, str):
        turns = [turns]
    if not turns or not all(isinstance(t, str) and t for t in turns):
        raise ConfigError(
            f"{where}: row has no usable 'turns' or user 'messages' (question_id {row.get('question_id')!r})"
        )
    return list(turns)


def rows_to_prompts(rows: Iterable[dict], config: str, where: str) -> list[Prompt]:
    out: list[Prompt] = []
    for n, row in enumerate(rows):
        qid = row.get("question_id", row.get("id"))
        if qid is None or qid == "":
            raise ConfigError(f"{where}: row {n} has no 'question_id'")
        cat = row.get("category")
        if not isinstance(cat, str) or not cat:
            raise ConfigError(f"{where}: row {n} (question_id {qid!r}) has no 'category'")
        if config == "qualitative":
            cat = _CANON.get(cat.lower(), cat)  # hub rows may spell categories in lower case
        extra = {k: row[k] for k in ("sub_category", "src_id") if row.get(k) is not None}
        out.append(
            Prompt(
                id=str(qid),
                category=cat,
                turns=tuple(_turns(row, f"{where} row {n}")),
                source=str(row.get("source") or ""),
                license=str(row.get("license") or ""),
                extra=extra,
            )
        )
    ids = [p.id for p in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: duplicate question_id values")
    return out


def local_files(root: Path, config: str) -> list[Path]:
    """Parquet files of ``config`` under a local SPEED-Bench folder (prepare-script or hub-snapshot layout)."""
    if root.is_file():
        return [root]
    for pattern in (
        f"{config}/test.parquet",
        f"data/speed/{config}/test.parquet",
        f"speed/{config}/test.parquet",
        f"{config}/*.parquet",
        f"data/{config}/*.parquet",
        f"{config}/test-*.parquet",
    ):
        found = sorted(root.glob(pattern))
        if found:
            return found
    return []


def resolve_source(source: str | None, config: str) -> tuple[str, list[Path]]:
    """(kind, files): kind is 'local' (files listed) or 'hub' (a dataset name for HF datasets)."""
    if config not in CONFIGS:
        raise ConfigError(f"unknown SPEED-Bench config {config!r}; configs: {', '.join(CONFIGS)}")
    src = source or DEFAULT_SOURCE
    p = Path(src).expanduser()
    if p.exists():
        files = local_files(p, config)
        if not files:
            raise ConfigError(
                f"no parquet for config {config!r} under {p} (expected {config}/test.parquet or "
                f"data/speed/{config}/test.parquet)"
            )
        return "local", files
    if _HUB_NAME.match(src):
        return "hub", []
    raise ConfigError(f"SPEED-Bench source not found: {src} (give a local folder/parquet file or a hub name)")


def load_rows(source: str | None, config: str) -> list[dict]:
    kind, files = resolve_source(source, config)
    if kind == "local":
        # pyarrow (~110 ms) only for local files: splits.py imports this module for every split lookup
        import pyarrow.parquet as pq

        rows: list[dict] = []
        for f in files:
            try:
                rows += pq.read_table(f).to_pylist()
            except Exception as e:  # pyarrow raises several types for bad files
                raise ConfigError(f"cannot read parquet {f}: {e}") from None
        return rows
    try:
        import datasets  # optional extra: speedbench[hf]
    except ImportError:
        raise ConfigError(
            f"loading {source or DEFAULT_SOURCE!r} from the hub needs the 'datasets' package "
            "(pip install 'speedbench[hf]'), or give a local folder"
        ) from None
    try:
        return list(datasets.load_dataset(source or DEFAULT_SOURCE, config, split="test"))
    except Exception as e:  # network, auth, missing config
        raise ConfigError(f"could not load {source or DEFAULT_SOURCE!r} config {config!r}: {e}") from None


def load_speed_bench(source: str | None, config: str, placeholders: str = "error") -> list[Prompt]:
    where = f"SPEED-Bench {config} ({source or DEFAULT_SOURCE})"
    prompts = rows_to_prompts(load_rows(source, config), config, where)
    if not prompts:
        raise ConfigError(f"{where} holds no rows")
    return drop_placeholders(prompts, placeholders, where)


def source_digest(source: str | None, config: str) -> str | None:
    """sha256 of the local files, or None for a hub source (then the loaded rows are hashed instead)."""

    kind, files = resolve_source(source, config)
    if kind != "local":
        return None
    return ",".join(sha256_file(f) for f in files)
