#!/usr/bin/env python
"""Benchmark of pre-tokenization: the 880-prompt Qualitative split + one 8k Throughput bucket (1,536 prompts).

Targets (issue 4): both prepared cold in < 30 s on 2 cores with the fast Gemma tokenizer; a cache hit < 1 s.

The bundled data holds 8 prompts per category, not 80, so the 880-prompt Qualitative split is synthesized
as the 88-prompt mini split replicated 10 times with distinct ids (`<id>-r<k>`). Token work is the same as
for 880 distinct prompts of that length distribution; the ids differ only in the prompt id strings.

    python scripts/bench_data.py [--tokenizer DIR] [--cores 2] [--per-tier 512] [--isl 8k] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOK = Path.home() / ".cache" / "speedbench" / "models" / "gemma3-270m-bf16"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default=str(DEFAULT_TOK))
    ap.add_argument("--cores", type=int, default=2, help="pin to this many CPUs (0 = leave as is)")
    ap.add_argument("--per-tier", type=int, default=512)
    ap.add_argument("--isl", default="8k")
    ap.add_argument("--replicas", type=int, default=10, help="copies of the 88-prompt mini split (10 -> 880)")
    ap.add_argument("--profile", action="store_true", help="cProfile the cold throughput build (top 15)")
    return ap.parse_args()


def pin_cores(n: int) -> int:
    if n and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, cpus)
        # tokenizers' Rust thread pool sizes itself from this, before its first use
        os.environ["RAYON_NUM_THREADS"] = str(len(cpus))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def synth_qualitative(path: Path, replicas: int) -> int:
    src = ROOT / "speedbench" / "resources" / "datasets" / "qualitative" / "mini.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as fh:
        for k in range(replicas):
            for r in rows:
                fh.write(json.dumps(dict(r, id=f"{r['id']}-r{k}"), ensure_ascii=False) + "\n")
    return replicas * len(rows)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    args = parse_args()
    cores = pin_cores(args.cores)
    if not Path(args.tokenizer).is_dir():
        print(f"tokenizer dir not found: {args.tokenizer}", file=sys.stderr)
        return 2
    from speedbench.config import DataConfig
    from speedbench.data.pretokenize import prepare_prompts
    from speedbench.data.tokenization import load_tokenizer

    with tempfile.TemporaryDirectory(prefix="speedbench-bench-data-") as tmp:
        qpath = Path(tmp) / "qualitative-880.jsonl"
        nq = synth_qualitative(qpath, args.replicas)
        cache = Path(tmp) / "cache"
        qcfg = DataConfig(split=str(qpath), cache_dir=str(cache))
        tcfg = DataConfig(split="throughput", isl=args.isl, prompts_per_category=args.per_tier, cache_dir=str(cache))

        _, t_tok = timed(lambda: load_tokenizer(args.tokenizer))
        qs, t_q = timed(lambda: prepare_prompts(qcfg, args.tokenizer))
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            ts, t_t = timed(lambda: prof.runcall(prepare_prompts, tcfg, args.tokenizer))
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
        else:
            ts, t_t = timed(lambda: prepare_prompts(tcfg, args.tokenizer))
        qs2, h_q = timed(lambda: prepare_prompts(qcfg, args.tokenizer))
        ts2, h_t = timed(lambda: prepare_prompts(tcfg, args.tokenizer))
        # a new ISL bucket reuses the tokenized pool (second-level cache) but builds new windows
        _, t_t2 = timed(lambda: prepare_prompts(tcfg.model_copy(update={"isl": 2048}), args.tokenizer))
        assert qs2.ids_sha256 == qs.ids_sha256 and ts2.ids_sha256 == ts.ids_sha256, "cache hit changed the ids"
        assert len(qs.prompts) == nq and all(p.num_tokens == ts.meta["isl"] for p in ts.prompts)

        total = t_tok + t_q + t_t
        tokens = sum(p.num_tokens for p in qs.prompts) + sum(p.num_tokens for p in ts.prompts)
        print(f"cores {cores}; tokenizer {args.tokenizer}")
        print(f"tokenizer load                    {t_tok:7.2f} s")
        print(f"qualitative  {len(qs.prompts):>5} prompts cold  {t_q:7.2f} s   cache hit {h_q:6.3f} s")
        print(f"throughput   {len(ts.prompts):>5} prompts cold  {t_t:7.2f} s   cache hit {h_t:6.3f} s  "
              f"(ISL {ts.meta['isl']}, {args.per_tier}/tier, incl. pool tokenization)")
        print(f"throughput 2k bucket, pool cached {t_t2:7.2f} s")
        print(f"total cold (load + both splits)   {total:7.2f} s for {tokens:,} ids "
              f"[target < 30 s: {'PASS' if total < 30 else 'MISS'}; "
              f"cache hits < 1 s: {'PASS' if max(h_q, h_t) < 1 else 'MISS'}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
