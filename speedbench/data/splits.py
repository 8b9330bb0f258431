"""Split names -> where their prompts come from. A small registry instead of if/elif over file suffixes.

* bundled names (``qualitative-mini``) and local ``.jsonl``/``.jsonl.gz``/``.parquet`` files: prompt rows;
* ``speed-bench:<config>`` (``qualitative``, ``throughput_8k``, ... or ``throughput`` + ISL): official
  SPEED-Bench rows from ``data.source`` (local folder/parquet or hub name);
* ``throughput``: fixed-ISL prompts cut from the bundled pool; ``isl`` is required, tier = category.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from speedbench.config import ConfigError, DataConfig
from speedbench.data import speed_bench, throughput
from speedbench.data.prompts import BUNDLED_SPLITS, Prompt, read_prompt_file, resolve_split_path, select
from speedbench.data.tokenization import sha256_file

SplitKind = Literal["prompts", "speed-bench", "throughput"]
SPEED_PREFIX = "speed-bench:"


@dataclass(frozen=True)
class SplitSpec:
    kind: SplitKind
    name: str
    path: Path | None = None  # prompt file (kind 'prompts')
    config: str | None = None  # SPEED-Bench config (kind 'speed-bench')

    @property
    def prompt_file(self) -> Path:
        """The prompt file of a 'prompts' split (resolve() always sets it for that kind)."""
        if self.path is None:
            raise ConfigError(f"split {self.name!r} ({self.kind}) has no prompt file")
        return self.path

    @property
    def speed_config(self) -> str:
        """The SPEED-Bench config of a 'speed-bench' split (resolve() always sets it for that kind)."""
        if self.config is None:
            raise ConfigError(f"split {self.name!r} ({self.kind}) names no SPEED-Bench config")
        return self.config


def throughput_pool(cfg: DataConfig) -> str:
    """The pool a throughput split is cut from: ``data.pool``, with ``auto`` resolved for this bucket's size."""
    per_tier = cfg.prompts_per_category or throughput.DEFAULT_PER_TIER
    return throughput.resolve_pool(cfg.pool, per_tier, throughput_isl(cfg))


def throughput_isl(cfg: DataConfig) -> int:
    """The ISL a throughput split is cut to: required, there is no natural length."""
    if not cfg.isl:
        raise ConfigError("split 'throughput' needs an ISL: --isl 1k|2k|8k|16k|32k or a token count")
    return cfg.isl


def split_names() -> list[str]:
    return sorted(BUNDLED_SPLITS) + ["throughput", "speed-bench:<config>"]


def resolve(cfg: DataConfig) -> SplitSpec:
    name = cfg.split
    if name == "throughput":
        throughput_isl(cfg)  # refused now, not when the prompts are built
        return SplitSpec("throughput", name)
    if name.startswith(SPEED_PREFIX):
        config = name[len(SPEED_PREFIX) :]
        if config == "throughput":
            if not cfg.isl or cfg.isl % 1024 or f"{cfg.isl // 1024}k" not in throughput.BUCKETS:
                raise ConfigError(
                    "split 'speed-bench:throughput' needs --isl one of "
                    f"{', '.join(throughput.BUCKETS)} to pick the config"
                )
            config = f"throughput_{cfg.isl // 1024}k"
        speed_bench.resolve_source(cfg.source, config)  # validates config and source early
        return SplitSpec("speed-bench", name, config=config)
    return SplitSpec("prompts", name, path=resolve_split_path(name))


def _prompts_digest(prompts: list[Prompt]) -> str:
    h = hashlib.sha256()
    for p in prompts:
        h.update(json.dumps([p.id, p.category, list(p.turns)], ensure_ascii=False).encode())
    return h.hexdigest()


def content_digest(spec: SplitSpec, cfg: DataConfig) -> str:
    """Hash of the split's source content, for the fingerprint (computed without a tokenizer)."""
    if spec.kind == "throughput":
        pool = throughput.pool_path(throughput_pool(cfg))
        return f"pool:{throughput.pool_digest(pool)}:v{throughput.BUILDER_VERSION}"
    if spec.kind == "speed-bench":
        local = speed_bench.source_digest(cfg.source, spec.speed_config)
        if local is not None:
            return f"speed:{spec.config}:{local}:{cfg.placeholders}"
        return f"speed:{spec.config}:{_prompts_digest(load_prompts(spec, cfg))}"
    return f"file:{sha256_file(spec.prompt_file)}"


def load_prompts(spec: SplitSpec, cfg: DataConfig) -> list[Prompt]:
    """Text prompts of a 'prompts' or 'speed-bench' split, filtered and checked for placeholders."""
    if spec.kind == "throughput":
        raise ConfigError("the throughput split is built from the pool by token ids, not loaded as text")
    if spec.kind == "speed-bench":
        rows = speed_bench.load_speed_bench(cfg.source, spec.speed_config, cfg.placeholders)
    else:
        rows = speed_bench.drop_placeholders(read_prompt_file(spec.prompt_file), cfg.placeholders, str(spec.path))
    return select(rows, cfg.categories, cfg.prompts_per_category)
