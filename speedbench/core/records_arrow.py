"""Request records on disk as an Arrow IPC stream (``records/<point>.arrows``): columnar, compact, durable.

One row per request, one column per ``RequestRecord`` field, derived from the dataclass: a new scalar field
(``int``, ``str``, ``bool``, optional or not) becomes a column with no change here. Two fields are stored
as integer deltas instead of their in-memory form, which is what makes a record small:

- ``chunk_times_ns`` -> ``chunk_gaps_us``: list<int64>, one entry fewer than chunks: the time from each
  chunk to the next in microseconds (the first chunk is ``t_first_ns``). Times are rounded to the
  microsecond from ``t_first_ns`` (never accumulated), so a chunk time read back is within 0.5 us of the
  stamp taken; ``t_start_ns``/``t_first_ns``/``t_end_ns`` stay exact nanoseconds.
- ``chunk_tokens`` (cumulative) -> ``chunk_ntok``: list<int32>, the tokens each chunk carried.

``output_ids`` (list<int32>) and ``text`` are optional per sweep (``records`` config): null when not kept,
read back as empty. ``sd`` (the per-request counters) is its JSON text.

The file is written as the point runs: every append is whole record batches, flushed and fsynced; a crash
leaves at most a torn last batch, which the reader drops. Many small batches (a slow point flushes often)
are rewritten into a few large ones when the point ends (``compact``: atomic replace), because each batch
carries ~2 KB of metadata and compresses alone. Readable without speedbench::

    pyarrow.ipc.open_stream("records/sd-off-c1.arrows").read_all().to_pandas()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import fields
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from speedbench.core.records import RequestRecord

ROWS_PER_BATCH = 256  # compacted batch size: metadata and compression amortised over ~10^5-10^6 tokens
_OPTIONS = ipc.IpcWriteOptions(compression="zstd")  # zstd: 2x smaller than lz4 on stamps and ids
_USECS = 1000

# in-memory field -> its column on disk, for the fields not stored as they are
_ENCODED = {"chunk_times_ns": "chunk_gaps_us", "chunk_tokens": "chunk_ntok"}
_ENCODED_TYPES = {"chunk_gaps_us": pa.list_(pa.int64()), "chunk_ntok": pa.list_(pa.int32())}
# annotation (as written in records.py) -> arrow type; "dict" is stored as its JSON text
_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "dict": pa.string(),
    "list[int]": pa.list_(pa.int32()),  # token ids (< 2^31) and per-step SD counts
}


def _base_type(annotation: str) -> tuple[str, bool]:
    """('int', True) for 'int | None'."""
    parts = [p.strip() for p in annotation.split("|")]
    optional = "None" in parts
    rest = [p for p in parts if p != "None"]
    return (rest[0] if len(rest) == 1 else annotation), optional


@cache
def _plain_fields() -> tuple[tuple[str, str], ...]:
    """(field name, base annotation) of every field stored as it is, in dataclass order."""
    out = []
    for f in fields(RequestRecord):
        if f.name in _ENCODED:
            continue
        base, _ = _base_type(str(f.type))
        if base not in _TYPES:
            raise TypeError(f"RequestRecord.{f.name}: no column type for {f.type!r} (add it to records_arrow._TYPES)")
        out.append((f.name, base))
    return tuple(out)


@cache
def schema() -> pa.Schema:
    cols = []
    for f in fields(RequestRecord):
        if f.name in _ENCODED:
            name = _ENCODED[f.name]
            cols.append(pa.field(name, _ENCODED_TYPES[name]))
        else:
            cols.append(pa.field(f.name, _TYPES[_base_type(str(f.type))[0]]))
    return pa.schema(cols, metadata={"speedbench.records": "1"})


@cache
def _schema_message() -> bytes:
    """The stream's first message (the schema): written once at the top of a new file."""
    sink = pa.BufferOutputStream()
    ipc.new_stream(sink, schema(), options=_OPTIONS).close()
    return sink.getvalue().to_pybytes()[:-8]  # without the 8-byte end-of-stream marker


def _deltas(flat: list[int], bases: np.ndarray, counts: np.ndarray, *, gaps: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-record deltas of concatenated per-record sequences, as (values, list offsets).

    gaps: microsecond gaps between consecutive times (n-1 per record), rounded from each record's base;
    else: increments of a cumulative count (n per record, the first from 0)."""
    total = len(flat)
    vals = np.asarray(flat, dtype=np.int64) if total else np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts  # index of each record's first element
    nonempty = starts[counts > 0]
    if gaps:
        rel = (vals - np.repeat(bases, counts) + _USECS // 2) // _USECS
        diff = np.empty(total, dtype=np.int64)
        if total:
            diff[1:] = rel[1:] - rel[:-1]
        keep = np.ones(total, dtype=bool)
        keep[nonempty] = False
        lengths = np.maximum(counts - 1, 0)
        out = diff[keep]
    else:
        out = np.empty(total, dtype=np.int64)
        if total:
            out[1:] = vals[1:] - vals[:-1]
            out[nonempty] = vals[nonempty]
        lengths = counts
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return out, offsets


def encode_batch(records: Sequence[RequestRecord], *, output_ids: bool = True, text: str = "auto") -> pa.RecordBatch:
    """One record batch of ``records``. output_ids False: ids not kept; text (``RecordsConfig.text``):
    "always", "never", or "auto": only for records without token ids (quality decodes the others' ids)."""
    cols: dict[str, pa.Array] = {}
    for name, base in _plain_fields():
        values = [getattr(r, name) for r in records]
        if name == "output_ids" and not output_ids:
            values = [None] * len(records)
        elif name == "text":
            keep = [text == "always" or (text == "auto" and not r.output_ids) for r in records]
            values = [v if k else None for v, k in zip(values, keep)]
        elif base == "dict":
            values = [None if v is None else json.dumps(v, separators=(",", ":")) for v in values]
        cols[name] = pa.array(values, type=_TYPES[base])
    counts = np.fromiter((len(r.chunk_times_ns) for r in records), dtype=np.int64, count=len(records))
    times: list[int] = []
    cum: list[int] = []
    for r in records:
        times += r.chunk_times_ns
        cum += r.chunk_tokens
    bases = np.fromiter(
        (r.chunk_times_ns[0] if r.chunk_times_ns else 0 for r in records), dtype=np.int64, count=len(records)
    )
    for field_name, col, as_gaps in (("chunk_times_ns", times, True), ("chunk_tokens", cum, False)):
        vals, offs = _deltas(col, bases, counts, gaps=as_gaps)
        name = _ENCODED[field_name]
        value_type = _ENCODED_TYPES[name].value_type
        cols[name] = pa.ListArray.from_arrays(pa.array(offs), pa.array(vals, type=value_type))
    return pa.record_batch([cols[f.name] for f in schema()], schema=schema())


def batch_bytes(batch: pa.RecordBatch) -> bytes:
    """The batch as one IPC stream message (compressed), to append after the schema message."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, schema(), options=_OPTIONS) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()[len(_schema_message()) : -8]


def append(path: Path, records: Sequence[RequestRecord], *, output_ids: bool = True, text: str = "auto") -> None:
    """Append ``records`` as one batch (the schema first in a new file); flushed and fsynced on return."""
    if not records:
        if not path.exists():
            _write_durably(path, [_schema_message()], "ab")
        return
    payload = batch_bytes(encode_batch(records, output_ids=output_ids, text=text))
    new = not path.exists() or path.stat().st_size == 0
    _write_durably(path, [_schema_message(), payload] if new else [payload], "ab")


def _write_durably(path: Path, chunks: Iterable[bytes], mode: str) -> None:
    with path.open(mode) as fh:
        for c in chunks:
            fh.write(c)
        fh.flush()
        os.fsync(fh.fileno())


def read_batches(path: Path) -> list[pa.RecordBatch]:
    """Every whole batch of the file; a torn last batch (a crash mid-append) is dropped."""
    out: list[pa.RecordBatch] = []
    try:
        reader = ipc.open_stream(pa.memory_map(str(path)))
    except (OSError, pa.ArrowInvalid):
        return out  # empty, or torn inside the schema: no records were ever written whole
    while True:
        try:
            out.append(reader.read_next_batch())
        except StopIteration:
            break
        except (OSError, pa.ArrowInvalid):
            break  # the torn tail
    return out


def read_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    batches = read_batches(path)
    table = pa.Table.from_batches(batches, schema=batches[0].schema if batches else schema())
    return table.select(list(columns)) if columns is not None else table


def compact(path: Path, rows_per_batch: int = ROWS_PER_BATCH) -> None:
    """Rewrite a file of many small batches as few large ones (atomic replace); a no-op when already few."""
    batches = read_batches(path)
    rows = sum(b.num_rows for b in batches)
    if len(batches) <= max(1, -(-rows // rows_per_batch)):
        return
    table = pa.Table.from_batches(batches).combine_chunks()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    # no end-of-stream marker, as append writes none: the file stays appendable
    _write_durably(tmp, [_schema_message(), *(batch_bytes(b) for b in table.to_batches(rows_per_batch))], "wb")
    os.replace(tmp, path)


def _running_sums(values: np.ndarray, counts: np.ndarray, lead_zero: bool) -> np.ndarray:
    """Per-record running sums of concatenated list values (lead_zero: each record's n-1 values follow an
    implicit 0, as gaps follow the first chunk), n per record."""
    n = int(counts.sum())
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = (np.cumsum(counts) - counts)[counts > 0]
    full = np.zeros(n, dtype=np.int64)
    if lead_zero:
        mask = np.ones(n, dtype=bool)
        mask[starts] = False
        full[mask] = values
    else:
        full[:] = values
    run = np.cumsum(full)
    before = run[starts] - full[starts]  # the running sum before each record's first element
    return run - np.repeat(before, counts[counts > 0])


@cache
def _optional_fields() -> frozenset[str]:
    return frozenset(f.name for f in fields(RequestRecord) if _base_type(str(f.type))[1])


def decode_table(table: pa.Table) -> list[RequestRecord]:
    """RequestRecords of a table read from a records file (columns of a newer writer are ignored; a null
    in a field that cannot be None, such as ``text`` or ``output_ids`` not kept, reads as its default)."""
    if table.num_rows == 0:
        return []
    table = table.combine_chunks()
    names = set(table.column_names)
    plain = {name: table.column(name).to_pylist() for name, _ in _plain_fields() if name in names}
    ntok = table.column("chunk_ntok").combine_chunks()
    gaps = table.column("chunk_gaps_us").combine_chunks()
    counts = np.diff(ntok.offsets.to_numpy(zero_copy_only=False)).astype(np.int64)
    ntok_vals = ntok.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    gap_vals = gaps.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    cum_tokens = _running_sums(ntok_vals, counts, lead_zero=False).tolist()
    first = table.column("t_first_ns").to_numpy(zero_copy_only=False).astype(np.int64)
    times = (np.repeat(first, counts) + _running_sums(gap_vals, counts, lead_zero=True) * _USECS).tolist()
    as_json = {name for name, base in _plain_fields() if base == "dict"}
    optional = _optional_fields()
    out = []
    pos = 0
    for i, n in enumerate(counts.tolist()):
        kw: dict = {}
        for name, col in plain.items():
            v = col[i]
            if v is None:
                if name not in optional:
                    continue
            elif name in as_json:
                v = json.loads(v)
            kw[name] = v
        kw["chunk_times_ns"] = times[pos : pos + n]
        kw["chunk_tokens"] = cum_tokens[pos : pos + n]
        pos += n
        out.append(RequestRecord(**kw))
    return out


IDS_AND_TEXT = ("output_ids", "text")


def read_records(path: Path, skip: Sequence[str] = ()) -> list[RequestRecord]:
    """The file's records; fields in ``skip`` (plain columns only, e.g. IDS_AND_TEXT) read as their default."""
    table = read_table(path)
    return decode_table(table.drop_columns([c for c in skip if c in table.column_names]))
