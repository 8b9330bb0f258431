#!/usr/bin/env python3
"""The record writer's cost on the hot path and its size on disk, on one synthetic large point.

The point: ``--requests`` requests with natural output lengths (log-normal, median ~650 tokens, clipped to
16..4,096; ``--fixed-len`` for one length), real token ids (windows of the bundled throughput pool's text,
tokenized with ``--tokenizer``; a Zipf stand-in when none is given, marked in the output), kernel-like
nanosecond stamps (TTFT ~ 80 ms, ITL ~ ``--itl-ms`` with coefficient of variation ``--itl-cv``), SD off
(one token per chunk) and SD on (1-4 tokens per chunk, draft length 3).

Prints, per SD setting:
  - ns per chunk of the writer as the runner drives it (RecordsAppender.add: encode, append, fsync every 64
    records; then close = compaction), next to the old JSONL writer's (to_json + append + fsync);
  - ns per chunk to read the point back into RequestRecords (what report/compare/quality do);
  - bytes per output token on disk for: stamps only (ids off, text never), + ids (the default: text auto
    keeps no text when ids are there), + text (always), and the JSONL file of the same records.

    .venv/bin/python scripts/bench_records.py --tokenizer ~/.cache/speedbench/models/gemma3-270m-bf16
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from speedbench.core.records import RequestRecord
from speedbench.resources import DATASETS_DIR
from speedbench.results import ResultsDir
from speedbench.runner.appender import RecordsAppender

POOL = DATASETS_DIR / "throughput" / "pool.jsonl.gz"
VARIANTS = {  # name -> (output_ids, text)
    "stamps only": (False, "never"),
    "+ ids (default)": (True, "auto"),
    "+ ids + text": (True, "always"),
}


def token_stream(tokenizer: str | None, rng: np.random.Generator) -> tuple[np.ndarray, object | None, str]:
    """A long run of real output-like token ids (and the tokenizer to decode them), or a Zipf stand-in."""
    if tokenizer:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(tokenizer).expanduser() / "tokenizer.json"))
        with gzip.open(POOL, "rt", encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh]
        ids = [i for enc in tok.encode_batch(texts, add_special_tokens=False) for i in enc.ids]
        return np.asarray(ids, dtype=np.int64), tok, f"real ids: the throughput pool, {tokenizer}"
    ranks = rng.zipf(1.1, size=4_000_000)
    return (ranks[ranks < 262_144] - 1).astype(np.int64), None, "STAND-IN ids (Zipf 1.1 over 262,144): no --tokenizer"


def make_point(args, rng: np.random.Generator, sd: bool, stream: np.ndarray, tok) -> list[RequestRecord]:
    if args.fixed_len:
        lengths = np.full(args.requests, args.fixed_len)
    else:
        lengths = np.clip(rng.lognormal(np.log(650), 0.8, args.requests), 16, 4096).astype(int)
    # disjoint windows of the stream (wrapping only past its end), in shuffled order: requests that repeat
    # each other's tokens, or continue each other's document, would flatter the compressor
    order = rng.permutation(len(lengths))
    starts = (np.cumsum(lengths) - lengths + int(rng.integers(0, len(stream))))[order]
    lengths = lengths[order]
    out = []
    t0 = 1_700_000_000_000_000_000 // 1000  # some CLOCK_MONOTONIC-like ns value
    for i, n in enumerate(lengths.tolist()):
        r = RequestRecord(f"p-c512#{i}", f"prompt-{i:05d}", "Coding", 8192, 4096)
        if sd:
            sizes = rng.integers(1, 5, size=n)
            sizes = sizes[np.cumsum(sizes) <= n]
            sizes = np.append(sizes, n - sizes.sum()) if sizes.sum() < n else sizes
        else:
            sizes = np.ones(n, dtype=int)
        shape = 1 / args.itl_cv**2
        gaps = rng.gamma(shape, args.itl_ms * 1e6 / shape, size=len(sizes))
        gaps[0] = rng.gamma(4.0, 20e6)  # TTFT
        r.t_start_ns = t0 + i * 1_000_003
        r.chunk_times_ns = (r.t_start_ns + np.cumsum(gaps).astype(np.int64)).tolist()
        r.chunk_tokens = np.cumsum(sizes).tolist()
        r.t_first_ns, r.t_end_ns = r.chunk_times_ns[0], r.chunk_times_ns[-1] + 150_000
        r.output_ids = np.take(stream, np.arange(starts[i], starts[i] + n), mode="wrap").tolist()
        r.text = tok.decode(r.output_ids) if tok is not None else ""  # stand-in ids: no text to measure
        r.completion_tokens, r.finish_reason, r.http_status = n, "stop", 200
        r.server_prompt_tokens, r.token_source = 8192, "usage"
        r.conversation_id = r.request_id
        if sd:
            r.sd_per_step_accepted = (sizes - 1).tolist()
            r.sd_per_step_drafted = [3] * len(sizes)
            acc = int((sizes - 1).sum())
            r.sd = {"drafts": len(sizes), "draft_tokens": 3 * len(sizes), "accepted_tokens": acc, "source": "bench"}
        out.append(r)
    return out


def bench(records: list[RequestRecord], root: Path) -> None:
    tokens = sum(r.output_tokens for r in records)
    chunks = sum(len(r.chunk_times_ns) for r in records)
    rd = ResultsDir(root).create({"status": "running"})
    sizes = {}
    for name, (ids, text) in VARIANTS.items():
        pid = name.replace(" ", "").replace("+", "_").replace("(", "").replace(")", "")
        app = RecordsAppender(rd, pid, every=64, every_s=1e9, output_ids=ids, text=text)
        t = time.perf_counter_ns()
        for r in records:
            app.add(r)
        t_add = time.perf_counter_ns() - t
        t = time.perf_counter_ns()
        app.close()
        t_close = time.perf_counter_ns() - t
        sizes[name] = rd.records_path(pid).stat().st_size
        if ids and text == "auto":
            t = time.perf_counter_ns()
            back = rd.records(pid)
            t_read = time.perf_counter_ns() - t
            assert len(back) == len(records)
            print(
                f"  writer (default): {t_add / chunks:7.0f} ns/chunk on the event loop (the hand-off), "
                f"{(t_add + t_close) / chunks:7.0f} ns/chunk in all (encode + append + fsync per 64 records on the "
                f"writer thread, then compaction); read back {t_read / chunks:.0f} ns/chunk"
            )
    jl = root / "records" / "jsonl.jsonl"
    jl.touch()  # a point that has a JSONL file is appended as JSONL: the writer before the columnar one
    t = time.perf_counter_ns()
    for i in range(0, len(records), 64):
        rd.append_records("jsonl", records[i : i + 64])
    t_jsonl = time.perf_counter_ns() - t
    print(f"  JSONL writer (before): {t_jsonl / chunks:7.0f} ns/chunk (to_json + append + fsync per 64 records)")
    for name, size in sizes.items():
        print(f"  {name:16s} {size / tokens:6.2f} B/token  ({size / 1e6:7.2f} MB)")
    print(f"  {'JSONL':16s} {jl.stat().st_size / tokens:6.2f} B/token  ({jl.stat().st_size / 1e6:7.2f} MB)")
    print(f"  ({len(records)} requests, {tokens:,} output tokens, {chunks:,} chunks, {tokens / chunks:.2f} tok/chunk)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", help="model dir with tokenizer.json (real ids); default: a Zipf stand-in")
    ap.add_argument("--requests", type=int, default=1536)
    ap.add_argument("--fixed-len", type=int, default=0, help="every output this long instead of natural lengths")
    ap.add_argument("--itl-ms", type=float, default=15.0)
    ap.add_argument("--itl-cv", type=float, default=0.2, help="inter-token time's std / mean")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    stream, tok, source = token_stream(args.tokenizer, rng)
    print(f"# records writer: {args.requests} requests, ITL {args.itl_ms} ms (CV {args.itl_cv}); {source}")
    for sd in (False, True):
        print(f"SD {'on (1-4 tokens/chunk)' if sd else 'off (1 token/chunk)'}:")
        with tempfile.TemporaryDirectory(prefix="sb-bench-records-") as d:
            bench(make_point(args, rng, sd, stream, tok), Path(d))


if __name__ == "__main__":
    main()
