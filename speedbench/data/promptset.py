"""Pre-tokenized prompts and their parquet cache entry (one file per fingerprint)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speedbench.core.jsoncodec import dumps


class TokenizedPrompt:
    """One prompt's ids and metadata. Ids read from the cache stay a numpy view until first used, so a
    cache hit on millions of ids costs one parquet read, not millions of Python ints."""

    __slots__ = (
        "id",
        "category",
        "_ids",
        "truncated",
        "padded",
        "zlib_ratio",
        "token_entropy",
        "num_turns",
        "turn_tails",
        "_ids_json",
    )

    def __init__(
        self,
        id: str,
        category: str,
        token_ids,
        truncated: bool = False,
        padded: bool = False,
        zlib_ratio: float = math.nan,
        token_entropy: float = math.nan,
        num_turns: int = 1,
        turn_tails: Sequence[Sequence[int]] = (),
    ):
        self.id = id
        self.category = category  # SPEED-Bench category, or the entropy tier (low/mixed/high) for throughput
        self._ids = token_ids if isinstance(token_ids, (tuple, np.ndarray)) else tuple(token_ids)
        self.truncated = truncated
        self.padded = padded
        self.zlib_ratio = zlib_ratio  # entropy proxy of the prompt text (lower = more repetitive)
        self.token_entropy = token_entropy  # unigram entropy of the ids, bits/token
        self.num_turns = num_turns  # user turns in the source conversation
        # template ids that follow each reply, one per later turn sent (data.turns: all; see data.turns)
        self.turn_tails = tuple(tuple(t) for t in turn_tails)
        self._ids_json: bytes | None = None

    @property
    def turns_to_send(self) -> int:
        return 1 + len(self.turn_tails)

    @property
    def token_ids(self) -> tuple[int, ...]:
        if not isinstance(self._ids, tuple):
            self._ids = tuple(self._ids.tolist())
        return self._ids

    def ids_json(self) -> bytes:
        """The ids as a JSON array, encoded once: a request body embeds it instead of encoding thousands of
        ids per request on the load's hot path, where a wave of 512 streams ending together re-sends 512
        bodies at once (load.client.stream_one)."""
        if self._ids_json is None:
            self._ids_json = dumps(self.token_ids)
        return self._ids_json

    def ids_array(self) -> np.ndarray:
        return self._ids if isinstance(self._ids, np.ndarray) else np.asarray(self._ids, dtype=np.int32)

    @property
    def num_tokens(self) -> int:
        return len(self._ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenizedPrompt):
            return NotImplemented
        return (
            self.id,
            self.category,
            self.token_ids,
            self.truncated,
            self.padded,
            self.num_turns,
            self.turn_tails,
        ) == (
            other.id,
            other.category,
            other.token_ids,
            other.truncated,
            other.padded,
            other.num_turns,
            other.turn_tails,
        )

    def __repr__(self) -> str:
        return f"TokenizedPrompt(id={self.id!r}, category={self.category!r}, num_tokens={self.num_tokens})"


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
    """sha256 over (id, NUL, count as uint64 LE, ids as int32 LE) per prompt: fast and unambiguous.

    A prompt with later turns adds (count, ids) of each tail after its ids; a single-turn prompt hashes as
    before, so single-turn digests did not change when multi-turn came."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.id.encode())
        h.update(b"\0")
        h.update(p.num_tokens.to_bytes(8, "little"))  # not len(token_ids): that makes a Python int per id
        h.update(p.ids_array().astype("<i4", copy=False).tobytes())
        for tail in p.turn_tails:
            h.update(b"\1" + len(tail).to_bytes(8, "little"))
            h.update(np.asarray(tail, dtype="<i4").tobytes())
    return h.hexdigest()


def turn_ids_digest(ids: Sequence[int]) -> str:
    """sha256 of one later turn's ids (int32 LE), built at run time: the record's fingerprint of what it sent."""
    return hashlib.sha256(np.asarray(ids, dtype="<i4").tobytes()).hexdigest()


def write_prompt_set(pset: PromptSet, path: Path) -> None:
    # pyarrow (~110 ms) in the two parquet functions: this module is imported by every load client process
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    # Build the list column from one flat int32 buffer + offsets: no per-token Python objects.
    lens = np.fromiter((p.num_tokens for p in pset.prompts), dtype=np.int64, count=len(pset.prompts))
    offsets = np.zeros(len(lens) + 1, dtype=np.int32)
    np.cumsum(lens, out=offsets[1:])
    flat = np.concatenate([p.ids_array() for p in pset.prompts]) if pset.prompts else np.zeros(0, np.int32)
    table = pa.table(
        {
            "id": [p.id for p in pset.prompts],
            "category": [p.category for p in pset.prompts],
            "token_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
            "num_tokens": lens,
            "truncated": [p.truncated for p in pset.prompts],
            "padded": [p.padded for p in pset.prompts],
            "zlib_ratio": pa.array([p.zlib_ratio for p in pset.prompts], type=pa.float64()),
            "token_entropy": pa.array([p.token_entropy for p in pset.prompts], type=pa.float64()),
            "num_turns": pa.array([p.num_turns for p in pset.prompts], type=pa.int32()),
            "turn_tails": pa.array(
                [[list(t) for t in p.turn_tails] for p in pset.prompts], type=pa.list_(pa.list_(pa.int32()))
            ),
        }
    )
    table = table.replace_schema_metadata(
        {
            b"speedbench.fingerprint": pset.fingerprint.encode(),
            b"speedbench.meta": json.dumps(pset.meta).encode(),
        }
    )
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: readers never see a half-written cache entry


class PromptCacheMismatch(ValueError):
    """A prompt cache file whose ids do not hash to the digest stored with them (edited or damaged)."""


def read_prompt_set(path: Path, verify: bool = True) -> PromptSet:
    """The PromptSet stored in ``path``. ``verify``: recompute the ids hash and refuse the file when it
    differs from the one recorded at write time (one edited id would otherwise pass under the same
    fingerprint, and every engine would be sent the edited ids)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    md = table.schema.metadata or {}
    ids_col = table.column("token_ids").combine_chunks()
    # Views into one flat buffer; Python ints are made per prompt on first use (see TokenizedPrompt).
    flat = ids_col.values.to_numpy()
    offs = ids_col.offsets.to_numpy().tolist()
    names = set(table.column_names)

    def col(name, default):
        return table.column(name).to_pylist() if name in names else [default] * table.num_rows

    cols = zip(
        col("id", ""),
        col("category", ""),
        col("truncated", False),
        col("padded", False),
        col("zlib_ratio", math.nan),
        col("token_entropy", math.nan),
        col("num_turns", 1),
        col("turn_tails", None),
    )
    prompts = [
        TokenizedPrompt(
            i,
            c,
            flat[offs[k] : offs[k + 1]],
            bool(tr),
            bool(pd),
            math.nan if z is None else z,
            math.nan if e is None else e,
            int(nt),
            tails or (),
        )
        for k, (i, c, tr, pd, z, e, nt, tails) in enumerate(cols)
    ]
    pset = PromptSet(md[b"speedbench.fingerprint"].decode(), prompts, json.loads(md[b"speedbench.meta"]))
    if verify:
        stored, actual = pset.meta.get("ids_sha256"), pset.ids_sha256
        if stored != actual:
            raise PromptCacheMismatch(
                f"{path}: its token ids hash to {actual[:16]}, not to the {str(stored)[:16]} recorded when it "
                "was written (the file was edited or damaged)"
            )
    return pset
