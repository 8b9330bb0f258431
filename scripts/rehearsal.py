#!/usr/bin/env python3
"""A rehearsal of the full SPEED-Bench matrix on CPU: the client's limits, the records' size, the readers' cost.

One `speedbench sweep` per workload (Throughput split at each ISL, Qualitative) over the concurrencies,
SD off and SD on (EAGLE-3, k=3), against the SGLang emulator (speedbench/testing, launched through the real
adapter by engine shims; continuous batching, one iteration every --step-ms). The emulator runs pinned to
core 0, the client (the sweep process) to core 1 (taskset). Then `report` of every sweep at once (the
matrix), `merge` of each workload's low and heavy sweeps (merge takes folders of the same prompts), `report`
of each merged folder and `compare` of the first merged folder with its heavy sweep, each timed with its
peak RSS.

Per point: CLIENT-BOUND (the client's own verdict, points.jsonl `client_saturated`), the client's CPU share
and peak RSS over the point's window (/proc samples of the sweep process every 0.1 s), output tokens/s,
bytes per output token of its records file; per sweep: wall time vs the sum of the measured windows.

    .venv/bin/python scripts/rehearsal.py --scale small        # ~5 min: the scale docs/rehearsal.md shows
    .venv/bin/python scripts/rehearsal.py --scale matrix --keep DIR  # the full matrix's heavy points whole
    .venv/bin/python scripts/rehearsal.py --scale full         # the GPU presets' matrix: hours on 2 cores

Not part of `make test`; run it alone on the machine (it pins two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEEDBENCH = [sys.executable, "-m", "speedbench.cli"]  # with PYTHONPATH = this tree
MODEL = Path(os.environ.get("SPEEDBENCH_HOME", Path.home() / ".cache" / "speedbench")) / "models" / "gemma3-270m-bf16"
# Each scale: (throughput ISLs, prompts per tier (3 tiers), qualitative conversations per point, concurrencies
# measured with the whole workload, lower concurrencies measured with `low_requests` requests each (None: the
# whole workload at every concurrency), output cap). Outputs end at the emulator's EOS (natural lengths,
# --eos-every EOS_EVERY) unless the scale says fixed.
SCALES = {
    "full": ([8192, 32768], 512, 880, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], None, 4096),
    # the full matrix's shape and its heavy points whole; c=1..32 measured on 32 requests each (at ~1k
    # tokens/s per stream they are hours whole, and the client is nearly idle there)
    "matrix": ([8192], 512, 880, [64, 128, 256, 512], ([1, 2, 4, 8, 16, 32], 32), 4096),
    "small": ([8192], 48, 96, [1, 8, 64], None, 512),
    "tiny": ([], 0, 8, [1, 4], None, 64),
}
EOS_EVERY = 3000  # natural lengths: mean ~920 tokens on the 8k Throughput prompts, ~2,300 on Qualitative (2026-12-08)
# Qualitative: the bundled mini split (88 prompts, 11 categories, 8 two-turn), each point measuring the given
# number of conversations (repeats allowed: SPEED-Bench's 880 are not bundled)


def sample_proc(pid: int, out: list[tuple[int, float, int, float]], stop: threading.Event) -> None:
    """(monotonic ns, CPU seconds, RSS bytes, run-queue wait seconds) of ``pid`` every 0.1 s until it exits.

    The wait is the main thread's (the event loop's) time runnable but not running (/proc schedstat): on a
    shared machine, other jobs on the client's core delay it that long whatever its own CPU use."""
    tick = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            rss = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            wait = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
            out.append((time.monotonic_ns(), (int(stat[11]) + int(stat[12])) / tick, rss, wait))
        except (OSError, IndexError, ValueError):
            return
        time.sleep(0.1)


def emulator_python(work: Path) -> Path:
    """The engine's python: the emulator, pinned to core 0."""
    p = work / "python-core0"
    p.write_text(f'#!/bin/sh\nexec taskset -c 0 {sys.executable} "$@"\n')
    p.chmod(0o755)
    return p


def sweep(
    work: Path,
    name: str,
    data: dict,
    conc: list[int],
    out_cap: int,
    step_ms: float,
    load: dict | None = None,
    fixed: bool = False,
) -> dict:
    shims = work / "shims"
    if not shims.exists():
        from speedbench.testing.emulators import write_engine_shims

        write_engine_shims(shims)
    cfg = {
        "name": name,
        "output_dir": str(work / "results"),
        "engine": {
            "name": "sglang",
            "model": str(work),
            "python": str(emulator_python(work)),
            "startup_timeout_s": 120,
            "env": {"PYTHONPATH": f"{shims}:{REPO}"},
            # every stream runs at once (SGLang caps SD at 48 running when unset): the client sees all of them
            "extra_args": ["--accept", "0.8,0.6,0.4", "--step-ms", str(step_ms), "--eos-every", str(EOS_EVERY)]
            + ["--max-running-requests", "1024"],
        },
        "sd": [{"method": "off"}, {"method": "eagle3", "num_speculative_tokens": 3, "draft_model": str(work)}],
        "data": {"tokenizer": str(MODEL), "cache_dir": str(work / "cache"), **data},
        # natural lengths: the emulator's EOS every ~EOS_EVERY tokens (the small scales: exactly the cap)
        "load": {"concurrency": conc, "output_len": out_cap, "fixed_length": fixed, **(load or {})},
        "quality": {"enabled": False},
        "telemetry": {"gpu": False},
    }
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg))
    samples: list[tuple[int, float, int, float]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *SPEEDBENCH, "sweep", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    stop = threading.Event()
    th = threading.Thread(target=sample_proc, args=(proc.pid, samples, stop), daemon=True)
    th.start()
    _, err = proc.communicate(timeout=6 * 3600)
    stop.set()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        print(f"sweep {name} exited {proc.returncode}: {err.strip().splitlines()[-3:]}", file=sys.stderr)
    runs = [d for d in (work / "results").iterdir() if d.name.endswith(f"-{name}")] if (work / "results").is_dir() else []
    if len(runs) != 1:  # refused before any folder was made (model, tokenizer, prompts): nothing to read
        raise SystemExit(f"rehearsal: sweep {name} left {len(runs)} results folders; see its error above")
    (run,) = runs
    return {"name": name, "dir": run, "wall_s": wall, "points": point_rows(run, samples)}


def point_rows(run: Path, samples: list[tuple[int, float, int, float]]) -> list[dict]:
    from speedbench.results import ResultsDir

    rd = ResultsDir(run)
    rows = []
    for p in rd.points():
        recs = [r for r in rd.records(p["point_id"]) if not r.warmup]
        if not recs:
            continue
        t0, t1 = min(r.t_start_ns for r in recs), max(r.t_end_ns for r in recs)
        inside = [s for s in samples if t0 <= s[0] <= t1]
        span = (inside[-1][0] - inside[0][0]) / 1e9 if len(inside) > 1 else 0.0
        cpu = (inside[-1][1] - inside[0][1]) / span if span else None
        waited = (inside[-1][3] - inside[0][3]) / span if span else None
        tokens = sum(r.output_tokens for r in rd.records(p["point_id"]))
        rows.append(
            {
                "point": p["point_id"],
                "client_bound": bool(p.get("client_saturated")),
                "why": p.get("client_bound_reason") or "",  # the client's own words
                "client_cpu": cpu,
                "client_wait": waited,
                "client_rss_mb": max((s[2] for s in inside), default=0) / 2**20,
                "window_s": (t1 - t0) / 1e9,
                "output_tps": p.get("output_tps"),
                "bytes_per_token": rd.records_path(p["point_id"]).stat().st_size / max(tokens, 1),
                "tokens": tokens,
            }
        )
    return rows


def timed(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one speedbench command, in a fresh process."""
    wrap = (
        "import resource, subprocess, sys, time; t = time.monotonic(); "
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrap, *SPEEDBENCH, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    s, mb, rc = out.stdout.split()
    return float(s), float(mb), int(rc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--step-ms", type=float, default=1.0, help="emulator iteration time (SD off)")
    ap.add_argument("--keep", type=Path, help="work (and keep the results) here (default: a temporary folder)")
    ap.add_argument("--isl", type=int, nargs="*", help="the Throughput ISLs (default: the scale's)")
    ap.add_argument("--allow-overlap", action="store_true", help="data.allow_overlap for the Throughput split")
    args = ap.parse_args()
    isls, n_tp, n_qual, conc, low, cap = SCALES[args.scale]
    isls = args.isl if args.isl is not None else isls
    work = args.keep or Path(tempfile.mkdtemp(prefix="sb-rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    fixed = args.scale in ("small", "tiny")
    try:
        t_all = time.monotonic()
        workloads: list[tuple[str, dict, dict]] = [
            (
                f"tp{isl}",
                {"split": "throughput", "isl": isl, "prompts_per_category": n_tp, "allow_overlap": args.allow_overlap},
                {},
            )
            for isl in isls
        ]
        qual = {"split": "qualitative-mini"}
        workloads.append(("qualitative", qual, {"requests_per_point": n_qual, "allow_repeats": True}))
        print(f"# rehearsal, scale {args.scale}: ISLs {isls or '-'}, concurrency {conc}, low {low}, output cap {cap}")
        print(
            "| sweep | point | CLIENT-BOUND (why) | client CPU | client run-queue wait | client peak RSS MB | "
            "window s | output tokens | output tok/s | B/token |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
        # the heavy points first, then the low concurrencies: each sweep's rows are printed as it ends
        runs = [(name, data, conc, load) for name, data, load in workloads]
        if low:  # the low concurrencies on fewer requests: a sweep of their own (same prompts, a cut)
            runs += [
                (f"{name}-low", data, low[0], {**load, "requests_per_point": low[1]}) for name, data, load in workloads
            ]
        sweeps = []
        for name, data, concs, load in runs:
            sweeps.append(sweep(work, name, data, concs, cap, args.step_ms, load, fixed))
            for r in sweeps[-1]["points"]:
                cpu = f"{r['client_cpu']:.0%}" if r["client_cpu"] is not None else "n/a"
                flag = f"YES ({r['why']})" if r["client_bound"] else "no"
                wait = f"{r['client_wait']:.1%}" if r["client_wait"] is not None else "n/a"
                print(
                    f"| {name} | {r['point']} | {flag} | {cpu} | {wait} | "
                    f"{r['client_rss_mb']:.0f} | {r['window_s']:.1f} | {r['tokens']:,} | {r['output_tps'] or 0:,.0f} | "
                    f"{r['bytes_per_token']:.2f} |",
                    flush=True,
                )
        print("\n| sweep | wall s | measured windows s | wall / windows |")
        print("|---|---|---|---|")
        for s in sweeps:
            win = sum(r["window_s"] for r in s["points"])
            print(f"| {s['name']} | {s['wall_s']:.0f} | {win:.0f} | {s['wall_s'] / max(win, 1e-9):.2f} |")
        # merge takes folders measured on the same prompts (one workload from several jobs, as `plan` makes):
        # each workload's low and heavy sweeps into one folder; report every sweep at once (the matrix), each
        # merged folder, and compare the first workload's merged folder with its heavy sweep
        by_name = {s["name"]: s["dir"] for s in sweeps}
        steps = [("report (every sweep: the matrix)", ["report", *(str(s["dir"]) for s in sweeps), "--format", "md"])]
        merged = []
        for name, _, _ in workloads:
            parts = [str(by_name[n]) for n in (f"{name}-low", name) if n in by_name]
            out = work / f"merged-{name}"
            if len(parts) > 1:
                steps.append((f"merge ({name}: {len(parts)} sweeps)", ["merge", *parts, "--out", str(out)]))
                merged.append(str(out))
            else:
                merged.append(parts[0])
        steps += [(f"report ({Path(m).name})", ["report", m, "--format", "md"]) for m in merged]
        # compare takes runs of the same prompts: the first workload's merged folder with its heavy sweep
        first = workloads[0][0]
        steps.append((f"compare ({Path(merged[0]).name}, {first})", ["compare", merged[0], str(by_name[first])]))
        print("\n| command | s | peak RSS MB | exit |")
        print("|---|---|---|---|")
        for label, cmd in steps:
            s, mb, rc = timed(cmd)
            print(f"| {label} | {s:.1f} | {mb:.0f} | {rc} |")
        du = sum(f.stat().st_size for f in (work / "results").rglob("*") if f.is_file())
        print(f"\n(total {time.monotonic() - t_all:.0f} s; results {du / 2**20:,.0f} MiB)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
