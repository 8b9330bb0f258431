"""Pre-tokenized prompts and their parquet cache entry (one file per fingerprint)."""
from __future__ import annotations

import array
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Sequence


@dataclass(frozen=True)
class TokenizedPrompt:
    id: str
    category: str  # SPEED-Bench category, or the entropy tier (low/mixed/high) for throughput prompts
    token_ids: tuple[int, ...]
    truncated: bool = False
    padded: bool = False
    zlib_ratio: float = math.nan  # entropy proxy of the decoded prompt text (lower = more repetitive)
    token_entropy: float = math.nan  # unigram entropy of the ids, bits/token
    num_turns: int = 1  # turns in the source conversation; only the first is pre-tokenized

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class PromptSet:
    fingerprint: str
    prompts: list[TokenizedPrompt]
    meta: dict = field(default_factory=dict)

    @property
    def ids_sha256(self) -> str:
        """Hash of the exact id sequences, to prove two engines received the same input."""
        return ids_digest(self.prompts)


def ids_digest(prompts: Sequence[TokenizedPrompt]) -> str:
    """sha256 over (id, NUL, count as uint64 LE, ids as int32 LE) per prompt: fast and unambiguous."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.id.encode())
        h.update(b"\0")
        h.update(len(p.token_ids).to_bytes(8, "little"))
        arr = array.array("i", p.token_ids)
        if sys.byteorder != "little":
            arr.byteswap()
        h.update(arr.tobytes())
    return h.hexdigest()


def write_prompt_set(pset: PromptSet, path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    # Build the list column from one flat int32 buffer + offsets: no per-token Python objects.
    lens = np.fromiter((p.num_tokens for p in pset.prompts), dtype=np.int64, count=len(pset.prompts))
    offsets = np.zeros(len(lens) + 1, dtype=np.int32)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(p.token_ids for p in pset.prompts), dtype=np.int32, count=int(lens.sum()))
    table = pa.table({
        "id": [p.id for p in pset.prompts],
        "category": [p.category for p in pset.prompts],
        "token_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
        "num_tokens": lens,
        "truncated": [p.truncated for p in pset.prompts],
        "padded": [p.padded for p in pset.prompts],
        "zlib_ratio": pa.array([p.zlib_ratio for p in pset.prompts], type=pa.float64()),
        "token_entropy": pa.array([p.token_entropy for p in pset.prompts], type=pa.float64()),
        "num_turns": pa.array([p.num_turns for p in pset.prompts], type=pa.int32()),
    })
    table = table.replace_schema_metadata({
        b"speedbench.fingerprint": pset.fingerprint.encode(),
        b"speedbench.meta": json.dumps(pset.meta).encode(),
    })
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: readers never see a half-written cache entry


def read_prompt_set(path: Path) -> PromptSet:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    md = table.schema.metadata or {}
    ids_col = table.column("token_ids").combine_chunks()
    # One tolist() over the flat buffer, then slices: ~10x faster than to_pydict() on millions of ids.
    flat = ids_col.values.to_numpy().tolist()
    offs = ids_col.offsets.to_numpy().tolist()
    names = set(table.column_names)

    def col(name, default):
        return table.column(name).to_pylist() if name in names else [default] * table.num_rows

    cols = zip(col("id", ""), col("category", ""), col("truncated", False), col("padded", False),
               col("zlib_ratio", math.nan), col("token_entropy", math.nan), col("num_turns", 1))
    prompts = [
        TokenizedPrompt(i, c, tuple(flat[offs[k]:offs[k + 1]]), bool(tr), bool(pd),
                        math.nan if z is None else z, math.nan if e is None else e, int(nt))
        for k, (i, c, tr, pd, z, e, nt) in enumerate(cols)
    ]
    return PromptSet(md[b"speedbench.fingerprint"].decode(), prompts, json.loads(md[b"speedbench.meta"]))
